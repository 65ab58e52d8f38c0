"""``gaea-tune compare tune_configs/nb201_tabular_compare.yaml``: the shipped tabular comparison
runs end to end through the command line, with an MLflow run per method x seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gaea_tune.config import load_config
from gaea_tune.tracking import Tracker, default_tracking

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_tabular_compare_config_runs(tmp_path):
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "gaea_tune.cli", "compare",
        str(ROOT / "tune_configs" / "nb201_tabular_compare.yaml"),
        "--set", "seeds=3", "--set", f"output_dir={out}",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600,
        env={**os.environ, "RAY_ADDRESS": ""}, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["mode"] == "tabular" and summary["device_kind"] == "simulated"
    assert set(summary["methods"]) == {"random", "rea", "bohb", "tpe"}
    for label, entry in summary["methods"].items():
        assert len(entry["seeds"]) == 3, label
        for seed in entry["seeds"]:
            assert seed["status"] == "finished"
            assert 0 < seed["spent_device_seconds"] <= 12000
            assert 80.0 < seed["ground_truth"]["cifar10_test_200"] <= 94.38  # the optimum: 94.37
    assert not summary["failed_methods"]
    config = load_config(ROOT / "tune_configs" / "nb201_tabular_compare.yaml")
    uri, artifacts = default_tracking(out)
    tracker = Tracker(uri, config.name, artifacts)
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=1000)
    levels = [r.data.tags.get("gaea.level") for r in runs]
    assert levels.count("comparison") == 1 and levels.count("method") == 4 * 3
    assert {r.info.status for r in runs} == {"FINISHED"}
