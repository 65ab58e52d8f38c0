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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from gaea_tune.baselines._bohb import PAPER_BOHB
from gaea_tune.baselines._registry import SEARCHERS, make_searcher
from gaea_tune.datasets import TABLE_FIDELITIES, TABULAR_DATASETS


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
    cpu_seconds: float = 0.0  # CPU time of the search's process (less load-sensitive than wall)


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
        # The same values as Python lists of floats, for the scalar look-ups of a search loop.
        self.signal_lists = {f: values.tolist() for f, values in self.signal.items()}
        self.cost_list = self.epoch_seconds.tolist()
        self.truth_list = self.truth.tolist()

    def check_fidelity(self, fidelity: int | None) -> int:
        fidelity = 12 if fidelity is None else int(fidelity)
        if fidelity not in self.signal:
            raise ValueError(
                f"the NB201 table has results for {TABLE_FIDELITIES} epochs, "
                f"got a request for {fidelity}"
            )
        return fidelity


@lru_cache(maxsize=1)
def nb201_index_of_ops() -> dict[tuple[str, ...], int]:
    """Official NB201 index of every cell, keyed by its ops tuple (one dict look-up in place of
    ``NB201Genotype.index``'s op-by-op encoding; built once per process)."""
    from search_spaces.nb201 import all_genotypes

    return {genotype.ops: index for index, genotype in enumerate(all_genotypes())}


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


def _searchers(
    method: str, dataset: str, budget_seconds: float, options: dict[str, Any]
) -> tuple[TabularBenchmark, Callable[[int], Any]]:
    """Everything a method's searches on ``dataset`` share, checked once: the benchmark and a
    function ``seed -> new searcher`` (the searcher :func:`make_searcher` would build)."""
    if not (isinstance(budget_seconds, (int, float)) and budget_seconds > 0):
        raise ValueError(f"budget_seconds must be > 0, got {budget_seconds!r}")
    from search_spaces.nb201 import NB201Space

    bench = tabular_benchmark(dataset)
    checked = tabular_options(method, options)
    space = NB201Space()
    cls = SEARCHERS[method]
    checked_names: list[bool] = []

    def new(seed: int) -> Any:
        if checked_names:  # same options, already accepted by make_searcher
            return cls(space, seed, **checked)
        searcher = make_searcher(method, space, seed, **checked)
        checked_names.append(True)
        return searcher

    return bench, new


def simulate(
    method: str, dataset: str, budget_seconds: float, seed: int, **options: Any
) -> TabularResult:
    """One simulated search of ``method`` on the NB201 table of ``dataset``."""
    bench, new_searcher = _searchers(method, dataset, budget_seconds, options)
    return _search(method, bench, budget_seconds, seed, new_searcher)


def simulate_many(
    method: str, dataset: str, budget_seconds: float, seeds: Iterable[int], **options: Any
) -> list[TabularResult]:
    """``simulate`` for every seed, in order (what one worker runs); options checked once."""
    bench, new_searcher = _searchers(method, dataset, budget_seconds, options)
    return [_search(method, bench, budget_seconds, int(s), new_searcher) for s in seeds]


def _search(
    method: str,
    bench: TabularBenchmark,
    budget_seconds: float,
    seed: int,
    new_searcher: Callable[[int], Any],
) -> TabularResult:
    start, start_cpu = time.perf_counter(), time.process_time()
    searcher = new_searcher(seed)
    spent = 0.0
    evaluations = 0
    best_key = (-math.inf, -math.inf)  # (rank, signal)
    best_index = -1
    best_fidelity = 0
    curve: list[tuple[float, float]] = []
    # Python lists: a scalar look-up in a list is several times cheaper than in an array.
    signals, costs, truth = bench.signal_lists, bench.cost_list, bench.truth_list
    index_of = nb201_index_of_ops()
    budget_of = getattr(searcher, "budget_of", None)
    with searcher.session():
        while True:
            proposal = searcher.ask()
            index = index_of[proposal.genotype.ops]
            fidelity = 12 if proposal.fidelity is None else proposal.fidelity
            if fidelity not in signals:
                fidelity = bench.check_fidelity(fidelity)
            cost = fidelity * costs[index]
            if spent + cost > budget_seconds:
                break
            spent += cost
            signal = signals[fidelity][index]
            # What orders results before their signal when picking the incumbent: the bracket
            # budget of a BOHB job (hpbandster's rule), else the epochs; read while pending.
            rank = float(fidelity) if budget_of is None else float(budget_of(proposal))
            searcher.tell(proposal, signal)
            evaluations += 1
            if (rank, signal) > best_key:
                best_key = (rank, signal)
                best_fidelity = fidelity
                if index != best_index:
                    best_index = index
                    curve.append((spent, truth[index]))
    if best_index < 0:
        raise ValueError(
            f"budget_seconds={budget_seconds!r} is too small for a single evaluation "
            f"(this one needed {cost:.1f} s)"
        )
    from search_spaces.nb201 import NB201Genotype

    return TabularResult(
        method=method,
        dataset=bench.dataset,
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
        cpu_seconds=time.process_time() - start_cpu,
    )


def summarize(results: Sequence[TabularResult]) -> dict[str, float]:
    """Mean and std (ddof 0) of the final ground truth, plus mean evaluations and the total
    wall and CPU seconds of the searches."""
    if not results:
        raise ValueError("summarize needs at least one result, got none")
    accuracy = np.array([r.test_accuracy for r in results])
    return {
        "runs": float(len(results)),
        "mean": float(accuracy.mean()),
        "std": float(accuracy.std()),
        "evaluations": float(np.mean([r.evaluations for r in results])),
        "search_wall_seconds": float(np.sum([r.wall_seconds for r in results])),
        "search_cpu_seconds": float(np.sum([r.cpu_seconds for r in results])),
    }
