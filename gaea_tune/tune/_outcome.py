"""The outcome of one method x seed: incumbent as a function of device-seconds, ground truth."""

from __future__ import annotations

from typing import Any

from gaea_tune.nb201_table import load_table

# Dataset of a run -> the NB201 column that is its ground truth (first) and the other test columns.
_GROUND_TRUTH = {
    "cifar10-subset": "cifar10_test_200",
    "cifar10-valid": "cifar10_valid_test_200",
    "cifar10": "cifar10_test_200",
    "cifar100": "cifar100_test_200",
    "ImageNet16-120": "imagenet16_test_200",
}
_TEST_COLUMNS = ("cifar10_test_200", "cifar100_test_200", "imagenet16_test_200")


def ground_truth_column(space: str, dataset: str) -> str | None:
    """The NB201 table column that is the ground truth here, or None off the NB201 space."""
    return _GROUND_TRUTH.get(dataset) if space == "nb201" else None


def nb201_ground_truth(genotype: str, primary: str) -> dict[str, float]:
    """The primary ground-truth column first, then the other 200-epoch test accuracies."""
    table = load_table()
    columns = (primary, *(c for c in _TEST_COLUMNS if c != primary))
    return {column: table.lookup(genotype, column) for column in columns}


def incumbent_curve(
    events: list[dict[str, Any]], family: str, primary: str | None
) -> tuple[list[list[float]], dict[str, Any] | None]:
    """``[[method_device_seconds, value], ...]`` and the final incumbent event.

    Standalone methods: the incumbent is the best result so far by the method's own search
    signal. Weight-sharing: the genotype the search derives where it stands (its latest result).
    The value is the incumbent's ground truth where the table has one, else its search signal.
    """
    curve: list[list[float]] = []
    incumbent: dict[str, Any] | None = None
    ordered = sorted(
        (e for e in events if e.get("kind") == "result"), key=lambda e: e["method_device_seconds"]
    )
    for event in ordered:
        if event.get("search_signal") is None or not event.get("genotype"):
            continue
        if family == "weight-sharing":
            better = True
        else:
            better = incumbent is None or event["search_signal"] > incumbent["search_signal"]
        if better:
            incumbent = event
        if incumbent is None:
            continue
        if primary is not None:
            value = load_table().lookup(incumbent["genotype"], primary)
        else:
            value = incumbent["search_signal"]
        curve.append([round(float(event["method_device_seconds"]), 3), float(value)])
    return curve, incumbent
