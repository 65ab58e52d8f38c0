"""``compare``: every method x seed under the same device-second budget, side by side on one cluster.

Each method x seed is its own Tune run, driven by a zero-CPU Ray task pinned to the driver's node
(so the event logs and a SQLite MLflow store stay local) while its trials spread over the cluster.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from gaea_tune.baselines._options import TRAINING_DEFAULTS
from gaea_tune.budget import device_count
from gaea_tune.config import ConfigError, ExperimentConfig, MethodConfig
from gaea_tune.resolve import flatten, method_options, resolved_settings
from gaea_tune.tracking import Tracker, check_experiment_usable, default_tracking
from gaea_tune.tune._budget import BudgetCallback, BudgetedSearcher, BudgetState, BudgetStopper
from gaea_tune.tune._mlflow_callback import MLflowTrialLogger
from gaea_tune.tune._outcome import ground_truth_column, incumbent_curve, nb201_ground_truth

STATE_FILE = "compare_state.json"


def _tracking_settings(config: ExperimentConfig, workdir: Path) -> tuple[str, str | None]:
    if config.tracking_uri:
        return config.tracking_uri, config.artifact_location
    uri, artifacts = default_tracking(workdir)
    return uri, config.artifact_location or artifacts


def run_key(experiment: str, invocation: str, *parts: Any) -> str:
    return "/".join([experiment, invocation, *map(str, parts)])


def _base_trial_config(config: ExperimentConfig, seed: int) -> dict[str, Any]:
    dataset = {k: v for k, v in config.dataset.items() if v is not None}
    dataset["seed"] = int(dataset.get("seed", 0)) + seed
    return {
        "space": config.space["name"],
        "C": config.space["C"],
        "N": config.space["N"],
        "dataset": dataset,
        "seed": seed,
        "resources": dict(config.resources),
    }


def _tune_setup(
    config: ExperimentConfig, method: MethodConfig, seed: int, ref: BudgetStopper
) -> tuple[Any, dict[str, Any], tune.TuneConfig]:
    """Trainable, param space and TuneConfig for one method x seed."""
    base = _base_trial_config(config, seed)
    resources = {"cpu": config.resources["cpu"], "gpu": config.resources["gpu"]}
    if method.family == "weight-sharing":
        from gaea_tune.tune._supernet_trainable import supernet_trainable

        param_space = {**base, "method": method.method, **method_options(config, method)}
        param_space["numerics"] = {"cudnn_benchmark": config.numerics.get("cudnn_benchmark")}
        if "epochs" not in method.options:  # the length (and lr schedule) comes from the budget
            param_space["epochs_from_budget"] = True
            param_space["budget_device_seconds"] = config.budget_device_seconds
        tune_config = tune.TuneConfig(metric="search_signal", mode="max", num_samples=1)
        return tune.with_resources(supernet_trainable, resources), param_space, tune_config

    from gaea_tune.tune._searchers import make_tune_components
    from gaea_tune.tune._standalone_trainable import standalone_trainable
    from search_spaces import get_space

    options = method_options(config, method)
    max_epochs = int(options.get("epochs", TRAINING_DEFAULTS["epochs"]))
    max_concurrent = options.pop("max_concurrent", None)
    param_space, search_alg, scheduler = make_tune_components(
        method.method, get_space(config.space["name"]), options, seed, max_epochs
    )
    param_space = {**base, **{k: v for k, v in options.items() if k != "epochs"}, **param_space}
    param_space["numerics"] = dict(config.numerics)  # the same numerics as the supernet
    param_space["epochs"] = max_epochs
    tune_config = tune.TuneConfig(
        metric="search_signal",
        mode="max",
        search_alg=BudgetedSearcher(search_alg, ref),
        scheduler=scheduler,
        num_samples=-1,
        max_concurrent_trials=max_concurrent,
        reuse_actors=True,
    )
    return tune.with_resources(standalone_trainable, resources), param_space, tune_config


def _method_seed_task(job: dict[str, Any]) -> dict[str, Any]:
    """Run one method x seed to its budget; log it to MLflow; return its outcome.

    A method that cannot run at all ends as a FAILED MLflow run with the reason, and the
    exception propagates to the driver, which carries on with the other methods.
    """
    tracker, run_id = _open_method_run(job)
    try:
        return _run_method_seed(job, tracker, run_id)
    except Exception as error:
        reason = traceback.format_exception_only(type(error), error)[-1].strip()
        tracker.set_tags(run_id, {"gaea.failure": reason[:4000]})
        tracker.log_text(run_id, traceback.format_exc(), "error.txt")
        tracker.end_run(run_id, "FAILED")
        raise


def _open_method_run(job: dict[str, Any]) -> tuple[Tracker, str]:
    config: ExperimentConfig = job["config"]
    method: MethodConfig = job["method"]
    seed: int = job["seed"]
    tracker = Tracker(job["tracking_uri"], config.name, job["artifact_location"])
    name = f"{method.label}-seed{seed}"
    key = run_key(config.name, job["invocation"], method.label, seed)
    run_id = tracker.start_run(
        name=name,
        key=key,
        parent_run_id=job["parent_run_id"],
        tags={"gaea.level": "method", "gaea.method": method.label, "gaea.seed": str(seed),
              "gaea.family": method.family},
    )  # fmt: skip
    tracker.log_params(
        run_id,
        {"method": method.method, "seed": seed, "budget_device_seconds": config.budget_device_seconds,
         "family": method.family, **{f"option.{k}": v for k, v in method.options.items()}},
    )  # fmt: skip
    # every setting that will run, defaults filled in (what `validate --show` prints)
    resolved = resolved_settings(config)["methods"][method.label]
    tracker.log_params(run_id, flatten(resolved, "resolved."))
    return tracker, run_id


def _run_method_seed(job: dict[str, Any], tracker: Tracker, run_id: str) -> dict[str, Any]:
    task_started = time.time()
    config: ExperimentConfig = job["config"]
    method: MethodConfig = job["method"]
    seed: int = job["seed"]
    run_dir = Path(job["run_dir"])
    name = f"{method.label}-seed{seed}"
    key = run_key(config.name, job["invocation"], method.label, seed)
    devices, _ = device_count(config.resources["gpu"], config.resources["cpu"])
    events_path = str(run_dir / "events" / f"{name}.jsonl")
    stopper = BudgetStopper(key, config.budget_device_seconds, events_path, devices)
    trainable, param_space, tune_config = _tune_setup(config, method, seed, stopper)
    run_config = tune.RunConfig(
        name=name,
        storage_path=job["storage_path"],
        stop=stopper,
        callbacks=[
            BudgetCallback(*stopper.args),
            MLflowTrialLogger(
                job["tracking_uri"],
                config.name,
                job["artifact_location"],
                run_id,
                key,
                tags={"gaea.method": method.label, "gaea.seed": str(seed)},
            ),
        ],  # fmt: skip
        failure_config=tune.FailureConfig(max_failures=config.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        verbose=0,
    )
    experiment_path = f"{job['storage_path'].rstrip('/')}/{name}"
    if job["resume"] and tune.Tuner.can_restore(experiment_path):
        tuner = tune.Tuner.restore(
            experiment_path, trainable=trainable, param_space=param_space,
            resume_unfinished=True, resume_errored=True,
        )  # fmt: skip
    else:
        tuner = tune.Tuner(
            trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
        )
    _close_trial_runs(tracker, run_id, tuner.fit())
    outcome = _outcome(config, method, seed, BudgetState.get(*stopper.args))
    results = [e["time"] for e in BudgetState.get(*stopper.args).events if "time" in e]
    if results and not job["resume"]:
        outcome["time_to_first_result_seconds"] = round(min(results) - task_started, 3)
    if outcome["ground_truth"] is None and outcome["genotype"] and config.final_retrain_epochs:
        outcome["retrain"] = _final_retrain(config, method, seed, outcome["genotype"])
        outcome["ground_truth"] = {"retrain_test_acc": outcome["retrain"]["retrain_test_acc"]}
        outcome["ground_truth_column"] = "retrain_test_acc"
    _log_outcome(tracker, run_id, outcome)
    (run_dir / "outcomes").mkdir(parents=True, exist_ok=True)
    (run_dir / "outcomes" / f"{name}.json").write_text(json.dumps(outcome, indent=1))
    return outcome


def _close_trial_runs(tracker: Tracker, method_run_id: str, results: Any) -> None:
    """End trial runs Tune stopped without a callback (budget reached) or a killed driver
    started but never saved (KILLED)."""
    errors = {r.metrics.get("trial_id"): r.error for r in results if r.metrics}
    for run in tracker.child_runs(method_run_id):
        if run.info.status != "RUNNING":
            continue
        trial_id = run.data.tags.get("gaea.trial_id")
        if trial_id not in errors:
            tracker.set_tags(run.info.run_id, {"gaea.failure": "lost with a killed driver"})
            tracker.end_run(run.info.run_id, "KILLED")
        else:
            tracker.end_run(run.info.run_id, "FAILED" if errors[trial_id] else "FINISHED")


def _final_retrain(
    config: ExperimentConfig, method: MethodConfig, seed: int, genotype: str
) -> dict[str, Any]:
    """Retrain the incumbent from scratch on the cluster with the comparison's one retrain
    protocol (the same for every method and family); its cost is reported apart from search."""
    from gaea_tune.tune._retrain import retrain

    del method  # the protocol does not depend on who found the genotype
    resources = config.resources
    task = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"])(retrain)
    job = {**_base_trial_config(config, seed), "genotype": genotype,
           "protocol": dict(config.final_retrain)}  # fmt: skip
    return ray.get(task.remote(job))


def _outcome(
    config: ExperimentConfig, method: MethodConfig, seed: int, state: BudgetState
) -> dict[str, Any]:
    primary = ground_truth_column(config.space["name"], config.dataset["name"])
    curve, incumbent = incumbent_curve(state.events, method.family, primary, method=method.method)
    genotype = incumbent["genotype"] if incumbent else None
    ground_truth = nb201_ground_truth(genotype, primary) if genotype and primary else None
    trials = {e["trial_id"] for e in state.events} | set(state.ledger.spent_by_trial)
    failure = None
    if genotype is None:  # nothing to show for the budget: the method x seed failed
        reasons = sorted(set(state.failures.values()))
        failure = "; ".join(reasons) if reasons else "no trial reported a search signal"
    return {
        "throughput": throughput(state.events),
        "status": "failed" if failure else "finished",
        "failure": failure,
        "label": method.label,
        "method": method.method,
        "family": method.family,
        "seed": seed,
        "budget_device_seconds": config.budget_device_seconds,
        "spent_device_seconds": round(state.ledger.spent, 3),
        "trials": len(trials),
        "failed_trials": state.failures,
        "genotype": genotype,
        "search_signal": incumbent["search_signal"] if incumbent else None,
        "ground_truth": ground_truth,
        "ground_truth_column": primary,
        "curve": curve,
    }


def throughput(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Images processed (training and evaluation) per charged device-second, per trial and for
    the method as a whole, from each trial's last result: contention shows up here."""
    last: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("kind") == "result" and event.get("images") is not None:
            last[event["trial_id"]] = event
    per_trial = {
        trial: round(e["images"] / e["trial_device_seconds"], 3)
        for trial, e in last.items()
        if e["trial_device_seconds"] > 0
    }
    images = sum(e["images"] for e in last.values())
    seconds = sum(e["trial_device_seconds"] for e in last.values())
    return {
        "images_per_device_second": round(images / seconds, 3) if seconds > 0 else None,
        "mean_of_trials": round(sum(per_trial.values()) / len(per_trial), 3) if per_trial else None,
        "per_trial": per_trial,
    }


def _log_outcome(tracker: Tracker, run_id: str, outcome: dict[str, Any]) -> None:
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


# --- the driver ------------------------------------------------------------------------------


def _local_gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


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


def _connect(address: str | None) -> None:
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip


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
) -> dict[str, Any]:
    """Run the comparison; return ``{"workdir", "tracking_uri", "experiment_id", "parent_run_id",
    "outcomes"}``."""
    workdir = Path(config.output_dir).expanduser().resolve()
    address = address or config.ray_address
    try:  # what will run, checked before anything starts or is recorded
        resolved = resolved_settings(config)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if address is None and config.resources["gpu"] > _local_gpu_count():
        check_cluster_resources(config, {"GPU": _local_gpu_count(), "CPU": os.cpu_count() or 1})
    state = _load_or_create_state(workdir, resume)
    tracking_uri, artifact_location = _tracking_settings(config, workdir)
    check_experiment_usable(tracking_uri, config.name)  # reachable, and not a deleted name
    if config.mode == "live":
        _connect(address)
        check_cluster_resources(config, ray.cluster_resources())
        if address:  # a cluster: same code everywhere, storage shared, tracking reachable
            from gaea_tune.tune._doctor import check_cluster

            check_cluster(config, tracking_uri)
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

    if config.mode == "tabular":
        from gaea_tune.tune._tabular_compare import run_tabular

        outcomes = run_tabular(config, tracker, parent_run_id, state["invocation"], address)
    else:
        started = time.time()
        machine = _machine_devices(config)
        outcomes = _run_live(
            config, state, run_dir, tracking_uri, artifact_location, address, resume, progress
        )
        overhead = orchestration_summary(outcomes, started, time.time(), machine, config)
        tracker.log_json(parent_run_id, overhead, "orchestration.json")
        tracker.log_metrics(
            parent_run_id,
            {k: v for k, v in overhead.items() if isinstance(v, (int, float))},
            step=0,
        )
    tracker.end_run(parent_run_id, "FINISHED")
    return {
        "workdir": str(workdir),
        "run_dir": str(run_dir),
        "tracking_uri": tracking_uri,
        "experiment_id": tracker.experiment_id,
        "parent_run_id": parent_run_id,
        "outcomes": outcomes,
    }


def _run_live(
    config: ExperimentConfig,
    state: dict[str, Any],
    run_dir: Path,
    tracking_uri: str,
    artifact_location: str | None,
    address: str | None,
    resume: bool,
    progress: Any,
) -> list[dict[str, Any]]:
    storage = config.storage_path or str(run_dir.parent.parent / "ray")
    if "://" not in storage:
        storage = str(Path(storage).expanduser().resolve())
    storage = f"{storage.rstrip('/')}/{state['invocation']}"
    node = NodeAffinitySchedulingStrategy(
        node_id=ray.get_runtime_context().get_node_id(), soft=False
    )
    task = ray.remote(num_cpus=0, max_retries=0)(_method_seed_task).options(
        scheduling_strategy=node
    )
    pending: dict[Any, str] = {}
    jobs: dict[str, tuple[MethodConfig, int]] = {}
    outcomes: list[dict[str, Any]] = []
    for method in config.methods:
        for seed in config.seeds:
            name = f"{method.label}-seed{seed}"
            done_file = run_dir / "outcomes" / f"{name}.json"
            if resume and done_file.exists():
                outcomes.append(json.loads(done_file.read_text()))
                continue
            job = {
                "config": config, "method": method, "seed": seed, "run_dir": str(run_dir),
                "invocation": state["invocation"], "parent_run_id": state["parent_run_id"],
                "tracking_uri": tracking_uri, "artifact_location": artifact_location,
                "storage_path": storage, "resume": resume,
            }  # fmt: skip
            pending[task.remote(job)] = name
            jobs[name] = (method, seed)
    last = 0.0
    errors: list[str] = []
    while pending:
        ready, _ = ray.wait(list(pending), timeout=1.0)
        for ref in ready:
            name = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as error:  # one method failing does not end the comparison
                outcome = _failed_outcome(config, jobs[name], run_dir, _last_line(error))
            if outcome.get("status") == "failed":
                errors.append(f"{name}: {outcome['failure']}")
            outcomes.append(outcome)
        if time.time() - last >= config.report_every_seconds or not pending:
            last = time.time()
            progress(format_progress(config, run_dir))
    for line in errors:
        progress(f"method failed: {line}")
    return outcomes


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1][:2000] if lines else type(error).__name__


def _failed_outcome(
    config: ExperimentConfig, job: tuple[MethodConfig, int], run_dir: Path, reason: str
) -> dict[str, Any]:
    """The outcome of a method x seed whose whole task failed (its MLflow run is FAILED with
    the reason already): what it spent, from its event log, and why it failed."""
    method, seed = job
    key = run_key(config.name, run_dir.name, method.label, seed)
    devices, _ = device_count(config.resources["gpu"], config.resources["cpu"])
    events = str(run_dir / "events" / f"{method.label}-seed{seed}.jsonl")
    state = BudgetState(key, config.budget_device_seconds, events, devices)
    outcome = _outcome(config, method, seed, state)
    outcome.update(status="failed", failure=reason)
    return outcome


def _machine_devices(config: ExperimentConfig) -> float:
    """Devices of the kind the comparison charges, on the whole cluster (GPUs, else CPUs)."""
    resources = ray.cluster_resources()
    return float(resources.get("GPU" if config.device_kind == "gpu" else "CPU", 0.0))


def orchestration_summary(
    outcomes: list[dict[str, Any]],
    started: float,
    ended: float,
    machine_devices: float,
    config: ExperimentConfig,
) -> dict[str, Any]:
    """How much of the machine went into budgets: the spend of every method x seed over the
    machine's device-seconds during the comparison (wall x devices), and each method's time to
    its first result. What is missing went to start-up, scheduling, reporting and idle slots."""
    wall = max(ended - started, 1e-9)
    spent = sum(float(o.get("spent_device_seconds") or 0.0) for o in outcomes)
    capacity = wall * machine_devices
    first = {
        f"{o['label']}-seed{o['seed']}": o.get("time_to_first_result_seconds") for o in outcomes
    }
    return {
        "wall_seconds": round(wall, 3),
        "machine_devices": machine_devices,
        "device_kind": config.device_kind,
        "machine_device_seconds": round(capacity, 3),
        "budget_device_seconds_spent": round(spent, 3),
        "share_in_budgets": round(spent / capacity, 4) if capacity > 0 else None,
        "time_to_first_result_seconds": first,
    }


def format_progress(config: ExperimentConfig, run_dir: Path) -> str:
    """One line per method x seed: budget spent, trials, best search signal so far."""
    lines = [f"[{time.strftime('%H:%M:%S')}] budget {config.budget_device_seconds:.0f} "
             f"{config.device_kind}-seconds per method"]  # fmt: skip
    for method in config.methods:
        for seed in config.seeds:
            path = run_dir / "events" / f"{method.label}-seed{seed}.jsonl"
            spent, trials, best = 0.0, set(), None
            if path.exists():
                for line in path.read_text().splitlines():
                    event = json.loads(line)
                    if event["kind"] != "result":
                        continue
                    spent = max(spent, event["method_device_seconds"])
                    trials.add(event["trial_id"])
                    if event["search_signal"] is not None:
                        best = max(best or 0.0, event["search_signal"])
            share = 100.0 * spent / config.budget_device_seconds
            best_text = f"{best:6.2f}" if best is not None else "     -"
            lines.append(f"  {method.label:>14} seed {seed}: {spent:8.1f} s ({share:5.1f}%)  "
                         f"trials {len(trials):3d}  best signal {best_text}")  # fmt: skip
    return "\n".join(lines)
