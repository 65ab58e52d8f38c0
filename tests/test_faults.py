"""Faults: a killed trial worker, a killed driver, a diverging trial; nothing lost or counted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from gaea_tune.config import parse_config
from gaea_tune.tracking import Tracker, default_tracking
from gaea_tune.tune import compare
from gaea_tune.tune._budget import read_events

pytestmark = pytest.mark.integration


def _raw(tmp_path: Path, **overrides) -> dict:
    raw = {
        "name": "faults",
        "space": {"name": "nb201", "C": 4, "N": 1},
        "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 256, "max_valid": 128},
        "budget": {"device_seconds": 12},
        "seeds": [0],
        "resources": {"gpu": 0, "cpu": 1},
        "max_failures": 2,
        "progress_every_seconds": 1,
        "output_dir": str(tmp_path / "out"),
        "methods": {"random": {"epochs": 4, "batch_size": 32, "max_concurrent": 1}},
    }
    raw.update(overrides)
    return raw


def _events(workdir: Path, name: str) -> list[dict]:
    paths = list(workdir.glob(f"runs/*/events/{name}.jsonl"))
    return read_events(paths[0]) if paths else []


def _runs_by_level(config, workdir: Path) -> dict[str, list]:
    uri, artifacts = default_tracking(workdir)
    tracker = Tracker(uri, config.name, artifacts)
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=5000)
    levels: dict[str, list] = {}
    for run in runs:
        levels.setdefault(run.data.tags.get("gaea.level", "?"), []).append(run)
    return levels


def test_killed_trial_worker_is_retried_from_its_checkpoint(tmp_path, ray_local):
    # An epoch here takes ~0.15 s. With 4 epochs a trial could end between the poll that saw it at
    # epoch < 3 and the kill, and the kill then hit the reused actor idle or running the next
    # trial. 16 epochs leave the kill more than a second inside the trial it names.
    methods = {"random": {"epochs": 16, "batch_size": 32, "max_concurrent": 1}}
    config = parse_config(_raw(tmp_path, methods=methods))
    workdir = Path(config.output_dir).resolve()
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(compare(config, progress=lambda t: None))
    )
    thread.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and thread.is_alive():
        for result_file in (workdir / "ray").glob("*/random-seed0/*/result.json"):
            lines = read_events(result_file)  # Tune's result log: JSON lines too
            if lines and lines[-1].get("training_iteration", 0) < 3:
                killed = (lines[-1]["trial_id"], lines[-1]["pid"], lines[-1]["training_iteration"])
                kill_time = time.time()
                os.kill(killed[1], signal.SIGKILL)
                break
        time.sleep(0.2)
    thread.join(timeout=300)
    assert killed is not None, "no running trial was found to kill"
    trial_id, _, epoch_at_kill = killed
    events = _events(workdir, "random-seed0")
    ended = [e for e in events if e["kind"] == "finish" and e["trial_id"] == trial_id]
    assert not ended or ended[0]["time"] > kill_time, f"{trial_id} had ended before the kill"
    lost = [e for e in events if e["kind"] == "lost" and e["trial_id"] == trial_id]
    assert lost, "the work lost with the worker was not charged"
    later = [e for e in events if e["kind"] == "result" and e["trial_id"] == trial_id
             and e["epoch"] > epoch_at_kill]  # fmt: skip
    assert later, "the killed trial did not continue after the kill"
    spent = outcome["outcomes"][0]["spent_device_seconds"]
    steps = [e["trial_device_seconds"] for e in events if e["kind"] == "result"]
    assert spent <= config.budget_device_seconds + max(steps) + sum(
        e["device_seconds"] for e in lost
    )
    trial_runs = _runs_by_level(config, workdir)["trial"]
    keys = [r.data.tags["gaea.trial_id"] for r in trial_runs]
    assert len(keys) == len(set(keys)), "a retried trial got a second MLflow run"
    assert {r.info.status for r in trial_runs if r.data.tags["gaea.trial_id"] == trial_id} == {
        "FINISHED"
    }


def test_killed_driver_resumes_without_duplicates(tmp_path):
    raw = _raw(tmp_path, budget={"device_seconds": 16})
    config_file = tmp_path / "faults.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    workdir = Path(raw["output_dir"]).resolve()
    command = [sys.executable, "-m", "gaea_tune.cli", "compare", str(config_file)]
    env = {**os.environ, "RAY_ADDRESS": ""}
    first = subprocess.Popen(command, start_new_session=True, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline:
        results = [e for e in _events(workdir, "random-seed0") if e["kind"] == "result"]
        if len(results) >= 3:
            break
        time.sleep(0.3)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    time.sleep(3)
    assert len(results) >= 3, "the first run never reported"
    # Tune writes its snapshot in place: cut it as a kill mid-write would.
    (snapshot,) = workdir.glob("ray/*/random-seed0/experiment_state-*.json")
    snapshot.write_bytes(snapshot.read_bytes()[: snapshot.stat().st_size // 2])
    before = len({e["trial_id"] for e in results})
    config = parse_config(raw)
    runs_before = _runs_by_level(config, workdir)
    done = subprocess.run(
        [*command, "--resume"], env=env, capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        f"random-seed0: {snapshot.name} of Tune's snapshot does not load (cut short by the kill): "
        f"{snapshot.parent} moved to random-seed0.partial; a new Tune run goes on"
    ) in done.stdout
    summary = json.loads((workdir / "report" / "summary.json").read_text())
    seed = summary["methods"]["random"]["seeds"][0]
    assert seed["trials"] >= before
    runs_after = _runs_by_level(config, workdir)
    assert len(runs_after["comparison"]) == len(runs_before["comparison"]) == 1
    assert len(runs_after["method"]) == 1
    assert "a new Tune run goes on" in runs_after["method"][0].data.tags["gaea.resume_note"]
    keys = [r.data.tags["gaea.trial_id"] for r in runs_after["trial"]]
    assert len(keys) == len(set(keys)) and len(keys) >= before
    steps = [
        e["trial_device_seconds"] for e in _events(workdir, "random-seed0") if e["kind"] == "result"
    ]
    assert seed["spent_device_seconds"] <= 16 + 2 * max(steps)
    # the new Tune run goes on to the budget (one started in the old folder ended after a trial)
    assert seed["spent_device_seconds"] >= 16 - 2 * max(steps)


def test_deterministic_failures_are_not_retried_and_a_failed_method_shows_as_failed(
    tmp_path, ray_local
):
    """lr 10 with weight decay 1.0 passes validation and diverges: each such trial fails once
    (no retry from its checkpoint), is charged only the work it did, and the method keeps
    searching. A weight-sharing method whose only trial diverges (lr 10, no effective clipping)
    ends FAILED, with the reason, in its outcome, summary.json, the table and MLflow."""
    from gaea_tune.report import markdown_table, write_report

    raw = _raw(tmp_path, budget={"device_seconds": 10}, max_failures=2, methods={
        "random": {"epochs": 2, "batch_size": 32, "max_concurrent": 1},
        "diverging": {"method": "random", "epochs": 3, "batch_size": 32, "lr": 10,
                      "weight_decay": 1.0, "max_concurrent": 1},
        "gaea-darts": {"epochs": 2, "batch_size": 32, "lr": 10, "weight_decay": 1.0,
                       "momentum": 0.999, "grad_clip": 1e6},
    })  # fmt: skip
    config = parse_config(raw)
    result = compare(config, progress=lambda t: None)
    workdir = Path(result["workdir"])
    by_label = {o["label"]: o for o in result["outcomes"]}
    assert by_label["random"]["status"] == "finished" and by_label["random"]["genotype"]

    events = _events(workdir, "diverging-seed0")
    failed = {e["trial_id"]: e["reason"] for e in events if e["kind"] == "failed"}
    assert len(failed) >= 2, "the method stopped searching after a deterministic failure"
    assert all("non-finite" in reason for reason in failed.values())
    assert not [e for e in events if e["kind"] == "lost"], "a deterministic failure was retried"
    for trial_id in failed:  # its epochs once each, then its failure: nothing re-run
        results = [e for e in events if e["kind"] == "result" and e["trial_id"] == trial_id]
        epochs = [e["epoch"] for e in results[:-1]]
        assert epochs == sorted(set(epochs)) and results[-1]["search_signal"] is None
        spent = [e["trial_device_seconds"] for e in results]
        assert spent == sorted(spent) and 0 < spent[-1] < config.budget_device_seconds
    trial_dirs = list((workdir / "ray").glob("*/diverging-seed0/*/"))
    assert trial_dirs and not [d for d in trial_dirs if (d / "error.txt").exists()], (
        "a deterministic failure reached Tune as an error (and was retried)"
    )

    ws = by_label["gaea-darts"]
    assert ws["status"] == "failed" and "non-finite" in ws["failure"] and ws["genotype"] is None
    assert 0 < ws["spent_device_seconds"] < config.budget_device_seconds
    uri, artifacts = default_tracking(workdir)
    tracker = Tracker(uri, config.name, artifacts)
    summary = write_report(tracker, tmp_path / "report", result["parent_run_id"])
    seed = summary["methods"]["gaea-darts"]["seeds"][0]
    assert seed["status"] == "failed" and "non-finite" in seed["failure"]
    assert any(
        f["run"] == "gaea-darts-seed0" and "non-finite" in f["reason"]
        for f in summary["failed_methods"]
    )
    table = markdown_table(summary)
    assert "| gaea-darts | weight-sharing | n/a |" in table and "failed: gaea-darts-seed0" in table
    runs = _runs_by_level(config, workdir)
    method_runs = {r.data.tags["gaea.method"]: r for r in runs["method"]}
    assert method_runs["gaea-darts"].info.status == "FAILED"
    assert "non-finite" in method_runs["gaea-darts"].data.tags["gaea.failure"]
    assert method_runs["random"].info.status == "FINISHED"
    failed_trial_runs = [r for r in runs["trial"] if r.info.status == "FAILED"]
    assert len(failed_trial_runs) >= len(failed) + 1
    assert not [r for r in runs["trial"] if r.info.status == "RUNNING"]
