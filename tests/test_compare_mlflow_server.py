"""A tiny comparison against a real ``mlflow server`` process, checked through its REST API."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from gaea_tune.commands.ui import server_command
from gaea_tune.config import parse_config
from gaea_tune.report import write_report
from gaea_tune.tracking import Tracker
from gaea_tune.tune import compare

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """An MLflow server on a free port, once it answers /health. The port is free when picked
    but may be taken before the server binds it: a server that exits is started again on
    another port, up to three times."""
    for _ in range(3):
        port = _free_port()
        command = server_command(f"sqlite:///{folder / 'store.db'}", "127.0.0.1", port)
        command += ["--artifacts-destination", str(folder / "artifacts")]
        with (folder / "server.log").open("w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        return process, url
            except OSError:
                time.sleep(0.5)
        if process.poll() is None:
            process.kill()
            break  # it runs but does not answer: another port would not help
    pytest.fail(
        f"mlflow server did not answer /health: {(folder / 'server.log').read_text()[-2000:]}"
    )


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    process, url = _start_server(tmp_path_factory.mktemp("mlflow-server"))
    yield url
    process.terminate()
    process.wait(timeout=30)


def _api(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=data,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _metrics(run: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


def test_parent_method_trial_tree(mlflow_server, tmp_path, ray_local):
    config = parse_config(
        {
            "name": "tree-test",
            "space": {"name": "nb201", "C": 4, "N": 1},
            "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 128,
                        "max_valid": 128},
            "budget": {"device_seconds": 8},
            "seeds": [0],
            "resources": {"gpu": 0, "cpu": 1},
            "methods": {
                "gaea-darts": {"epochs": 2, "batch_size": 32, "arch_lr": 0.5},
                "random": {"epochs": 1, "batch_size": 32, "max_concurrent": 1},
            },
            "tracking_uri": mlflow_server,
            "output_dir": str(tmp_path / "out"),
        }
    )  # fmt: skip
    result = compare(config, progress=lambda text: None)
    summary = write_report(Tracker(mlflow_server, config.name), Path(result["workdir"]) / "report",
                           result["parent_run_id"])  # fmt: skip
    experiment_id = result["experiment_id"]
    runs = _api(
        mlflow_server, "runs/search", {"experiment_ids": [experiment_id], "max_results": 1000}
    )["runs"]
    by_id = {r["info"]["run_id"]: r for r in runs}
    parent = by_id[result["parent_run_id"]]
    assert _tags(parent)["gaea.level"] == "comparison"
    methods = [r for r in runs if _tags(r).get("mlflow.parentRunId") == result["parent_run_id"]]
    assert sorted(_tags(r)["gaea.method"] for r in methods) == ["gaea-darts", "random"]
    for method_run in methods:
        metrics = _metrics(method_run)
        assert metrics["budget_device_seconds"] == 8.0
        assert 0 < metrics["spent_device_seconds"]
        assert metrics["trials"] >= 1
        assert "ground_truth.cifar10_test_200" in metrics
        trials = [
            r for r in runs if _tags(r).get("mlflow.parentRunId") == method_run["info"]["run_id"]
        ]
        assert len(trials) == metrics["trials"]
        assert {t["info"]["status"] for t in trials} == {"FINISHED"}
        trial_metrics = _metrics(trials[0])
        assert {"search_signal", "device_seconds", "train_loss"} <= set(trial_metrics)
        history = _api(mlflow_server, f"metrics/get-history?run_id={trials[0]['info']['run_id']}"
                       "&metric_key=search_signal")["metrics"]  # fmt: skip
        assert len(history) >= 1
        files = _api(mlflow_server, f"artifacts/list?run_id={method_run['info']['run_id']}")
        assert "outcome.json" in {f["path"] for f in files["files"]}
    weight_sharing = next(r for r in methods if _tags(r)["gaea.method"] == "gaea-darts")
    ws_trial = next(
        r for r in runs if _tags(r).get("mlflow.parentRunId") == weight_sharing["info"]["run_id"]
    )
    assert "entropy" in _metrics(ws_trial)
    assert _tags(ws_trial)["genotype"].startswith("|")
    report = _api(mlflow_server, f"artifacts/list?run_id={result['parent_run_id']}&path=report")
    assert {"report/summary.json", "report/incumbent_vs_device_hours.png"} <= {
        f["path"] for f in report["files"]
    }
    assert set(summary["methods"]) == {"gaea-darts", "random"}
    for entry in summary["methods"].values():
        for seed in entry["seeds"]:
            assert seed["spent_device_seconds"] <= 8.0 + _largest_step(seed["curve"])


def _largest_step(curve: list[list[float]]) -> float:
    """The largest spend between two consecutive results (one reporting step)."""
    xs = [0.0] + [point[0] for point in curve]
    return max(b - a for a, b in zip(xs, xs[1:]))
