"""Checks of small contracts: configuration import weight, the ``--set`` null override,
``validate --show`` paths, the report's effect size beside "no claim" and ``info``'s
``dataset.simulate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("hpbandster", "optuna", "ConfigSpace", "torch", "ray")


def test_config_import_pulls_in_no_search_or_training_library():
    code = (
        "import gaea_tune.registry, gaea_tune.config, sys; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def _shown(capsys, *argv: str) -> dict:
    from ruamel.yaml import YAML

    from gaea_tune.cli import main

    assert main(["validate", *argv, "--show"]) == 0
    text = capsys.readouterr().out.split("# resolved settings (every default filled in)\n", 1)[1]
    return YAML(typ="safe", pure=True).load(text)


def test_validate_show_gives_the_paths_a_run_writes_to(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    live = _shown(capsys, str(ROOT / "tune_configs" / "quickstart.yaml"), "--set", "output_dir=out")
    out = tmp_path.resolve() / "out"
    assert live["comparison"]["output_dir"] == str(out)
    assert live["comparison"]["tracking_uri"] == f"sqlite:///{out / 'mlflow.db'}"
    assert live["comparison"]["artifact_location"] == (out / "mlartifacts").as_uri()
    assert live["comparison"]["storage_path"] == str(out / "ray")

    given = _shown(
        capsys, str(ROOT / "tune_configs" / "quickstart.yaml"),
        "--set", "tracking_uri=http://tracker:5000", "--set", "storage_path=s3://bucket/runs",
    )  # fmt: skip
    assert given["comparison"]["tracking_uri"] == "http://tracker:5000"
    assert given["comparison"]["storage_path"] == "s3://bucket/runs"

    tabular = _shown(capsys, str(ROOT / "tune_configs" / "nb201_tabular_compare.yaml"))
    assert tabular["comparison"]["storage_path"] is None  # no Ray trials in tabular mode
    assert tabular["comparison"]["output_dir"].startswith(str(tmp_path.resolve()))


def _scored(values):
    return {
        "family": "standalone",
        "method": "random",
        "seeds": [
            {
                "seed": seed,
                "status": "finished",
                "ground_truth": {"cifar10_test_200": value},
                "spent_device_seconds": 1.0,
                "trials": 1,
                "failed_trials": {},
            }
            for seed, value in enumerate(values)
        ],  # fmt: skip
    }


def _pair_row(methods: dict, a: str, b: str) -> list[str]:
    from gaea_tune.report import _statistics_lines
    from gaea_tune.statistics import analyse

    lines = _statistics_lines({"statistics": analyse(methods)})
    (row,) = [line for line in lines if line.startswith(f"| {a} | {b} |")]
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_report_shows_no_effect_size_beside_no_claim():
    # one common seed: r would be +1.00 from a single difference
    one = _pair_row({"good": _scored([94.0]), "bad": _scored([90.0])}, "good", "bad")
    assert one[4] == "-" and one[7].startswith("no claim: 1 nonzero")
    three = _pair_row(
        {"good": _scored([94.0, 94.2, 94.1]), "bad": _scored([90.0, 89.0, 91.0])}, "good", "bad"
    )
    assert three[4] == "-" and three[7].startswith("no claim: 3 nonzero")
    # enough seeds for a test: the effect size stays
    ten = _pair_row(
        {"good": _scored([95.0 + i / 10 for i in range(10)]),
         "bad": _scored([93.0 + i / 7 for i in range(10)])}, "good", "bad",
    )  # fmt: skip
    assert ten[4] == "+1.00" and ten[7] == "good > bad"


def test_set_null_unsets_a_method_option_so_its_default_applies():
    from gaea_tune.config import load_config, load_yaml, parse_config

    path = ROOT / "tune_configs" / "quickstart.yaml"
    raw = load_yaml(path)
    assert raw["methods"]["rea"]["epochs"] == 3
    del raw["methods"]["rea"]["epochs"]
    default = {m.label: m for m in parse_config(raw).methods}["rea"].options

    for overrides in (["methods.rea.epochs=null"], ["methods.rea.epochs="],
                      {"methods.rea.epochs": None}):  # fmt: skip
        config = load_config(path, overrides)
        options = {m.label: m for m in config.methods}["rea"].options
        assert options == default and options.get("epochs") != 3, overrides
    # an option the file does not set: nothing to remove
    config = load_config(path, ["methods.rea.lr=null"])
    assert {m.label: m for m in config.methods}["rea"].options == {
        m.label: m for m in load_config(path).methods
    }["rea"].options
    # null outside a method's options keeps its meaning
    assert load_config(path, ["storage_path=null"]).storage_path is None


def test_info_lists_the_simulate_values_of_the_registry(monkeypatch, capsys):
    import gaea_tune.registry as registry
    from gaea_tune.cli import main

    assert main(["info"]) == 0
    (line,) = [s for s in capsys.readouterr().out.splitlines() if s.startswith("dataset.simulate:")]
    assert line.split()[1] == "table"
    monkeypatch.setattr(registry, "SIMULATE", ("table", "other"))
    assert main(["info"]) == 0
    (line,) = [s for s in capsys.readouterr().out.splitlines() if s.startswith("dataset.simulate:")]
    assert "table | other" in line
