"""Seeds of the tabular NB201 simulation: in this process, in a local process pool, or as Ray tasks.

One search is a plain loop (gaea_tune.baselines.simulate). A *study* is one method on one dataset
over many seeds; :func:`run_studies` runs several studies at once, so no worker idles while the
last searches of one method finish and the next method has not started. Searches go in chunks of
seeds, so the per-task overhead is paid once per chunk, not once per search.

Where they run (``executor``):

- ``"inline"``: this process, one search after another.
- ``"pool"``: a local process pool of the standard library (one process per CPU, started by a
  fork server that imports the searchers once). On one machine this is what a study costs: a Ray
  cluster's own processes (GCS, raylet, workers importing the libraries) take a share of every
  core, about 15% of the wall time of the 500-seed CIFAR-10 study on 2 cores.
- ``"ray"``: Ray tasks, one CPU each, spread over the cluster at ``address`` (or a running Ray).
- ``"auto"`` (default): the first seed of each study runs here; with an ``address`` the rest
  goes to that Ray cluster; otherwise, from the first seeds' speed, the rest is estimated and
  goes to a running Ray, else to the pool, each only when the estimate clearly outweighs the
  start-up; otherwise it stays here.

Every search depends on its seed alone, so where it ran never changes a result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from gaea_tune._local_pool import process_pool, usable_cpus
from gaea_tune.baselines import TabularResult, simulate, simulate_many, tabular_options

EXECUTORS = ("auto", "inline", "pool", "ray")
# Estimated in-process seconds left above which a local process pool pays off (its fork server
# imports the searchers once, ~1-2 s of one core) ...
POOL_PAYS_SECONDS = 3.0
# ... above which starting Ray (a local cluster: its processes, then workers importing the
# searchers) pays off ...
RAY_START_PAYS_SECONDS = 20.0
# ... and above which an already running Ray (or a cluster at ``address``) pays off.
RAY_RUNNING_PAYS_SECONDS = 4.0


@dataclass(frozen=True)
class Study:
    """One method on one dataset over ``seeds``: ``simulate(method, dataset, budget_seconds,
    seed, **options)`` for each seed. ``label`` names it in progress lines."""

    label: str
    method: str
    dataset: str
    budget_seconds: float
    seeds: Sequence[int]
    options: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """A bad method, option, budget or seed list: ValueError before any search starts."""
        if not self.seeds:
            raise ValueError(f"{self.label}: seeds must not be empty")
        tabular_options(self.method, self.options)
        if isinstance(self.budget_seconds, bool) or not (
            isinstance(self.budget_seconds, (int, float)) and self.budget_seconds > 0
        ):
            raise ValueError(f"budget_seconds must be > 0, got {self.budget_seconds!r}")


@contextlib.contextmanager
def _naming(study: Study) -> Iterator[None]:
    """A search's ValueError (e.g. a budget below one evaluation) raised again with the study's
    label and dataset in front."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{study.label} on {study.dataset}: {error}") from error


def _chunks(seeds: list[int], count: int) -> list[list[int]]:
    count = max(1, min(count, len(seeds)))
    return [seeds[i::count] for i in range(count)]


def run_studies(
    studies: Sequence[Study],
    *,
    executor: str = "auto",
    address: str | None = None,
    chunks_per_cpu: int = 16,
    on_chunk: Callable[[Study, int], None] | None = None,
    where: dict[str, Any] | None = None,
) -> list[list[TabularResult]]:
    """Every study's searches, in seed order per study (see the module docstring).

    ``chunks_per_cpu``: chunks of seeds per study and worker CPU (more: a shorter tail, more
    round trips). ``on_chunk(study, searches)`` is called in this process as chunks finish.
    ``where``, if given, is filled with ``executor`` (where the searches after the first seeds
    ran) and ``workers`` (processes or Ray CPUs).
    Raises ValueError for a bad executor, chunk count, method, option or budget before any
    search starts, and the first search error (e.g. a budget below one evaluation) as it is.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor: unknown value {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if isinstance(chunks_per_cpu, bool) or not (
        isinstance(chunks_per_cpu, int) and chunks_per_cpu >= 1
    ):
        raise ValueError(f"chunks_per_cpu must be an integer >= 1, got {chunks_per_cpu!r}")
    for study in studies:
        study.check()
    if address and executor in ("auto", "ray"):
        import ray

        if not ray.is_initialized():
            from gaea_tune.tune._doctor import check_head_reachable

            check_head_reachable(address)  # a closed port: one line now, before any search
    seeds = [[int(s) for s in study.seeds] for study in studies]
    done: list[list[TabularResult]] = [[] for _ in studies]
    where = {} if where is None else where
    where.update(executor="inline", workers=1)
    if executor == "inline":
        for i, study in enumerate(studies):
            done[i] = _inline(study, seeds[i], on_chunk)
        return done
    # The first seed of every study here: a result, an error before any worker starts, and a
    # measure of the rest.
    per_search: list[float] = []
    for i, study in enumerate(studies):
        started = time.perf_counter()
        with _naming(study):
            done[i].append(simulate(study.method, study.dataset, study.budget_seconds,
                                    seeds[i][0], **study.options))  # fmt: skip
        per_search.append(time.perf_counter() - started)
        if on_chunk is not None:
            on_chunk(study, 1)
    rest = [s[1:] for s in seeds]
    if not any(rest):
        return done
    if executor == "auto":
        executor = _choose(sum(t * len(r) for t, r in zip(per_search, rest)), address)
    if executor == "inline":
        for i, study in enumerate(studies):
            if rest[i]:
                done[i] += _inline(study, rest[i], on_chunk)
        return done
    if executor == "ray":
        cpus, chunks = _ray_cpus(address), _ray_chunks
    else:
        cpus, chunks = usable_cpus(), _pool_chunks
    where.update(executor=executor, workers=cpus)
    finished: list[tuple[int, list[TabularResult]]] = []
    jobs = _jobs(rest, per_search, cpus * chunks_per_cpu)
    for i, results in chunks(studies, jobs, cpus):
        finished.append((i, results))
        if on_chunk is not None:
            on_chunk(studies[i], len(results))
    for i, results in enumerate(_collect(studies, rest, finished)):
        done[i] += results
    return done


def _choose(estimate: float, address: str | None) -> str:
    import ray

    if address:  # the user named a cluster: the searches go there
        return "ray"
    if ray.is_initialized():
        return "ray" if estimate > RAY_RUNNING_PAYS_SECONDS else "inline"
    if usable_cpus() > 1 and estimate > POOL_PAYS_SECONDS:
        return "pool"
    return "inline"


def _inline(
    study: Study, seeds: list[int], on_chunk: Callable[[Study, int], None] | None
) -> list[TabularResult]:
    results = []
    for seed in seeds:
        with _naming(study):
            results += simulate_many(
                study.method, study.dataset, study.budget_seconds, [seed], **study.options
            )
        if on_chunk is not None:
            on_chunk(study, 1)
    return results


def _jobs(
    rest: list[list[int]], per_search: list[float], count: int
) -> list[tuple[int, list[int]]]:
    """(study index, chunk of seeds): each study's seeds in up to ``count`` chunks, the longest
    expected first (``per_search`` seconds, measured on the study's first seed), so the
    cheap chunks fill the workers' gaps at the end instead of one long chunk running alone."""
    jobs = [(i, chunk) for i, seeds in enumerate(rest) if seeds for chunk in _chunks(seeds, count)]
    return sorted(jobs, key=lambda job: -per_search[job[0]] * len(job[1]))


def _collect(
    studies: Sequence[Study],
    rest: list[list[int]],
    finished: list[tuple[int, list[TabularResult]]],
) -> list[list[TabularResult]]:
    by_seed: list[dict[int, TabularResult]] = [{} for _ in studies]
    for i, results in finished:
        by_seed[i].update((r.seed, r) for r in results)
    return [[by_seed[i][s] for s in rest[i]] for i in range(len(studies))]


def _pool_chunks(
    studies: Sequence[Study], jobs: list[tuple[int, list[int]]], cpus: int
) -> Iterator[tuple[int, list[TabularResult]]]:
    """(study index, results) of each chunk as it finishes in a local process pool."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    with process_pool(cpus, preload=["gaea_tune.baselines"]) as pool:
        futures = {}
        for i, chunk in jobs:
            study = studies[i]
            future = pool.submit(simulate_many, study.method, study.dataset,
                                 study.budget_seconds, chunk, **study.options)  # fmt: skip
            futures[future] = i
        pending = set(futures)
        while pending:
            ready, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in ready:
                i = futures[future]
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    with _naming(studies[i]):
                        raise error
                yield i, future.result()


def _ray_cpus(address: str | None) -> int:
    """Ray joined at ``address`` (or started here) unless running; the cluster's CPUs."""
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _ray_chunks(
    studies: Sequence[Study], jobs: list[tuple[int, list[int]]], cpus: int
) -> Iterator[tuple[int, list[TabularResult]]]:
    """(study index, results) of each chunk as it finishes as a Ray task (one CPU each)."""
    import ray

    task = ray.remote(num_cpus=1)(simulate_many)
    refs = {}
    for i, chunk in jobs:
        study = studies[i]
        ref = task.remote(study.method, study.dataset, study.budget_seconds, chunk,
                          **study.options)  # fmt: skip
        refs[ref] = i
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            with _naming(studies[refs[ref]]):
                results = ray.get(ref)
            yield refs[ref], results


def run_seeds(
    method: str,
    dataset: str,
    budget_seconds: float,
    seeds: Sequence[int],
    *,
    address: str | None = None,
    chunks_per_cpu: int = 16,
    executor: str = "auto",
    **options: Any,
) -> list[TabularResult]:
    """One study: ``simulate(method, dataset, budget_seconds, seed, **options)`` for every
    seed, in seed order (:func:`run_studies` with one :class:`Study`)."""
    study = Study(method, method, dataset, budget_seconds, list(seeds), options)
    return run_studies([study], executor=executor, address=address, chunks_per_cpu=chunks_per_cpu)[
        0
    ]
