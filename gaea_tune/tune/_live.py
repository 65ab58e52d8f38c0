"""The live backend: every method x seed is a Ray Tune run of real trials.

Each method x seed is its own Tune run, driven by a zero-CPU Ray task pinned to the driver's node
(so the event logs and a SQLite MLflow store stay local) while its trials spread over the cluster.
Its trials train (standalone networks or a supernet), or, with ``dataset.simulate: table``,
replay the NB201 table's records (:mod:`gaea_tune.tune._table_trainable`) under the very same
searchers, schedulers, budget stopper and MLflow callback.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from gaea_tune.baselines._options import TRAINING_DEFAULTS
from gaea_tune.budget import device_count
from gaea_tune.config import ExperimentConfig, MethodConfig
from gaea_tune.resolve import method_options, storage_folder
from gaea_tune.tracking import Tracker
from gaea_tune.tune._backend import (
    RunContext,
    check_cluster_resources,
    connect,
    log_outcome,
    method_run_name,
    open_method_run,
    run_key,
)
from gaea_tune.tune._budget import (
    BudgetCallback,
    BudgetedSearcher,
    BudgetState,
    BudgetStopper,
    read_events,
)
from gaea_tune.tune._mlflow_callback import MLflowTrialLogger
from gaea_tune.tune._outcome import (
    Outcome,
    ground_truth_column,
    incumbent_curve,
    nb201_ground_truth,
)


class LiveBackend:
    """Ray Tune trials for every method x seed (see the module docstring)."""

    def prepare(self, config: ExperimentConfig, address: str | None, tracking_uri: str) -> None:
        connect(address)
        check_cluster_resources(config, ray.cluster_resources())
        if address:  # a cluster: same code everywhere, storage shared, tracking reachable
            from gaea_tune.tune._doctor import check_cluster

            check_cluster(config, tracking_uri)

    def run(self, context: RunContext, tracker: Tracker) -> list[dict[str, Any]]:
        config = context.config
        started = time.time()
        machine = _machine_devices(config)
        outcomes = _run_live(context)
        overhead = orchestration_summary(outcomes, started, time.time(), machine, config)
        tracker.log_json(context.parent_run_id, overhead, "orchestration.json")
        tracker.log_metrics(
            context.parent_run_id,
            {k: v for k, v in overhead.items() if isinstance(v, (int, float))},
            step=0,
        )
        return outcomes


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


def supernet_config(config: ExperimentConfig, method: MethodConfig, seed: int) -> dict[str, Any]:
    """The trainable config of one weight-sharing search (``compare`` and ``gaea-tune search``
    build it the same way from the same YAML)."""
    param_space = {**_base_trial_config(config, seed), "method": method.method,
                   **method_options(config, method)}  # fmt: skip
    param_space["numerics"] = {"cudnn_benchmark": config.numerics.get("cudnn_benchmark")}
    if "epochs" not in method.options:  # the length (and lr schedule) comes from the budget
        param_space["epochs_from_budget"] = True
        param_space["budget_device_seconds"] = config.budget_device_seconds
    return param_space


def _tune_setup(
    config: ExperimentConfig, method: MethodConfig, seed: int, ref: BudgetStopper
) -> tuple[Any, dict[str, Any], tune.TuneConfig]:
    """Trainable, param space and TuneConfig for one method x seed."""
    base = _base_trial_config(config, seed)
    resources = {"cpu": config.resources["cpu"], "gpu": config.resources["gpu"]}
    if method.family == "weight-sharing":
        from gaea_tune.tune._supernet_trainable import supernet_trainable

        param_space = supernet_config(config, method, seed)
        tune_config = tune.TuneConfig(metric="search_signal", mode="max", num_samples=1)
        return tune.with_resources(supernet_trainable, resources), param_space, tune_config

    from gaea_tune.tune._searchers import make_tune_components
    from search_spaces import get_space

    options = method_options(config, method)
    max_epochs = int(options.get("epochs", TRAINING_DEFAULTS["epochs"]))
    max_concurrent = options.pop("max_concurrent", None)
    if config.dataset.get("simulate") == "table":  # replay the table: one step per fidelity
        from gaea_tune.tune._table_trainable import fidelities, table_trainable

        trainable: Any = table_trainable
        steps = len(fidelities(max_epochs))
        if method.method == "bohb" and steps == 2:
            options.setdefault("reduction_factor", 2)  # 12 -> 200 epochs: one halving
    else:
        from gaea_tune.tune._standalone_trainable import standalone_trainable

        trainable, steps = standalone_trainable, max_epochs  # scheduler time: epochs trained
    param_space, search_alg, scheduler = make_tune_components(
        method.method, get_space(config.space["name"]), options, seed, steps
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
    return tune.with_resources(trainable, resources), param_space, tune_config


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
    tracker = Tracker(job["tracking_uri"], config.name, job["artifact_location"])
    run_id = open_method_run(
        tracker, config, job["method"], job["seed"], job["invocation"], job["parent_run_id"]
    )
    return tracker, run_id


def _run_method_seed(job: dict[str, Any], tracker: Tracker, run_id: str) -> dict[str, Any]:
    task_started = time.time()
    config: ExperimentConfig = job["config"]
    method: MethodConfig = job["method"]
    seed: int = job["seed"]
    run_dir = Path(job["run_dir"])
    name = method_run_name(method, seed)
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
    if job["resume"]:  # this resume's note, or none: never an earlier resume's
        tracker.set_tags(run_id, {"gaea.resume_note": job.get("resume_note", "")})
    if job["resume"] and tune.Tuner.can_restore(experiment_path):
        tuner = tune.Tuner.restore(
            experiment_path, trainable=trainable, param_space=param_space,
            resume_unfinished=True, resume_errored=True,
        )  # fmt: skip
    else:
        spent = BudgetState.get(*stopper.args).ledger.spent
        tuner = tune.Tuner(
            trainable,
            param_space=plan_for_budget_left(param_space, config.budget_device_seconds, spent),
            tune_config=tune_config,
            run_config=run_config,
        )
    _close_trial_runs(tracker, run_id, tuner.fit())
    outcome = _outcome(config, method, seed, BudgetState.get(*stopper.args))
    results = [e["time"] for e in BudgetState.get(*stopper.args).events if "time" in e]
    if results and not job["resume"]:
        outcome.time_to_first_result_seconds = round(min(results) - task_started, 3)
    if outcome.ground_truth is None and outcome.genotype and config.final_retrain_epochs:
        outcome.retrain = _final_retrain(config, method, seed, outcome.genotype)
        outcome.ground_truth = {"retrain_test_acc": outcome.retrain["retrain_test_acc"]}
        outcome.ground_truth_column = "retrain_test_acc"
    record = outcome.to_dict()
    log_outcome(tracker, run_id, record)
    (run_dir / "outcomes").mkdir(parents=True, exist_ok=True)
    (run_dir / "outcomes" / f"{name}.json").write_text(json.dumps(record, indent=1))
    return record


def plan_for_budget_left(
    param_space: dict[str, Any], budget: float, spent: float
) -> dict[str, Any]:
    """The param space of a Tune run started anew after ``spent`` of ``budget`` device-seconds
    (a resume whose Tune folder was moved aside): a weight-sharing search that plans its epochs
    and lr schedule from the budget (``budget_device_seconds`` in its config) plans them for
    what is left; anything else is returned as it is."""
    left = budget - spent
    if param_space.get("budget_device_seconds") is None or not 0 < left < budget:
        return param_space
    return {**param_space, "budget_device_seconds": left}


def _snapshot_patterns() -> list[str]:
    """The files of a Tune run's snapshot that ``Tuner.restore`` reads, as Ray names them."""
    from ray.tune.callback import CallbackList
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.impl.tuner_internal import _TUNER_PKL
    from ray.tune.search import BasicVariantGenerator, Searcher, SearchGenerator

    templates = (TuneController, SearchGenerator, Searcher, BasicVariantGenerator, CallbackList)
    return [cls.CKPT_FILE_TMPL.format("*") for cls in templates] + [_TUNER_PKL]


def _loads(path: Path) -> bool:
    """Whether a snapshot file is whole: the experiment state parses as JSON; every other file
    is a pickle, whose opcodes must run to its STOP (read with :mod:`pickletools`: nothing is
    imported or run, so a whole pickle of a class since renamed still counts as whole)."""
    import pickletools

    data = path.read_bytes()
    try:
        if path.name.startswith("experiment_state-"):
            json.loads(data)
        else:
            for _ in pickletools.genops(data):
                pass
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, "pickle exhausted before STOP"
        return False
    return True


def set_aside_unrestorable(experiment_path: str) -> str | None:
    """Move aside a Tune run's folder that a killed driver left unfit for ``Tuner.restore``.

    ``Tuner.restore`` reads the newest (largest name) file of each kind in the folder
    (``ray/tune/utils/util.py:_load_newest_checkpoint``,
    ``ray/tune/execution/experiment_state.py:_find_newest_experiment_checkpoint``). Tune writes
    ``experiment_state-<session>.json`` in place and copies every snapshot file to the storage
    path in place (``ray/train/_internal/storage.py:_pyarrow_fs_copy_files``), so a driver killed
    mid-write can leave one cut short, and the restore then fails or goes wrong. A driver killed
    before Tune's first snapshot leaves a folder with none, and a new ``Tuner`` started in it
    ended after one trial, at 24% of the budget (measured, Ray 2.60). In both cases the folder
    is renamed ``<name>.partial`` (or ``.partial-<k>``) and the method's task starts a new Tune
    run in a fresh folder. An older session's snapshot is not used instead: its trials'
    checkpoints may already be deleted (``CheckpointConfig(num_to_keep)``). The method's event
    log, and so every result and the budget already spent, is kept.

    Args:
        experiment_path: the Tune run's folder (``<storage>/<invocation>/<method>-seed<k>``); a
            ``scheme://`` path is left to Tune.

    Returns:
        One line saying what was moved and why, or None when the folder is fit (or absent).

    Raises:
        OSError: a file could not be read or the folder not renamed.
    """
    folder = Path(experiment_path)
    if "://" in experiment_path or not folder.is_dir():
        return None
    patterns = _snapshot_patterns()
    newest = {p: max(found) for p in patterns if (found := list(folder.glob(p)))}
    if patterns[0] not in newest:  # no experiment state
        why = "Tune wrote no snapshot before the driver was killed"
    else:
        broken = [path.name for path in newest.values() if not _loads(path)]
        if not broken:
            return None
        why = f"{', '.join(broken)} of Tune's snapshot does not load (cut short by the kill)"
    spare, k = folder.with_name(f"{folder.name}.partial"), 1
    while spare.exists():
        k += 1
        spare = folder.with_name(f"{folder.name}.partial-{k}")
    folder.rename(spare)
    return (
        f"{why}: {folder} moved to {spare.name}; a new Tune run goes on from the budget already "
        "spent, its searcher started afresh (a weight-sharing search from epoch 0)"
    )


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
           "protocol": dict(config.final_retrain), "numerics": dict(config.numerics)}  # fmt: skip
    return ray.get(task.remote(job))


def _outcome(
    config: ExperimentConfig, method: MethodConfig, seed: int, state: BudgetState
) -> Outcome:
    primary = ground_truth_column(config.space["name"], config.dataset["name"])
    curve, incumbent = incumbent_curve(state.events, method.family, primary, method=method.method)
    genotype = incumbent["genotype"] if incumbent else None
    ground_truth = nb201_ground_truth(genotype, primary) if genotype and primary else None
    trials = {e["trial_id"] for e in state.events} | set(state.ledger.spent_by_trial)
    failure = None
    if genotype is None:  # nothing to show for the budget: the method x seed failed
        reasons = sorted(set(state.failures.values()))
        failure = "; ".join(reasons) if reasons else "no trial reported a search signal"
    return Outcome(
        label=method.label,
        method=method.method,
        family=method.family,
        seed=seed,
        budget_device_seconds=config.budget_device_seconds,
        spent_device_seconds=round(state.ledger.spent, 3),
        trials=len(trials),
        genotype=genotype,
        search_signal=incumbent["search_signal"] if incumbent else None,
        ground_truth=ground_truth,
        ground_truth_column=primary,
        curve=curve,
        failed_trials=state.failures,
        status="failed" if failure else "finished",
        failure=failure,
        throughput=throughput(state.events),
    )


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


def _run_live(context: RunContext) -> list[dict[str, Any]]:
    config, run_dir, resume, progress = (
        context.config,
        context.run_dir,
        context.resume,
        context.progress,
    )
    storage = f"{storage_folder(config).rstrip('/')}/{context.invocation}"
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
            name = method_run_name(method, seed)
            done_file = run_dir / "outcomes" / f"{name}.json"
            if resume and done_file.exists():
                outcomes.append(json.loads(done_file.read_text()))
                continue
            job = {
                "config": config, "method": method, "seed": seed, "run_dir": str(run_dir),
                "invocation": context.invocation, "parent_run_id": context.parent_run_id,
                "tracking_uri": context.tracking_uri,
                "artifact_location": context.artifact_location,
                "storage_path": storage, "resume": resume,
            }  # fmt: skip
            if resume:  # here, on the node whose disk the method's task reads
                try:
                    note = set_aside_unrestorable(f"{storage}/{name}")
                except OSError as error:  # left to Tune, whose error fails this method only
                    note = f"could not check Tune's snapshot ({error}); left as it is"
                if note:
                    job["resume_note"] = note
                    progress(f"{name}: {note}")
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
            text, spent = progress_status(config, run_dir)
            progress(text)
            if hasattr(progress, "set"):  # a gaea_tune._progress.Progress: the spend as a bar
                progress.set(spent)
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
    outcome.status, outcome.failure = "failed", reason
    return outcome.to_dict()


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
    return progress_status(config, run_dir)[0]


def progress_status(config: ExperimentConfig, run_dir: Path) -> tuple[str, float]:
    """:func:`format_progress`'s text and the device-seconds spent by all methods x seeds."""
    lines = [f"[{time.strftime('%H:%M:%S')}] budget {config.budget_device_seconds:.0f} "
             f"{config.budget_unit}-seconds per method"]  # fmt: skip
    total = 0.0
    for method in config.methods:
        for seed in config.seeds:
            path = run_dir / "events" / f"{method_run_name(method, seed)}.jsonl"
            spent, trials, best = 0.0, set(), None
            for event in read_events(path):
                if event["kind"] != "result":
                    continue
                spent = max(spent, event["method_device_seconds"])
                trials.add(event["trial_id"])
                if event["search_signal"] is not None:
                    best = max(best or 0.0, event["search_signal"])
            total += min(spent, config.budget_device_seconds)
            share = 100.0 * spent / config.budget_device_seconds
            best_text = f"{best:6.2f}" if best is not None else "     -"
            lines.append(f"  {method.label:>14} seed {seed}: {spent:8.1f} s ({share:5.1f}%)  "
                         f"trials {len(trials):3d}  best signal {best_text}")  # fmt: skip
    return "\n".join(lines), total
