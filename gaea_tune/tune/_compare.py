"""``compare``: every method x seed under the same device-second budget, side by side.

The driver: it checks the config, opens the comparison's MLflow run and hands every method x
seed to the backend of the config's mode (:mod:`gaea_tune.tune._backend`): live Ray Tune trials
(:mod:`gaea_tune.tune._live`) or the NB201 table (:mod:`gaea_tune.tune._tabular_compare`).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import ray

from gaea_tune.config import ConfigError, ExperimentConfig
from gaea_tune.resolve import method_options, resolved_settings
from gaea_tune.tracking import Tracker, check_experiment_usable
from gaea_tune.tune._backend import (
    Backend,
    RunContext,
    check_cluster_resources,
    connect,
    local_gpu_count,
    local_resources,
    log_outcome,
    run_key,
    tracking_settings,
)
from gaea_tune.tune._live import (
    _final_retrain,
    _outcome,
    format_progress,
    orchestration_summary,
    throughput,
)

STATE_FILE = "compare_state.json"

# Kept under their earlier names for callers of this module.
_connect = connect
_log_outcome = log_outcome
_local_gpu_count = local_gpu_count
_tracking_settings = tracking_settings

__all__ = [
    "STATE_FILE", "backend_for", "check_cluster_resources", "compare", "format_progress",
    "method_options", "orchestration_summary", "run_key", "throughput", "_final_retrain",
    "_outcome",
]  # fmt: skip


def backend_for(config: ExperimentConfig) -> Backend:
    """The backend of ``config.mode``: ``tabular`` -> the table, ``live`` -> Ray Tune trials."""
    if config.mode == "tabular":
        from gaea_tune.tune._tabular_compare import TableBackend

        return TableBackend()
    from gaea_tune.tune._live import LiveBackend

    return LiveBackend()


def _load_or_create_state(workdir: Path, resume: bool) -> dict[str, Any]:
    path = workdir / STATE_FILE
    if resume:
        if not path.exists():
            raise ConfigError(
                f"--resume: no earlier comparison in {str(workdir)!r} ({STATE_FILE} missing); "
                "run without --resume"
            )
        return json.loads(path.read_text())
    return {"invocation": time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]}


def compare(
    config: ExperimentConfig,
    resume: bool = False,
    address: str | None = None,
    progress: Any = print,
    *,
    shutdown_ray: bool = False,
) -> dict[str, Any]:
    """Run the comparison; return ``{"workdir", "tracking_uri", "experiment_id", "parent_run_id",
    "outcomes"}``. ``shutdown_ray``: when done (or failed), shut down the Ray this call started
    or connected to; a Ray that was already initialised is left as it was."""
    started_ray = not ray.is_initialized()
    try:
        return _compare(config, resume, address, progress)
    finally:
        if shutdown_ray and started_ray and ray.is_initialized():
            ray.shutdown()


def _compare(
    config: ExperimentConfig, resume: bool, address: str | None, progress: Any
) -> dict[str, Any]:
    workdir = Path(config.output_dir).expanduser().resolve()
    address = address or config.ray_address
    try:  # what will run, checked before anything starts or is recorded
        resolved = resolved_settings(config)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if address is None and config.resources["gpu"] > local_gpu_count():
        check_cluster_resources(config, local_resources())
    if not ray.is_initialized():
        from gaea_tune.tune._doctor import check_head_reachable

        check_head_reachable(address)  # a closed port: one line, before anything is recorded
    state = _load_or_create_state(workdir, resume)
    tracking_uri, artifact_location = tracking_settings(config, workdir)
    check_experiment_usable(tracking_uri, config.name)  # reachable, and not a deleted name
    backend = backend_for(config)
    backend.prepare(config, address, tracking_uri)
    workdir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(tracking_uri, config.name, artifact_location)
    parent_key = run_key(config.name, state["invocation"], "compare")
    parent_run_id = tracker.start_run(
        name=f"compare-{state['invocation']}", key=parent_key, tags={"gaea.level": "comparison"}
    )
    tracker.log_params(
        parent_run_id, {**config.raw, "budget_device_seconds": config.budget_device_seconds}
    )
    tracker.log_json(parent_run_id, config.raw, "config.json")
    tracker.log_json(parent_run_id, resolved, "resolved.json")
    state.update(parent_run_id=parent_run_id, experiment_id=tracker.experiment_id)
    (workdir / STATE_FILE).write_text(json.dumps(state, indent=1))
    run_dir = workdir / "runs" / state["invocation"]  # event logs and outcomes of this invocation
    context = RunContext(
        config=config, workdir=workdir, run_dir=run_dir, invocation=state["invocation"],
        parent_run_id=parent_run_id, tracking_uri=tracking_uri,
        artifact_location=artifact_location, address=address, resume=resume, progress=progress,
    )  # fmt: skip
    outcomes = backend.run(context, tracker)
    tracker.end_run(parent_run_id, "FINISHED")
    return {
        "workdir": str(workdir),
        "run_dir": str(run_dir),
        "tracking_uri": tracking_uri,
        "experiment_id": tracker.experiment_id,
        "parent_run_id": parent_run_id,
        "outcomes": outcomes,
    }
