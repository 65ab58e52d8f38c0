"""The weight-sharing search as a Ray Tune function trainable: one trial = one search.

Config keys: ``space`` ("nb201" | "darts"), ``method`` (see
:data:`gaea_tune.weight_sharing.METHODS`), ``dataset`` (keyword arguments of
:func:`gaea_tune.data.load_splits`), ``seed``, ``resources`` (``{"gpu": g, "cpu": c}``), optional
``budget_device_seconds`` (stop after the epoch that reaches it), and every field of
:class:`gaea_tune.weight_sharing.SearchOptions` (``C``, ``N``, ``epochs``, ``arch_lr``, ``lr``,
``batch_size``, ``formulation``, ...). Unknown keys are an error.

Every epoch reports the search's metrics plus ``device_seconds`` (cumulative wall seconds of the
trial's work x the devices it holds, continued across resumes) and ``device_kind``, on NB201 the
genotype's table accuracies as ``nb201_<column>`` monitors (never used for a decision), and
saves a checkpoint from which the trial resumes exactly.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from gaea_tune.budget import DeviceClock, device_count
from gaea_tune.tune._trial import DETERMINISTIC_ERRORS, failure_result
from gaea_tune.weight_sharing import SearchOptions, SupernetSearch, get_method

TRAINABLE_KEYS = (
    "space", "method", "dataset", "seed", "resources", "budget_device_seconds", "numerics",
    "epochs_from_budget",
)  # fmt: skip
NB201_MONITORS = (
    "cifar10_test_200",
    "cifar10_valid_val_200",
    "cifar100_test_200",
    "imagenet16_test_200",
)
CHECKPOINT_FILE = "search.pt"


def split_config(config: dict[str, Any]) -> tuple[dict[str, Any], SearchOptions]:
    """Validate a trainable config: (trainable keys with defaults, search options)."""
    if not isinstance(config, dict):
        raise ValueError(f"the trainable config must be a dict, got {type(config).__name__}")
    for key in ("space", "method"):
        if key not in config:
            raise ValueError(f"the supernet trainable needs {key!r} in its config")
    if config["space"] not in ("nb201", "darts"):
        raise ValueError(f"space must be 'nb201' or 'darts', got {config['space']!r}")
    get_method(config["method"])
    dataset = config.get("dataset", {"name": "cifar10-subset"})
    if not isinstance(dataset, dict) or "name" not in dataset:
        raise ValueError(
            f"dataset must be a dict of load_splits arguments with 'name', got {dataset!r}"
        )
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    resources = config.get("resources", {"gpu": 0, "cpu": 1})
    if not isinstance(resources, dict) or set(resources) - {"gpu", "cpu"}:
        raise ValueError(f"resources must be a dict with keys gpu/cpu, got {resources!r}")
    gpu, cpu = float(resources.get("gpu", 0)), float(resources.get("cpu", 1))
    device_count(gpu, cpu)  # validates
    budget = config.get("budget_device_seconds")
    if budget is not None and not (isinstance(budget, (int, float)) and budget > 0):
        raise ValueError(f"budget_device_seconds must be a positive number, got {budget!r}")
    given = {k: v for k, v in config.items() if k not in TRAINABLE_KEYS}
    SearchOptions.validate_params(
        "search", given, space=config["space"], method=config["method"]
    )  # the same rules as the YAML validator
    options = SearchOptions.from_dict(given)
    base = {
        "space": config["space"],
        "method": config["method"],
        "dataset": dict(dataset),
        "seed": seed,
        "gpu": gpu,
        "cpu": cpu,
        "budget_device_seconds": budget,
        "numerics": dict(config.get("numerics") or {}),
        "epochs_from_budget": bool(config.get("epochs_from_budget", False)),
    }
    if base["epochs_from_budget"] and budget is None:
        raise ValueError("epochs_from_budget needs budget_device_seconds")
    return base, options


def nb201_monitors(genotype: Any) -> dict[str, float]:
    """The NB201 table's accuracies of ``genotype`` (monitors, never search signals)."""
    from gaea_tune.nb201_table import load_table

    table = load_table()
    return {f"nb201_{c}": table.lookup(genotype, c) for c in NB201_MONITORS}


def supernet_trainable(config: dict[str, Any]) -> None:
    """Run one weight-sharing search, reporting (and checkpointing) after every epoch.

    Device-seconds come from :class:`gaea_tune.budget.DeviceClock`, the charging rule the
    standalone trainable uses too. A deterministic failure (non-finite loss, bad option,
    impossible shape) ends the trial with one last result carrying ``failure`` instead of an
    error Tune would retry (see :mod:`gaea_tune.tune._trial`).
    """
    resources = config.get("resources", {"gpu": 0, "cpu": 1}) if isinstance(config, dict) else {}
    try:
        clock = DeviceClock(float(resources.get("gpu", 0)), float(resources.get("cpu", 1)))
    except (ValueError, TypeError, AttributeError):
        clock = DeviceClock(0.0, 1.0)  # split_config below names the bad value
    try:
        _search(config, clock)
    except DETERMINISTIC_ERRORS as error:
        node = ray.get_runtime_context().get_node_id()
        result = failure_result(error, clock.spent(), clock.kind, node_id=node)
        with clock.paused():
            tune.report(result)


def _search(config: dict[str, Any], clock: DeviceClock) -> None:
    base, options = split_config(config)
    from gaea_tune.data import load_splits
    from gaea_tune.tune._standalone_trainable import apply_numerics

    use_cuda = base["gpu"] > 0 and torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
    apply_numerics(
        {"gpu": base["gpu"], "cpu": base["cpu"]}, use_cuda, base["numerics"].get("cudnn_benchmark")
    )
    splits = load_splits(**base["dataset"])
    search = SupernetSearch.from_splits(
        base["space"], base["method"], options, splits, device=device, seed=base["seed"]
    )
    images = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(
                Path(folder) / CHECKPOINT_FILE, map_location="cpu", weights_only=True
            )
        search.load_state_dict(state["search"])
        clock.resume_from(float(state["device_seconds"]))
        images = int(state.get("images", 0))
    loop_start = clock.spent()
    while search.epoch < search.options.epochs:
        metrics = search.run_epoch()
        if base["epochs_from_budget"] and search.epoch == 1 and checkpoint is None:
            _fit_epochs_to_budget(search, clock.spent() - loop_start, base["budget_device_seconds"],
                                  clock.spent())  # fmt: skip
            metrics["planned_epochs"] = search.options.epochs
        if not math.isfinite(metrics["train_loss"]):
            raise FloatingPointError(f"non-finite training loss at epoch {metrics['epoch']}")
        images += int(metrics.get("images", 0))
        if base["space"] == "nb201":
            metrics.update(nb201_monitors(metrics["genotype"]))
        edges = search.edge_weights()
        if edges is not None:
            metrics["edge_weights"] = edges
        with tempfile.TemporaryDirectory(prefix="gaea-ckpt-") as folder:
            state = {"search": search.state_dict(), "images": images}
            state["device_seconds"] = clock.spent()  # checkpoint writing is charged
            torch.save(state, os.path.join(folder, CHECKPOINT_FILE))
            device_seconds = clock.spent()
            metrics.update(device_seconds=device_seconds, device_kind=clock.kind, images=images,
                           device=str(device), node_id=ray.get_runtime_context().get_node_id())  # fmt: skip
            with clock.paused():
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        budget = base["budget_device_seconds"]
        if budget is not None and device_seconds >= budget:
            break


def _fit_epochs_to_budget(search: Any, epoch_cost: float, budget: float, spent: float) -> None:
    """Plan the search's length from its budget: after the first epoch, the whole number of
    epochs at that epoch's cost whose spend comes nearest the budget (at least one past any
    architecture warm-up), so that the planned spend misses B by at most half an epoch either
    way instead of leaving up to a whole epoch unspent; the weight-lr schedule is re-planned
    over that length. The budget stopper still ends the search at the budget (after the step
    that reaches it), whatever the estimate."""
    if epoch_cost <= 0:
        return
    more = int(math.floor(max(0.0, budget - spent) / epoch_cost + 0.5))
    epochs = max(search.epoch + more, search.epoch, int(search.arch_warmup) + 1)
    if epochs != search.options.epochs:
        search.set_epochs(epochs)


class _History(tune.Callback):
    """Keeps every result of the (single) trial, for the final artifacts."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self.results.append(dict(result))


def run_search(
    config: dict[str, Any],
    storage_path: str,
    name: str,
    callbacks: list[Any] | None = None,
    max_failures: int = 1,
) -> list[dict[str, Any]]:
    """Run ONE supernet search as a Ray Tune trial; returns its per-epoch results.

    Raises ``RuntimeError`` with the trial's error when the trial fails for good.
    """
    import ray

    base, _ = split_config(config)  # fail fast, before Ray starts
    if not ray.is_initialized():
        ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    history = _History()
    resources = {"cpu": base["cpu"], "gpu": base["gpu"]}
    tuner = tune.Tuner(
        tune.with_resources(supernet_trainable, resources),
        param_space=config,
        tune_config=tune.TuneConfig(metric="search_signal", mode="max", num_samples=1),
        run_config=tune.RunConfig(
            name=name,
            storage_path=os.path.abspath(storage_path),
            callbacks=[history, *(callbacks or [])],
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            verbose=0,
        ),
    )
    grid = tuner.fit()
    result = grid[0]
    if result.error is not None:
        lines = [ln for ln in str(result.error).strip().splitlines() if ln.strip()]
        raise RuntimeError(f"the search trial failed: {lines[-1] if lines else result.error}")
    by_epoch: dict[int, dict[str, Any]] = {}
    for item in history.results:  # a retried trial reports some epochs twice: keep the last
        if "epoch" in item:
            by_epoch[int(item["epoch"])] = item
    return [by_epoch[e] for e in sorted(by_epoch)]
