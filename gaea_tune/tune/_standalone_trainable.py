"""Ray Tune trainable that trains one genotype from scratch, plus a small live search runner.

Each epoch reports the validation accuracy (``search_signal``), the device-seconds the trial has
consumed so far (kept in the checkpoint, so they survive pause/resume), and on NB201 the table's
values of the genotype as ``nb201_<column>`` monitors (never used to steer a search). A checkpoint
is written every epoch, so HyperBandForBOHB can pause a trial and continue it at a higher budget.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from functools import lru_cache
from typing import Any

import ray
import torch
from ray import tune

from gaea_tune._constraints import validate_options
from gaea_tune.baselines._options import TRAINING_CONSTRAINTS, TRAINING_DEFAULTS
from gaea_tune.baselines._params import decode, param_spec
from gaea_tune.baselines._train import StandaloneTraining, seeded_network
from gaea_tune.budget import DeviceClock, device_count
from gaea_tune.resolve import resolve_numerics
from gaea_tune.tune._trial import DETERMINISTIC_ERRORS, failure_result

_CHECKPOINT_FILE = "standalone.pt"


@lru_cache(maxsize=2)
def _splits(dataset_items: tuple[tuple[str, Any], ...]) -> Any:
    from gaea_tune.data import load_splits

    return load_splits(**dict(dataset_items))


def _space(name: str) -> Any:
    from search_spaces import get_space

    return get_space(name)


def trial_genotype(config: dict[str, Any]) -> Any:
    """The genotype a trial trains: ``config["genotype"]`` (text) or the searcher's parameters."""
    space = _space(config.get("space", "nb201"))
    if config.get("genotype") is not None:
        return space.parse(config["genotype"])
    names = [name for name, _ in param_spec(space)]
    if not all(name in config for name in names):
        raise ValueError(
            f"trial config needs 'genotype' or the {space.name} parameters {names!r}; "
            f"got keys {sorted(config)!r}"
        )
    return decode(space, config)


def _nb201_monitors(genotype: Any) -> dict[str, float]:
    from gaea_tune.nb201_table import load_table

    row = load_table().row(genotype)
    return {f"nb201_{k}": v for k, v in row.items() if not k.endswith("epoch_seconds")}


def standalone_trainable(config: dict[str, Any]) -> None:
    """Train ``config``'s genotype for up to ``config["epochs"]`` epochs, reporting every epoch.

    Device-seconds come from :class:`gaea_tune.budget.DeviceClock`, the charging rule the
    supernet trainable uses too. A deterministic failure (non-finite loss, bad option,
    impossible shape) ends the trial with one last result carrying ``failure`` instead of an
    error Tune would retry (see :mod:`gaea_tune.tune._trial`).
    """
    resources = config.get("resources") or {"cpu": 1, "gpu": 0}
    clock = DeviceClock(float(resources.get("gpu", 0) or 0), float(resources.get("cpu", 1) or 0))
    try:
        _train(config, clock)
    except DETERMINISTIC_ERRORS as error:
        extra = {"node_id": ray.get_runtime_context().get_node_id()}
        try:
            extra["genotype"] = str(trial_genotype(config))
        except DETERMINISTIC_ERRORS:
            pass  # the genotype itself was the bad input
        result = failure_result(error, clock.spent(), clock.kind, **extra)
        with clock.paused():
            tune.report(result)


def _train(config: dict[str, Any], clock: DeviceClock) -> None:
    training_keys = {k: config[k] for k in TRAINING_CONSTRAINTS if k in config}
    validate_options("trial", training_keys, TRAINING_CONSTRAINTS)  # the YAML validator's rules
    resources = config.get("resources") or {"cpu": 1, "gpu": 0}
    use_gpu = float(resources.get("gpu", 0) or 0) > 0 and torch.cuda.is_available()
    device = torch.device("cuda" if use_gpu else "cpu")
    numerics = resolve_numerics(config.get("numerics"), use_gpu, config.get("space", "nb201"))
    apply_numerics(resources, use_gpu, numerics["cudnn_benchmark"])
    space = _space(config.get("space", "nb201"))
    genotype = trial_genotype(config)
    dataset = dict(config["dataset"])
    splits = _splits(tuple(sorted(dataset.items())))
    seed = int(config.get("seed", 0))
    network = seeded_network(
        space, genotype, int(config["C"]), int(config["N"]), splits.num_classes, seed
    )
    training = StandaloneTraining(
        network,
        splits,
        epochs=int(config["epochs"]),
        batch_size=int(config.get("batch_size", TRAINING_DEFAULTS["batch_size"])),
        lr=float(config.get("lr", TRAINING_DEFAULTS["lr"])),
        weight_decay=float(config.get("weight_decay", TRAINING_DEFAULTS["weight_decay"])),
        seed=seed,
        device=device,
        label=str(genotype),
        amp=numerics["amp"],
        channels_last=numerics["channels_last"],
    )
    resumes, images = 0, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(
                os.path.join(folder, _CHECKPOINT_FILE), map_location=device, weights_only=True
            )
        training.load_state_dict(state["training"])
        clock.resume_from(float(state["device_seconds"]))
        resumes = int(state.get("resumes", 0)) + 1
        images = int(state.get("images", 0))
    monitors = _nb201_monitors(genotype) if space.name == "nb201" else {}
    text = str(genotype)
    while training.epoch < training.epochs:
        metrics = training.train_epoch()
        metrics.update(training.evaluate())
        images += int(metrics.get("train_images", 0)) + int(metrics.get("valid_images", 0))
        with tempfile.TemporaryDirectory() as folder:
            state = {"training": training.state_dict(), "resumes": resumes, "images": images}
            state["device_seconds"] = clock.spent()  # checkpoint writing is charged
            torch.save(state, os.path.join(folder, _CHECKPOINT_FILE))
            device_seconds = clock.spent()
            result = {
                "epoch": training.epoch,
                "search_signal": metrics["valid_acc"],
                "device_seconds": device_seconds,
                "device_kind": clock.kind,
                "images": images,
                "genotype": text,
                "resumes": resumes,
                "node_id": ray.get_runtime_context().get_node_id(),
                **metrics,
                **monitors,
            }
            with clock.paused():
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


def apply_numerics(
    resources: dict[str, Any], use_gpu: bool, cudnn_benchmark: bool | None = None
) -> None:
    """Process settings every trainable of a comparison shares: on CPU, intra-op threads = the
    CPU slots the trial holds; on CUDA, cuDNN autotuning (``None``: on)."""
    if use_gpu:
        torch.backends.cudnn.benchmark = True if cudnn_benchmark is None else cudnn_benchmark
    elif float(resources.get("cpu", 1) or 0) >= 1:
        torch.set_num_threads(max(1, int(float(resources["cpu"]))))


def run_live_baseline(
    method: str,
    space_name: str,
    options: dict[str, Any] | None,
    dataset: dict[str, Any],
    seed: int,
    budget_device_seconds: float,
    storage_path: str,
    *,
    C: int = 8,
    N: int = 1,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 0.1,
    weight_decay: float = 5e-4,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    max_concurrent: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A real Tune search of standalone networks until the trials' device-seconds reach the budget.

    ``epochs`` is the most any trial trains (BOHB's ``max_t``). Returns the incumbent (best
    search signal among the trials that trained the most epochs), its NB201 accuracy on that
    space, and per trial the epochs reached, resumes, device-seconds and signal.
    """
    import ray

    from gaea_tune.tune._searchers import make_tune_components

    if not budget_device_seconds > 0:
        raise ValueError(f"budget_device_seconds must be > 0, got {budget_device_seconds!r}")
    if not os.path.isabs(storage_path):
        raise ValueError(f"storage_path must be absolute, got {storage_path!r}")
    if not ray.is_initialized():
        ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    space = _space(space_name)
    param_space, search_alg, scheduler = make_tune_components(
        method, space, dict(options or {}), seed, epochs
    )
    base = {
        "space": space.name,
        "C": C,
        "N": N,
        "dataset": dict(dataset),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "seed": seed,
        "resources": {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
    }
    from gaea_tune.tune._budget import BudgetStopper

    run_name = name or f"{method}-{space_name}-seed{seed}"
    devices, _ = device_count(float(gpus_per_trial), float(cpus_per_trial))
    events = os.path.join(storage_path, f"{run_name}-{time.time_ns()}.events.jsonl")
    stopper = BudgetStopper(events, float(budget_device_seconds), events, devices)
    trainable = tune.with_resources(
        standalone_trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
    )
    started = time.perf_counter()
    tuner = tune.Tuner(
        trainable,
        param_space={**base, **param_space},
        tune_config=tune.TuneConfig(
            metric="search_signal",
            mode="max",
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=-1,
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=storage_path,
            stop=stopper,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )
    snapshot_log = logging.getLogger("ray.tune.execution.experiment_state")
    level = snapshot_log.level
    snapshot_log.setLevel(logging.ERROR)  # one checkpoint per epoch makes it warn on every save
    try:
        grid = tuner.fit()
    finally:
        snapshot_log.setLevel(level)
    wall = time.perf_counter() - started
    trials = []
    for result in grid:
        metrics = result.metrics or {}
        if "search_signal" not in metrics:
            error = (
                "stopped before its first report" if result.error is None else repr(result.error)
            )
            trials.append({"error": error, "epochs": 0})
            continue
        trials.append(
            {
                "genotype": metrics["genotype"],
                "epochs": int(metrics["epoch"]),
                "resumes": int(metrics.get("resumes", 0)),
                "search_signal": float(metrics["search_signal"]),
                "device_seconds": float(metrics["device_seconds"]),
                **{k: float(v) for k, v in metrics.items() if k.startswith("nb201_")},
            }
        )
    finished = [t for t in trials if "genotype" in t]
    top = max((t["epochs"] for t in finished), default=0)
    best = max(
        (t for t in finished if t["epochs"] == top),
        key=lambda t: t["search_signal"],
        default=None,
    )
    return {
        "method": method,
        "space": space_name,
        "seed": seed,
        "budget_device_seconds": float(budget_device_seconds),
        "spent_device_seconds": stopper.state.ledger.spent,
        "wall_seconds": wall,
        "trials": trials,
        "incumbent": best,
    }
