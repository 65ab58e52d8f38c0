"""Ray Tune trainable that trains one genotype from scratch, plus a small live search runner.

Each epoch reports the validation accuracy (``search_signal``), the device-seconds the trial has
consumed so far (kept in the checkpoint, so they survive pause/resume), and on NB201 the table's
values of the genotype as ``nb201_<column>`` monitors (never used to steer a search). A checkpoint
is written every epoch, so HyperBandForBOHB can pause a trial and continue it at a higher budget.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from functools import lru_cache
from typing import Any

import torch
from ray import tune

from gaea_tune.baselines._params import decode, param_spec
from gaea_tune.baselines._train import StandaloneTraining, seeded_network
from gaea_tune.budget import device_count

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
    """Train ``config``'s genotype for up to ``config["epochs"]`` epochs, reporting every epoch."""
    started = time.perf_counter()
    resources = config.get("resources") or {"cpu": 1, "gpu": 0}
    devices, device_kind = device_count(
        float(resources.get("gpu", 0) or 0), float(resources.get("cpu", 1) or 0)
    )
    use_gpu = float(resources.get("gpu", 0) or 0) > 0 and torch.cuda.is_available()
    device = torch.device("cuda" if use_gpu else "cpu")
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
        batch_size=int(config.get("batch_size", 64)),
        lr=float(config.get("lr", 0.1)),
        weight_decay=float(config.get("weight_decay", 5e-4)),
        seed=seed,
        device=device,
        label=str(genotype),
    )
    spent_before = 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(
                os.path.join(folder, _CHECKPOINT_FILE), map_location=device, weights_only=False
            )
        training.load_state_dict(state["training"])
        spent_before = float(state["device_seconds"])
    monitors = _nb201_monitors(genotype) if space.name == "nb201" else {}
    text = str(genotype)
    while training.epoch < training.epochs:
        metrics = training.train_epoch()
        metrics.update(training.evaluate())
        device_seconds = spent_before + (time.perf_counter() - started) * devices
        result = {
            "epoch": training.epoch,
            "search_signal": metrics["valid_acc"],
            "device_seconds": device_seconds,
            "device_kind": device_kind,
            "genotype": text,
            **metrics,
            **monitors,
        }
        if not math.isfinite(result["valid_loss"]):
            result["search_signal"] = float("nan")
        with tempfile.TemporaryDirectory() as folder:
            torch.save(
                {"training": training.state_dict(), "device_seconds": device_seconds},
                os.path.join(folder, _CHECKPOINT_FILE),
            )
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
