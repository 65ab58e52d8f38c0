"""A Ray Tune trainable that replays the NB201 table instead of training (``dataset.simulate:
table``): the live path -- Tune searchers (random, REA, TuneBOHB + HyperBandForBOHB, TPE), the
budget stopper and ledger, the MLflow callback, the report -- runs on NB201 in seconds.

A trial's fidelities are the ones the bundled table records, up to the trial's ``epochs``: 12
(NB201's hp=12 schedule) and 200. At each it reports, as its search signal, the table's
validation accuracy of the genotype at that fidelity on the dataset's search split
(``nb201_table.SEARCH_COLUMNS``: cifar10 and cifar10-valid read cifar10-valid's validation
half, cifar100 and ImageNet16-120 their x-valid halves) -- never a test column -- and, as the
trial's device-seconds, the table's recorded training seconds for that many epochs
(``NB201Table.training_cost``: f x the recorded cifar10-valid epoch seconds x the dataset's cost
factor), cumulative as a live trial that trains on to the next fidelity is charged. This is
syne-tune's simulated backend idea (``syne_tune/blackbox_repository/simulated_tabular_backend.py``,
``BlackboxRepositoryBackend``: a trial reports a tabulated benchmark's recorded metric and
elapsed time instead of training), here under Ray Tune's own tuner and schedulers.

One Tune iteration per fidelity: BOHB's HyperBandForBOHB counts ``training_iteration`` (1 = the
12-epoch record, 2 = the 200-epoch one). A checkpoint after each report lets the scheduler pause
a trial and resume it at the next fidelity.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import ray
from ray import tune

from gaea_tune.registry import TABLE_FIDELITIES

_CHECKPOINT_FILE = "table_trial.json"
DEVICE_KIND = "table"


def fidelities(epochs: int) -> tuple[int, ...]:
    """The recorded fidelities a trial of ``epochs`` epochs reports at (``epochs`` is one)."""
    if epochs not in TABLE_FIDELITIES:
        raise ValueError(
            f"epochs: {epochs!r} is not a fidelity the NB201 table records; "
            f"allowed: {', '.join(map(str, TABLE_FIDELITIES))}"
        )
    return tuple(f for f in TABLE_FIDELITIES if f <= epochs)


def table_records(genotype: Any, dataset: str, epochs: int) -> list[dict[str, float]]:
    """``[{"epoch", "search_signal", "device_seconds"}, ...]`` of one trial, one per fidelity:
    the table's validation accuracy at that fidelity and its recorded training seconds."""
    from gaea_tune.nb201_table import SEARCH_COLUMNS, load_table

    if dataset not in SEARCH_COLUMNS:
        raise ValueError(
            f"dataset: the NB201 table has no search signal for {dataset!r}; "
            f"allowed: {', '.join(SEARCH_COLUMNS)}"
        )
    table = load_table()
    signal_12, signal_200, _ = SEARCH_COLUMNS[dataset]  # the ground truth is never read here
    columns = {12: signal_12, 200: signal_200}
    return [
        {
            "epoch": fidelity,
            "search_signal": table.lookup(genotype, columns[fidelity]),
            "device_seconds": table.training_cost(genotype, fidelity, dataset),
        }
        for fidelity in fidelities(epochs)
    ]


def trial_genotype(config: dict[str, Any]) -> Any:
    """The NB201 genotype of a trial: ``config["genotype"]`` (random, REA) or the searcher's
    parameters (BOHB, TPE), as :func:`gaea_tune.tune._standalone_trainable.trial_genotype`
    reads them, without importing the training code."""
    from gaea_tune.baselines._params import decode
    from search_spaces import get_space

    space = get_space(config.get("space", "nb201"))
    if config.get("genotype") is not None:
        return space.parse(config["genotype"])
    return decode(space, config)


def table_trainable(config: dict[str, Any]) -> None:
    """Report the table's records of ``config``'s genotype, one Tune result per fidelity."""
    genotype = trial_genotype(config)
    records = table_records(genotype, config["dataset"]["name"], int(config["epochs"]))
    done = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            with open(os.path.join(folder, _CHECKPOINT_FILE)) as handle:
                done = int(json.load(handle)["reported"])
    node = ray.get_runtime_context().get_node_id()
    for step, record in enumerate(records[done:], start=done + 1):
        result = {
            **record,
            "valid_acc": record["search_signal"],
            "device_kind": DEVICE_KIND,
            "genotype": str(genotype),
            "node_id": node,
        }
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, _CHECKPOINT_FILE), "w") as handle:
                json.dump({"reported": step}, handle)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
