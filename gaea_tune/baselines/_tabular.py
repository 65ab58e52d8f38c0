"""Simulated (tabular) search on the NAS-Bench-201 table: an evaluation is a table look-up.

The search signal is the 12-epoch validation accuracy (the 200-epoch one for BOHB's top
fidelity); an evaluation at ``f`` epochs costs ``f`` x the recorded epoch seconds (x2 on CIFAR-100,
x6.068 on ImageNet16-120). A search stops when the next evaluation would exceed the budget, and
its result is the incumbent's 200-epoch test accuracy: ground truth, never a search signal.

The incumbent is the best signal at the highest fidelity evaluated; for BOHB it is hpbandster's
(the best among the jobs at the largest bracket budget, see :class:`BOHBSearcher`), which differs
from the former in the paper's style, where every job is the 12-epoch result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from gaea_tune.baselines._bohb import PAPER_BOHB
from gaea_tune.baselines._registry import SEARCHERS, make_searcher

# Datasets of the tabular mode and how the table's search columns are named for them.
TABULAR_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
TABLE_FIDELITIES = (12, 200)


@dataclass(frozen=True)
class TabularResult:
    """One simulated search: its incumbent and what it cost."""

    method: str
    dataset: str
    seed: int
    budget: float
    incumbent: str  # NB201 arch string of the incumbent
    test_accuracy: float  # ground truth: the incumbent's 200-epoch test accuracy
    signal: float  # the incumbent's search signal
    fidelity: int  # epochs behind that signal
    spent: float  # simulated seconds spent
    evaluations: int
    # (simulated seconds, ground truth of the incumbent) each time the incumbent changes.
    curve: list[tuple[float, float]] = field(default_factory=list)
    wall_seconds: float = 0.0


class TabularBenchmark:
    """Precomputed per-index arrays of one dataset: signals per fidelity, costs, ground truth."""

    def __init__(self, dataset: str) -> None:
        from gaea_tune.nb201_table import EPOCH_COST_FACTOR, SEARCH_COLUMNS, load_table

        if dataset not in TABULAR_DATASETS:
            raise ValueError(
                f"unknown tabular dataset {dataset!r}; allowed: {', '.join(TABULAR_DATASETS)}"
            )
        table = load_table()
        signal_12, signal_200, truth = SEARCH_COLUMNS[dataset]
        self.dataset = dataset
        self.signal = {12: table.column(signal_12), 200: table.column(signal_200)}
        self.truth = table.column(truth)
        self.epoch_seconds = (
            table.column("cifar10_valid_epoch_seconds") * EPOCH_COST_FACTOR[dataset]
        )

    def check_fidelity(self, fidelity: int | None) -> int:
        fidelity = 12 if fidelity is None else int(fidelity)
        if fidelity not in self.signal:
            raise ValueError(
                f"the NB201 table has results for {TABLE_FIDELITIES} epochs, "
                f"got a request for {fidelity}"
            )
        return fidelity


@lru_cache(maxsize=len(TABULAR_DATASETS))
def tabular_benchmark(dataset: str) -> TabularBenchmark:
    """The benchmark of ``dataset`` (built once per process)."""
    return TabularBenchmark(dataset)


def tabular_options(method: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Searcher options for the tabular mode: BOHB's fidelities are the table's (12, 200 epochs);
    ``style="paper"`` gives the NB201 paper's BOHB (every job the 12-epoch result)."""
    from gaea_tune.baselines._options import validate_tabular

    if method not in SEARCHERS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(SEARCHERS)}")
    options = validate_tabular(method, method, dict(options or {}))
    style = options.pop("style", None)
    if method != "bohb":
        if style is not None:
            raise ValueError(f"option 'style' only applies to method 'bohb', got it for {method!r}")
        return options
    if style not in (None, "table", "paper"):
        raise ValueError(f"BOHB style must be 'table' or 'paper', got {style!r}")
    base = dict(PAPER_BOHB) if style == "paper" else {"min_fidelity": 12, "max_fidelity": 200}
    base.update(options)
    return base


def _rank(searcher: Any, proposal: Any, fidelity: int) -> float:
    """What orders results before their signal when picking the incumbent: the bracket budget of
    a BOHB job (hpbandster's rule), else the epochs. Read while ``proposal`` is pending."""
    budget_of = getattr(searcher, "budget_of", None)
    return float(budget_of(proposal)) if budget_of is not None else float(fidelity)


def simulate(
    method: str, dataset: str, budget_seconds: float, seed: int, **options: Any
) -> TabularResult:
    """One simulated search of ``method`` on the NB201 table of ``dataset``."""
    if not (isinstance(budget_seconds, (int, float)) and budget_seconds > 0):
        raise ValueError(f"budget_seconds must be > 0, got {budget_seconds!r}")
    from search_spaces.nb201 import NB201Space

    bench = tabular_benchmark(dataset)
    start = time.perf_counter()
    searcher = make_searcher(method, NB201Space(), seed, **tabular_options(method, options))
    signals, costs, truth = bench.signal, bench.epoch_seconds, bench.truth
    spent = 0.0
    evaluations = 0
    best_key = (-math.inf, -math.inf)  # (rank, signal)
    best_index = -1
    best_fidelity = 0
    curve: list[tuple[float, float]] = []
    while True:
        proposal = searcher.ask()
        index = proposal.genotype.index
        fidelity = bench.check_fidelity(proposal.fidelity)
        cost = fidelity * costs[index]
        if spent + cost > budget_seconds:
            break
        spent += cost
        signal = float(signals[fidelity][index])
        rank = _rank(searcher, proposal, fidelity)
        searcher.tell(proposal, signal)
        evaluations += 1
        if (rank, signal) > best_key:
            best_key = (rank, signal)
            best_fidelity = fidelity
            if index != best_index:
                best_index = index
                curve.append((spent, float(truth[index])))
    if best_index < 0:
        raise ValueError(
            f"budget_seconds={budget_seconds!r} is too small for a single evaluation "
            f"(this one needed {cost:.1f} s)"
        )
    from search_spaces.nb201 import NB201Genotype

    return TabularResult(
        method=method,
        dataset=dataset,
        seed=int(seed),
        budget=float(budget_seconds),
        incumbent=str(NB201Genotype.from_index(best_index)),
        test_accuracy=float(truth[best_index]),
        signal=float(best_key[1]),
        fidelity=int(best_fidelity),
        spent=float(spent),
        evaluations=evaluations,
        curve=curve,
        wall_seconds=time.perf_counter() - start,
    )


def simulate_many(
    method: str, dataset: str, budget_seconds: float, seeds: Iterable[int], **options: Any
) -> list[TabularResult]:
    """Plain loop over seeds (what one worker runs)."""
    return [simulate(method, dataset, budget_seconds, int(s), **options) for s in seeds]


def summarize(results: Sequence[TabularResult]) -> dict[str, float]:
    """Mean and std (ddof 0) of the final ground truth, plus mean evaluations and wall time."""
    if not results:
        raise ValueError("summarize needs at least one result, got none")
    accuracy = np.array([r.test_accuracy for r in results])
    return {
        "runs": float(len(results)),
        "mean": float(accuracy.mean()),
        "std": float(accuracy.std()),
        "evaluations": float(np.mean([r.evaluations for r in results])),
        "search_wall_seconds": float(np.sum([r.wall_seconds for r in results])),
    }
