"""Report: summary.json, table and plots rebuilt from MLflow runs of a comparison."""

from __future__ import annotations

import json

import pytest

from gaea_tune.report import markdown_table, write_report
from gaea_tune.tracking import Tracker, TrackingError, check_reachable, default_tracking
from gaea_tune.tune._compare import _log_outcome

pytestmark = pytest.mark.integration

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _outcome(label, family, seed, truth):
    return {
        "label": label, "method": label, "family": family, "seed": seed,
        "budget_device_seconds": 100.0, "spent_device_seconds": 99.0 + seed, "trials": 3,
        "failed_trials": {}, "genotype": A, "search_signal": 50.0,
        "ground_truth": {"cifar10_test_200": truth}, "ground_truth_column": "cifar10_test_200",
        "curve": [[10.0, truth - 1.0], [90.0, truth]],
    }  # fmt: skip


def test_report_from_mlflow(tmp_path):
    uri, artifacts = default_tracking(tmp_path)
    tracker = Tracker(uri, "exp", artifacts)
    parent = tracker.start_run("compare-x", key="exp/x/compare", tags={"gaea.level": "comparison"})
    config = {"name": "exp", "mode": "live", "resources": {"gpu": 0, "cpu": 1}}
    tracker.log_params(parent, {**config, "budget_device_seconds": 100.0})
    tracker.log_json(parent, config, "config.json")
    truths = {"good": [94.0, 94.2, 94.1], "bad": [90.0, 89.0, 91.0]}
    for label, values in truths.items():
        family = "weight-sharing" if label == "good" else "standalone"
        for seed, truth in enumerate(values):
            run = tracker.start_run(f"{label}-{seed}", key=f"exp/x/{label}/{seed}",
                                    parent_run_id=parent, tags={"gaea.level": "method"})  # fmt: skip
            if family == "weight-sharing":
                trial = tracker.start_run("t", key=f"exp/x/{label}/{seed}/t", parent_run_id=run)
                for epoch, entropy in enumerate([1.38, 1.2, 0.9], start=1):
                    tracker.log_metrics(trial, {"entropy": entropy}, step=epoch)
            _log_outcome(tracker, run, _outcome(label, family, seed, truth))
    summary = write_report(tracker, tmp_path / "report", parent)
    assert summary["experiment"] == "exp"
    assert summary["device_kind"] == "cpu"
    assert summary["budget_device_seconds"] == 100.0
    good = summary["methods"]["good"]
    assert good["family"] == "weight-sharing"
    assert good["mean"] == pytest.approx(94.1)
    assert [s["seed"] for s in good["seeds"]] == [0, 1, 2]
    assert summary["entropy"]["good"][0] == [1.38, 1.2, 0.9]
    (pair,) = summary["statistics"]["pairwise"]["pairs"]
    assert (pair["a"], pair["b"], pair["seeds"]) == ("good", "bad", [0, 1, 2])
    assert pair["mean_difference"] == pytest.approx(4.1)
    # 3 seeds cannot support a paired claim: no p-value, the reason instead
    assert pair["p_value"] is None and pair["verdict"].startswith("no claim: 3 nonzero")
    assert summary["statistics"]["ranks"]["mean_rank"] == {"bad": 2.0, "good": 1.0}
    on_disk = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert on_disk["mlflow"]["parent_run_id"] == parent
    table = markdown_table(summary)
    assert (
        "| 1 | good | weight-sharing | 94.10 +- 0.10 | [94.00, 94.20] | 0.0278 | - | 3.0 | 0 | 3 (0) |"
        in table
    )
    assert "| good | bad | 3 | +4.10 [+3.10, +5.20] | - | - | - | no claim: " in table
    for name in ("incumbent_vs_device_hours.png", "entropy.png", "results.csv"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    attached = {f.path for f in tracker.client.list_artifacts(parent, "report")}
    assert "report/incumbent_vs_device_hours.png" in attached
    # reopening a run by key reuses it (resume never duplicates runs)
    assert tracker.start_run("again", key="exp/x/good/0") == good["seeds"][0]["mlflow_run_id"]


def test_report_command_refuses_an_unknown_run_id(tmp_path, capsys):
    from gaea_tune.cli import main

    uri, artifacts = default_tracking(tmp_path)
    tracker = Tracker(uri, "quickstart", artifacts)
    trial = tracker.start_run("t", key="q/t", tags={"gaea.level": "trial"})
    argv = ["report", "tune_configs/quickstart.yaml", "--set", f"output_dir={tmp_path}"]
    for run_id in ("deadbeef", trial):
        assert main([*argv, "--run-id", run_id]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
        assert f"--run-id: {run_id!r} is not a comparison run of this experiment" in line


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(TrackingError, match="unreachable"):
        check_reachable("http://127.0.0.1:9", timeout=2)


def test_report_shows_the_calibration_of_its_own_settings(tmp_path):
    """A `gaea-tune calibrate` run of the same experiment counts for the standalone methods
    trained with exactly its settings (any seed), and for no other."""
    from gaea_tune.calibrate import CALIBRATION_LEVEL, calibration_settings
    from gaea_tune.config import load_config

    config = load_config("tune_configs/quickstart.yaml", overrides={"output_dir": str(tmp_path)})
    uri, artifacts = default_tracking(tmp_path)
    tracker = Tracker(uri, config.name, artifacts)
    methods = {m.label: m for m in config.methods}

    def calibration(settings, kendall, key):
        run = tracker.start_run(key, key=key, tags={"gaea.level": CALIBRATION_LEVEL})
        report = {"settings": settings, "cells": 20, "statistics": {"kendall": kendall,
                  "spearman": kendall + 0.1}, "sentence": f"tau {kendall}"}  # fmt: skip
        tracker.log_json(run, report, "calibration.json")
        tracker.end_run(run, "FINISHED")

    other = calibration_settings(config, methods["random"], 0)
    calibration({**other, "epochs": other["epochs"] + 1}, 0.9, "cal-other-epochs")
    calibration(calibration_settings(config, methods["random"], 3), 0.49, "cal-random")
    parent = tracker.start_run("compare-x", key="q/x/compare", tags={"gaea.level": "comparison"})
    tracker.log_params(parent, {"budget_device_seconds": 120.0})
    tracker.log_json(parent, config.raw, "config.json")
    for label in ("gaea-darts", "random", "rea", "bohb"):
        family = "weight-sharing" if label == "gaea-darts" else "standalone"
        run = tracker.start_run(label, key=f"q/x/{label}/0", parent_run_id=parent,
                                tags={"gaea.level": "method"})  # fmt: skip
        _log_outcome(tracker, run, _outcome(label, family, 0, 93.0))
    summary = write_report(tracker, tmp_path / "report", parent)
    # random and rea train alike (3 epochs, batch 64); bohb trains up to 9 epochs
    assert set(summary["calibration"]) == {"random", "rea"}
    assert summary["calibration"]["rea"]["kendall"] == pytest.approx(0.49)
    table = markdown_table(summary)
    assert "- random: tau 0.49\n" in table  # the calibration's sentence, once
    assert "- bohb: not measured for these settings" in table
    assert "gaea-darts: " not in table.split("Proxy fidelity")[1]
    # `compare --calibrate` measures only what this store lacks, once per distinct setting
    from gaea_tune.commands.compare import calibration_plan

    assert calibration_plan(config, [], 20) == ["bohb"]
    assert calibration_plan(config, ["rea"], 20) == []
    fresh = load_config("tune_configs/quickstart.yaml",
                        overrides={"output_dir": str(tmp_path / "fresh")})  # fmt: skip
    assert calibration_plan(fresh, [], 20) == ["random", "bohb"]
    assert calibration_plan(fresh, ["rea", "random"], 20) == ["rea"]
    assert not (tmp_path / "fresh").exists()  # planning creates no store


def test_calibration_lines_give_the_sentence_once_or_the_tau():
    from gaea_tune.report import _calibration_lines

    summary = {
        "mode": "live",
        "methods": {"gaea-darts": {"family": "weight-sharing"}, "random": {"family": "standalone"},
                    "rea": {"family": "standalone"}, "bohb": {"family": "standalone"}},
        "calibration": {"random": {"kendall": 0.46, "cells": 20, "sentence": "Kendall tau 0.46."},
                        "rea": {"kendall": 0.3, "cells": 12, "sentence": None}},
    }  # fmt: skip
    lines = _calibration_lines(summary)
    assert lines[2:] == [
        "- random: Kendall tau 0.46.",
        "- rea: Kendall tau 0.30 over 12 cells.",
        "- bohb: not measured for these settings; `gaea-tune calibrate FILE --method bohb` "
        "measures it",
    ]
    assert _calibration_lines({**summary, "mode": "tabular"}) == []
