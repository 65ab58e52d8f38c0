"""Final stage: retrain an incumbent from scratch and measure its test accuracy.

Used where no table gives ground truth (the DARTS space, or NB201 on other data). The network
trains on the training split only and is evaluated once on the test split; its cost is reported
apart and never charged to the search budget.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from gaea_tune.budget import device_count


def retrain(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``job["genotype"]`` for ``job["epochs"]`` epochs; return test accuracy and cost."""
    from gaea_tune.baselines._train import StandaloneTraining, seeded_network
    from gaea_tune.data import load_splits
    from search_spaces import get_space

    started = time.perf_counter()
    resources = job["resources"]
    devices, kind = device_count(resources["gpu"], resources["cpu"])
    device = torch.device("cuda" if resources["gpu"] > 0 and torch.cuda.is_available() else "cpu")
    space = get_space(job["space"])
    genotype = space.parse(job["genotype"])
    splits = load_splits(**job["dataset"])
    evaluation = dataclasses.replace(splits, valid=splits.test)
    network = seeded_network(space, genotype, job["C"], job["N"], splits.num_classes, job["seed"])
    training = StandaloneTraining(
        network, evaluation, epochs=job["epochs"], batch_size=job.get("batch_size", 96),
        lr=job.get("lr", 0.025), weight_decay=job.get("weight_decay", 3e-4), seed=job["seed"],
        device=device, label=f"retrain of {job['genotype']}",
    )  # fmt: skip
    for _ in range(job["epochs"]):
        training.train_epoch()
    test = training.evaluate()
    return {
        "retrain_test_acc": test["valid_acc"],
        "retrain_epochs": job["epochs"],
        "retrain_device_seconds": (time.perf_counter() - started) * devices,
        "retrain_device_kind": kind,
    }
