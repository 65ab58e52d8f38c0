"""Final stage: retrain an incumbent from scratch with the comparison's retrain protocol and
measure its test accuracy.

Used where no table gives ground truth (the DARTS space, or NB201 on other data). The protocol
(:mod:`gaea_tune.protocols`) is the same for every method of a comparison. The network trains on
every labelled training image of the dataset (train, plus valid when valid is a held-out part of
the training set) and is evaluated once on the test split; its cost is reported apart and never
charged to the search budget.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from gaea_tune.budget import device_count


def retrain(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``job["genotype"]`` with ``job["protocol"]`` (a ``RetrainProtocol.to_dict()``) in
    the comparison's ``job["numerics"]``; return its test accuracy (%), the protocol and the
    cost in device-seconds."""
    from gaea_tune.baselines._train import StandaloneTraining
    from gaea_tune.data import TensorPair, dataset_info, load_splits
    from gaea_tune.resolve import precision, resolve_numerics
    from gaea_tune.tune._standalone_trainable import apply_numerics
    from search_spaces import get_space

    started = time.perf_counter()
    protocol = dict(job["protocol"])
    resources = job["resources"]
    devices, kind = device_count(resources["gpu"], resources["cpu"])
    device = torch.device("cuda" if resources["gpu"] > 0 and torch.cuda.is_available() else "cpu")
    # the comparison's numerics, as every trainable of it (None or absent: the auto rule)
    numerics = resolve_numerics(job.get("numerics"), device.type == "cuda", job["space"])
    apply_numerics(resources, device.type == "cuda", numerics["cudnn_benchmark"])
    space = get_space(job["space"])
    genotype = space.parse(job["genotype"])
    splits = load_splits(**job["dataset"])
    train = splits.train
    valid_source = dataset_info(splits.name).valid
    if valid_source is not None and valid_source.pool == "train" and len(splits.valid):
        train = TensorPair(
            torch.cat([splits.train.images, splits.valid.images]),
            torch.cat([splits.train.labels, splits.valid.labels]),
        )
    evaluation = dataclasses.replace(splits, train=train, valid=splits.test)
    C = protocol["C"] or job["C"]
    N = protocol["N"] or job["N"]
    extra = {}
    if protocol["auxiliary_weight"] or protocol["drop_path"]:
        extra = {"auxiliary": protocol["auxiliary_weight"] > 0, "drop_path_prob": 0.0}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(job["seed"]))
        network = space.build_network(genotype, C, N, splits.num_classes, **extra)
    training = StandaloneTraining(
        network, evaluation, epochs=protocol["epochs"], batch_size=protocol["batch_size"],
        lr=protocol["lr"], momentum=protocol["momentum"], nesterov=False,
        weight_decay=protocol["weight_decay"], seed=job["seed"], device=device,
        label=f"retrain of {job['genotype']}", grad_clip=protocol["grad_clip"],
        cutout=protocol["cutout"], auxiliary_weight=protocol["auxiliary_weight"],
        drop_path=protocol["drop_path"], amp=numerics["amp"],
        channels_last=numerics["channels_last"],
    )  # fmt: skip
    for _ in range(protocol["epochs"]):
        training.train_epoch()
    test = training.evaluate()
    return {
        "retrain_test_acc": test["valid_acc"],
        "retrain_epochs": protocol["epochs"],
        "retrain_protocol": protocol["name"],
        "retrain_precision": precision(numerics["amp"]),
        "retrain_memory_format": "channels_last" if numerics["channels_last"] else "NCHW",
        "retrain_train_images": len(train),
        "retrain_device_seconds": (time.perf_counter() - started) * devices,
        "retrain_device_kind": kind,
    }
