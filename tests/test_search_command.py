"""``gaea-tune search FILE``: one weight-sharing search as one Tune trial, logged to MLflow."""

from __future__ import annotations

import pytest
import yaml

from gaea_tune.cli import main
from gaea_tune.tracking import Tracker, default_tracking


@pytest.mark.integration
def test_search_command_logs_params_metrics_and_artifacts(tmp_path, ray_local):
    config = {  # the compare dialect: one weight-sharing method
        "name": "search-test",
        "space": {"name": "nb201", "C": 4, "N": 1},
        "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 128, "max_valid": 64},
        "budget": {"device_hours": 1},
        "seeds": [0],
        "resources": {"cpu": 1, "gpu": 0},
        "methods": {"gaea-darts": {"epochs": 3, "batch_size": 32, "arch_lr": 0.5}},
        "output_dir": str(tmp_path / "elsewhere"),
    }
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config))
    # --set and the old shorthand flags both reach the config
    argv = ["search", str(path), "--set", "methods.gaea-darts.batch_size=16", "--epochs", "2",
            "--output-dir", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 0
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
    method_runs = [r for r in runs if r.data.tags.get("gaea.level") == "method"]
    assert [r.data.params["batch_size"] for r in method_runs] == ["16"]
    assert [r.data.params["epochs"] for r in method_runs] == ["2"]


_BASE = {"name": "x", "space": {"name": "nb201", "C": 4, "N": 1}, "budget": {"device_seconds": 60}}


def test_search_command_rejects_an_unknown_method(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**_BASE, "methods": {"gaea-enas": {}}}))
    assert main(["search", str(path)]) == 2
    assert "methods: unknown value 'gaea-enas'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("methods", "argv", "message"),
    [
        ({"random": {}}, [], "methods: 0 weight-sharing methods in the config"),
        ({"darts": {}, "gaea-darts": {}}, [],
         "methods: 2 weight-sharing methods in the config; pick one with --method LABEL; "
         "allowed: darts, gaea-darts"),
        ({"darts": {}, "random": {}}, ["--method", "random"],
         "--method: 'random' is not a weight-sharing method of the config; allowed: darts"),
        ({"darts": {}}, ["--set", "methods.darts.arch_lr=fast"],
         "methods.darts.arch_lr: expected a number, got 'fast'"),
    ],
)  # fmt: skip
def test_search_command_refuses_a_config_without_one_search(tmp_path, capsys, methods, argv,
                                                            message):  # fmt: skip
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**_BASE, "methods": methods, "output_dir": str(tmp_path)}))
    assert main(["search", str(path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_search_command_checks_seed_before_anything_is_made(tmp_path, capsys):
    path = tmp_path / "one.yaml"
    out = tmp_path / "out"
    path.write_text(yaml.safe_dump({**_BASE, "methods": {"gaea-darts": {}},
                                    "output_dir": str(out)}))  # fmt: skip
    assert main(["search", str(path), "--seed", "-1"]) == 2
    assert "seeds: each seed must be an integer in [0, 2**31), got -1" in capsys.readouterr().err
    assert not out.exists()
