"""Config validation: every bad input is a one-line error naming field, value and what is allowed."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gaea_tune.cli import main
from gaea_tune.config import ConfigError, apply_overrides, load_config, parse_config

VALID = {
    "name": "tiny",
    "mode": "live",
    "space": {"name": "nb201", "C": 4, "N": 1},
    "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 64, "max_valid": 64},
    "budget": {"device_seconds": 30},
    "seeds": [0, 1],
    "resources": {"gpu": 0, "cpu": 1},
    "methods": {
        "gaea-darts": {"epochs": 2, "arch_lr": 0.1, "formulation": "erm"},
        "random": {"epochs": 1},
        "rea": {"epochs": 1, "population_size": 4, "sample_size": 2},
        "bohb": {"epochs": 3},
    },
}


def _with(path: str, value):
    raw = copy.deepcopy(VALID)
    node = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return raw


_DELETE = object()

# (case, raw config, fragments the message must contain)
BAD_INPUTS = [
    ("unknown top key", _with("methodz", {}), ["unknown key 'methodz'", "did you mean 'methods'"]),
    ("bad name", _with("name", "a b/c"), ["name:", "'a b/c'"]),
    ("missing name", _with("name", _DELETE), ["name:", "None"]),
    ("unknown mode", _with("mode", "simulated"), ["mode:", "'simulated'", "live, tabular"]),
    ("unknown space", _with("space.name", "nb301"), ["space.name", "'nb301'", "nb201, darts"]),
    ("space C zero", _with("space.C", 0), ["space.C", "0", "1 <= C <= 1024"]),
    ("space N float", _with("space.N", 1.5), ["space.N", "expected an integer", "1.5"]),
    ("space unknown key", _with("space.cells", 3), ["space: unknown key 'cells'"]),
    (
        "unknown dataset",
        _with("dataset.name", "cifar11"),
        ["dataset.name", "'cifar11'", "did you mean"],
    ),
    ("dataset missing root", _with("dataset.name", "cifar100"), ["dataset.root", "download: true"]),
    (
        "imagenet16 missing root",
        _with("dataset.name", "ImageNet16-120"),
        ["dataset.root", "cannot be downloaded"],
    ),
    (
        "dataset download not bool",
        _with("dataset.download", "yes"),
        ["dataset.download", "true or false"],
    ),
    (
        "dataset resolution",
        _with("dataset.resolution", 3),
        ["dataset.resolution", "3", "8 <= resolution"],
    ),
    ("dataset unknown key", _with("dataset.split", "x"), ["dataset: unknown key 'split'"]),
    ("budget missing", _with("budget", _DELETE), ["budget:", "device_hours"]),
    (
        "budget negative",
        _with("budget", {"device_hours": -1}),
        ["budget.device_hours", "-1", "positive"],
    ),
    ("budget zero", _with("budget", {"device_seconds": 0}), ["budget.device_seconds", "positive"]),
    (
        "budget inf",
        _with("budget", {"device_seconds": float("inf")}),
        ["budget.device_seconds", "inf"],
    ),
    ("budget tiny", _with("budget", {"device_hours": 1e-6}), ["under one device-second"]),
    ("budget both", _with("budget", {"device_hours": 1, "device_seconds": 5}), ["exactly one"]),
    ("budget unknown unit", _with("budget", {"gpu_hours": 1}), ["unknown key 'gpu_hours'"]),
    ("seeds negative", _with("seeds", [0, -1]), ["seeds:", "-1"]),
    ("seeds empty", _with("seeds", []), ["seeds:", "non-empty"]),
    ("seeds duplicate", _with("seeds", [1, 1]), ["seeds:", "duplicates"]),
    ("seeds count zero", _with("seeds", 0), ["seeds:", "[1, 10000]"]),
    (
        "unknown method",
        _with("methods", {"gaea-dart": {}}),
        ["methods", "'gaea-dart'", "did you mean 'gaea-darts'"],
    ),
    (
        "method unknown option",
        _with("methods.random.lrr", 0.1),
        ["methods.random: unknown key 'lrr'", "did you mean 'lr'"],
    ),
    (
        "arch lr negative",
        _with("methods.gaea-darts.arch_lr", -0.1),
        ["methods.gaea-darts.arch_lr", "-0.1"],
    ),
    ("lr too big", _with("methods.random.lr", 100.0), ["methods.random.lr", "100.0", "lr <= 10.0"]),
    (
        "epochs zero",
        _with("methods.random.epochs", 0),
        ["methods.random.epochs", "0", "1 <= epochs"],
    ),
    (
        "epochs string",
        _with("methods.random.epochs", "ten"),
        ["methods.random.epochs", "expected a number", "'ten'"],
    ),
    (
        "formulation",
        _with("methods.gaea-darts.formulation", "trilevel"),
        ["formulation", "'trilevel'", "erm, bilevel"],
    ),
    (
        "rea sample > population",
        _with("methods.rea.sample_size", 5),
        [
            "methods.rea.sample_size",
            "5 is above population_size=4",
            "sample_size <= population_size",
        ],
    ),
    ("methods empty", _with("methods", {}), ["methods:", "non-empty"]),
    (
        "alias of unknown method",
        _with("methods", {"mine": {"method": "enas"}}),
        ["methods.mine.method", "'enas'"],
    ),
    ("gpu negative", _with("resources.gpu", -1), ["resources.gpu", "-1"]),
    ("no resources", _with("resources", {"gpu": 0, "cpu": 0}), ["resources:", "gpu=0, cpu=0"]),
    (
        "tabular darts",
        {**_with("mode", "tabular"), "space": {"name": "darts"}},
        ["tabular mode needs 'nb201'"],
    ),
    (
        "tabular subset",
        _with("mode", "tabular"),
        ["dataset.name", "'cifar10-subset'", "cifar10, cifar100"],
    ),
    (
        "tabular weight-sharing",
        {**_with("mode", "tabular"), "dataset": {"name": "cifar10"}},
        ["methods", "'gaea-darts'"],
    ),
    (
        "tracking uri scheme",
        _with("tracking_uri", "ftp://x"),
        ["tracking_uri", "'ftp://x'", "sqlite:///"],
    ),
    ("max failures", _with("max_failures", -2), ["max_failures", "-2"]),
    (
        "final retrain key",
        _with("final_retrain", {"epoch": 3}),
        ["final_retrain: unknown key 'epoch'", "did you mean 'epochs'"],
    ),
    ("unwritable output", _with("output_dir", "/proc/gaea-out"), ["output_dir", "not writable"]),
    ("output under a file", _with("output_dir", __file__ + "/out"), ["output_dir", "not writable"]),
]


@pytest.mark.parametrize("case, raw, fragments", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_clear_one_line_error(case, raw, fragments):
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


def test_bad_input_table_is_large():
    assert len(BAD_INPUTS) >= 30


def test_valid_config_parses_with_defaults(tmp_path):
    raw = _with("output_dir", str(tmp_path / "out"))
    config = parse_config(raw)
    assert config.budget_device_seconds == 30.0
    assert config.seeds == (0, 1)
    assert [m.label for m in config.methods] == ["gaea-darts", "random", "rea", "bohb"]
    assert config.methods[0].family == "weight-sharing"
    assert config.methods[1].family == "standalone"
    assert config.device_kind == "cpu"
    assert config.dataset["download"] is False
    assert not (tmp_path / "out").exists()  # validation creates nothing


def test_overrides_parse_yaml_scalars_never_code():
    raw = apply_overrides(
        VALID, ["budget.device_seconds=12.5", "space.C=8", "name=__import__('os')"]
    )
    assert raw["budget"]["device_seconds"] == 12.5
    assert raw["space"]["C"] == 8
    with pytest.raises(ConfigError, match="name:"):
        parse_config(raw)
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(VALID, ["budget"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_shipped_comparison_configs_validate():
    """Every comparison config (``name`` and ``budget`` at the top) in tune_configs/ is valid."""
    folder = Path(__file__).resolve().parent.parent / "tune_configs"
    files = [
        f
        for f in sorted(folder.glob("*.yaml"))
        if {"name", "budget"} <= set(yaml.safe_load(f.read_text()))
    ]
    assert {f.name for f in files} >= {
        "quickstart.yaml",
        "nb201_cifar10.yaml",
        "darts_cifar10.yaml",
    }
    for file in files:
        raw = yaml.safe_load(file.read_text())
        if (
            raw.get("dataset", {}).get("name") not in (None, "cifar10-subset")
            and raw.get("mode") != "tabular"
        ):
            raw["dataset"]["download"] = True  # real datasets are fetched on demand
        parse_config(raw)


def test_cli_validate_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(_with("output_dir", str(tmp_path / "o"))))
    assert main(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate", str(good), "--set", "budget.device_seconds=-3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gaea-tune: error: budget.device_seconds") and "\n" not in err


def test_compare_with_bad_config_starts_nothing(tmp_path):
    """A bad config fails before Ray or MLflow start: no output folder, no ray session."""
    bad = tmp_path / "bad.yaml"
    out = tmp_path / "never"
    bad.write_text(yaml.safe_dump({**_with("methods", {"darts-v3": {}}), "output_dir": str(out)}))
    env = {**os.environ, "RAY_ADDRESS": ""}
    code = (
        "import sys, ray; from gaea_tune.cli import main; rc = main(sys.argv[1:]); "
        "sys.exit(rc + (100 if ray.is_initialized() else 0))"
    )
    done = subprocess.run([sys.executable, "-c", code, "compare", str(bad)], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "methods: unknown value 'darts-v3'" in done.stderr
    assert not out.exists()


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("compare", "report", "validate", "search", "tabular", "ui", "info"):
        assert command in out


def test_ui_binds_loopback_by_default():
    from gaea_tune.cli import build_parser
    from gaea_tune.commands.ui import server_command

    args = build_parser().parse_args(["ui"])
    assert args.host == "127.0.0.1"
    command = server_command("sqlite:///x.db", args.host, args.port)
    assert command[command.index("--host") + 1] == "127.0.0.1"
