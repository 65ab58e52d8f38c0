"""``gaea-tune search FILE``: one weight-sharing search as one Tune trial, logged to MLflow."""

from __future__ import annotations

import pytest
import yaml

from gaea_tune.cli import main
from gaea_tune.tracking import Tracker, default_tracking

pytestmark = pytest.mark.integration


def test_search_command_logs_params_metrics_and_artifacts(tmp_path, ray_local):
    config = {
        "name": "search-test",
        "space": "nb201",
        "method": "gaea-darts",
        "seed": 0,
        "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 128, "max_valid": 64},
        "resources": {"cpu": 1, "gpu": 0},
        "search": {"C": 4, "N": 1, "epochs": 2, "batch_size": 32, "arch_lr": 0.5},
        "output_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["search", str(path)]) == 0
    uri, artifacts = default_tracking(tmp_path / "runs")
    tracker = Tracker(uri, "search-test", artifacts)
    runs = tracker.client.search_runs([tracker.experiment_id])
    with_history = [r for r in runs if tracker.metric_history(r.info.run_id, "entropy")]
    assert with_history, "no run has the per-epoch entropy"
    assert len(tracker.metric_history(with_history[0].info.run_id, "entropy")) == 2
    files = {f.path for r in runs for f in tracker.client.list_artifacts(r.info.run_id)}
    assert {"genotype.txt", "arch_weights_history.json"} <= files
    params = {k for r in runs for k in r.data.params}
    assert "arch_lr" in params or "search.arch_lr" in params


def test_search_command_rejects_an_unknown_method(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "space": "nb201", "method": "gaea-enas"}))
    assert main(["search", str(path)]) == 2
    assert "gaea-enas" in capsys.readouterr().err
