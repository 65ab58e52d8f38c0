"""What both comparison backends share, and the small interface :func:`compare` drives them by.

A comparison runs every method x seed on one of two backends:

- ``live`` (:class:`gaea_tune.tune._live.LiveBackend`): each method x seed is a Ray Tune run of
  real trials -- standalone or supernet training, or table-backed trials that replay the NB201
  table's records (``dataset.simulate: table``) under the same searchers, schedulers, budget
  stopper and MLflow callback;
- ``table`` (:class:`gaea_tune.tune._tabular_compare.TableBackend`, ``mode: tabular``): each
  method x seed is a plain-loop simulated search on the NB201 table, Ray only spreading seeds.

The split follows syne-tune's backend swap (``syne_tune/backend/trial_backend.py``, and the
simulated time of ``syne_tune/backend/simulator_backend/simulator_backend.py``): the driver and
the report stay the same, only where trials run changes. Both backends use the pieces here: run
keys, the MLflow lifecycle of a method run (open with its parameters, log the
:class:`~gaea_tune.tune._outcome.Outcome`, end), the Ray connection and the resource checks.
Nothing here imports a backend, so no module of ``tune/`` imports one that imports it back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ray

from gaea_tune.config import ConfigError, ExperimentConfig, MethodConfig
from gaea_tune.resolve import flatten, resolved_settings
from gaea_tune.tracking import Tracker, default_tracking
from gaea_tune.tune._outcome import Outcome


def run_key(experiment: str, invocation: str, *parts: Any) -> str:
    """The idempotency key of an MLflow run: ``experiment/invocation/part/...``."""
    return "/".join([experiment, invocation, *map(str, parts)])


def tracking_settings(config: ExperimentConfig, workdir: Path) -> tuple[str, str | None]:
    """(tracking URI, artifact location): the config's, else the SQLite store in ``workdir``."""
    if config.tracking_uri:
        return config.tracking_uri, config.artifact_location
    uri, artifacts = default_tracking(workdir)
    return uri, config.artifact_location or artifacts


# --- the cluster -----------------------------------------------------------------------------


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (or start a local Ray) unless already connected."""
    if not ray.is_initialized():
        from gaea_tune.tune._doctor import check_head_reachable

        check_head_reachable(address)  # a closed port: one line now, not minutes of retries
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip


def local_gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def local_resources() -> dict[str, float]:
    """This machine's GPUs and CPUs, in Ray's resource names."""
    return {"GPU": float(local_gpu_count()), "CPU": float(os.cpu_count() or 1)}


def check_cluster_resources(config: ExperimentConfig, cluster: dict[str, float]) -> None:
    """More GPUs or CPUs per trial than the cluster has: an error before any trial starts."""
    for kind, key in (("gpu", "GPU"), ("cpu", "CPU")):
        wanted = config.resources[kind]
        have = float(cluster.get(key, 0.0))
        if wanted > have:
            raise ConfigError(
                f"resources.{kind}: {wanted:g} per trial but the Ray cluster has {have:g} "
                f"{key}s; allowed: <= {have:g}"
            )


# --- the MLflow lifecycle of a method x seed -------------------------------------------------


def method_run_name(method: MethodConfig, seed: int) -> str:
    return f"{method.label}-seed{seed}"


def open_method_run(
    tracker: Tracker,
    config: ExperimentConfig,
    method: MethodConfig,
    seed: int,
    invocation: str,
    parent_run_id: str,
    resolved: dict[str, Any] | None = None,
) -> str:
    """Start the MLflow run of one method x seed under the comparison run, with its parameters
    and every setting that will run (defaults filled in, as ``validate --show`` prints them)."""
    run_id = tracker.start_run(
        name=method_run_name(method, seed),
        key=run_key(config.name, invocation, method.label, seed),
        parent_run_id=parent_run_id,
        tags={"gaea.level": "method", "gaea.method": method.label, "gaea.seed": str(seed),
              "gaea.family": method.family},
    )  # fmt: skip
    tracker.log_params(
        run_id,
        {"method": method.method, "seed": seed, "budget_device_seconds": config.budget_device_seconds,
         "family": method.family, **{f"option.{k}": v for k, v in method.options.items()}},
    )  # fmt: skip
    resolved = resolved or resolved_settings(config)["methods"]
    tracker.log_params(run_id, flatten(resolved[method.label], "resolved."))
    return run_id


def log_outcome(tracker: Tracker, run_id: str, outcome: Outcome | dict[str, Any]) -> None:
    """Log an outcome on its method run (metrics, incumbent curve, tags, ``outcome.json``) and
    end the run: FAILED when the method x seed had nothing to show, else FINISHED."""
    if isinstance(outcome, Outcome):
        outcome = outcome.to_dict()
    tracker.log_metrics(
        run_id,
        {
            "spent_device_seconds": outcome["spent_device_seconds"],
            "budget_device_seconds": outcome["budget_device_seconds"],
            "trials": outcome["trials"],
            "failed_trials": len(outcome["failed_trials"]),
            "search_signal": outcome["search_signal"],
            "images_per_device_second": (outcome.get("throughput") or {}).get(
                "images_per_device_second"
            ),
            **{f"ground_truth.{k}": v for k, v in (outcome["ground_truth"] or {}).items()},
        },
        step=0,
    )
    for seconds, value in outcome["curve"]:
        tracker.log_metrics(run_id, {"incumbent": value}, step=int(round(seconds)))
    for key, value in (outcome.get("retrain") or {}).items():
        if isinstance(value, (int, float)):
            tracker.log_metrics(run_id, {key: value}, step=0)
    tags = {"genotype": outcome["genotype"] or ""}
    if outcome.get("retrain"):
        tags["gaea.retrain_protocol"] = str(outcome["retrain"].get("retrain_protocol"))
    if outcome["failed_trials"]:
        tags["gaea.failures"] = "; ".join(f"{k}: {v}" for k, v in outcome["failed_trials"].items())
    if outcome.get("failure"):
        tags["gaea.failure"] = str(outcome["failure"])[:4000]
    tracker.set_tags(run_id, tags)
    tracker.log_json(run_id, outcome, "outcome.json")
    tracker.end_run(run_id, "FAILED" if outcome.get("status") == "failed" else "FINISHED")


# --- the interface ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """Where one comparison invocation runs and records: handed to a backend's ``run``."""

    config: ExperimentConfig
    workdir: Path
    run_dir: Path  # event logs and outcomes of this invocation
    invocation: str
    parent_run_id: str
    tracking_uri: str
    artifact_location: str | None
    address: str | None
    resume: bool
    progress: Callable[[str], Any]


class Backend(Protocol):
    """Runs every method x seed of a comparison; returns their outcomes as dicts."""

    def prepare(self, config: ExperimentConfig, address: str | None, tracking_uri: str) -> None:
        """Checks (and connections) that must pass before anything is recorded."""

    def run(self, context: RunContext, tracker: Tracker) -> list[dict[str, Any]]:
        """Every method x seed, each a child MLflow run of ``context.parent_run_id``."""
