"""The outcome of one method x seed: incumbent as a function of device-seconds, ground truth."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from gaea_tune.datasets import DATASET_INFO, ground_truth_column
from gaea_tune.nb201_table import load_table

__all__ = ["Outcome", "ground_truth_column", "incumbent_curve", "nb201_ground_truth"]

# Every ground-truth column of the registry, in registry order: reported beside the headline
# (cifar10_valid_test_200 next to cifar10_test_200 for a cifar10-valid search).
_TEST_COLUMNS = tuple(dict.fromkeys(c for info in DATASET_INFO.values() for c in info.ground_truth))


def nb201_ground_truth(genotype: str, primary: str) -> dict[str, float]:
    """The primary (headline) ground-truth column first, then the other 200-epoch test columns."""
    table = load_table()
    columns = (primary, *(c for c in _TEST_COLUMNS if c != primary))
    return {column: table.lookup(genotype, column) for column in columns}


def incumbent_curve(
    events: list[dict[str, Any]], family: str, primary: str | None, method: str | None = None
) -> tuple[list[list[float]], dict[str, Any] | None]:
    """``[[method_device_seconds, value], ...]`` and the final incumbent event.

    Standalone methods: the incumbent is the best result so far by the method's own search
    signal. BOHB (``method="bohb"``): hpbandster's incumbent, the best result among those at the
    largest fidelity (epochs, the ``epoch`` of a result) reached so far, so a higher signal after
    fewer epochs never displaces a result after more (automl/HpBandSter,
    ``hpbandster/core/result.py``, ``Result.get_incumbent_id``, lines 219-241: the best loss among
    the runs on the maximum budget). Weight-sharing: the genotype the search derives where it
    stands (its latest result). The value is the incumbent's ground truth where the table has
    one, else its search signal.
    """
    curve: list[list[float]] = []
    incumbent: dict[str, Any] | None = None
    by_budget = method == "bohb"
    top_epoch = -1  # BOHB: the largest fidelity among the results so far
    ordered = sorted(
        (e for e in events if e.get("kind") == "result"), key=lambda e: e["method_device_seconds"]
    )
    for event in ordered:
        if event.get("search_signal") is None or not event.get("genotype"):
            continue
        if family == "weight-sharing":
            better = True
        elif by_budget:
            epoch = int(event.get("epoch") or 0)
            if epoch > top_epoch:
                top_epoch, better = epoch, True
            else:
                better = epoch == top_epoch and event["search_signal"] > incumbent["search_signal"]
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


@dataclass
class Outcome:
    """The result of one method x seed, the same for both backends (live Ray Tune trials and the
    table): what ``outcome.json`` holds on the method's MLflow run and the report reads back.

    ``curve``: ``[[method_device_seconds, value], ...]`` (see :func:`incumbent_curve`).
    ``throughput``, ``time_to_first_result_seconds`` and ``retrain`` are live-only extras
    (absent from :meth:`to_dict` when unset).
    """

    label: str
    method: str
    family: str
    seed: int
    budget_device_seconds: float
    spent_device_seconds: float
    trials: int
    genotype: str | None
    search_signal: float | None
    ground_truth: dict[str, float] | None
    ground_truth_column: str | None
    curve: list[list[float]]
    failed_trials: dict[str, str] = field(default_factory=dict)
    status: str = "finished"
    failure: str | None = None
    throughput: dict[str, Any] | None = None
    time_to_first_result_seconds: float | None = None
    retrain: dict[str, Any] | None = None

    _OPTIONAL: ClassVar[tuple[str, ...]] = ("throughput", "time_to_first_result_seconds", "retrain")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``outcome.json``); optional extras only when set."""
        out = asdict(self)
        for key in self._OPTIONAL:
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
