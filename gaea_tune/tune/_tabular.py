"""Seeds of the tabular NB201 simulation, in this process or spread over Ray's CPUs.

One search is a plain loop (gaea_tune.baselines.simulate). Ray only runs chunks of seeds in
parallel, so its per-task overhead is paid once per chunk, not once per search or evaluation,
and only where it pays: the first seeds run here, and from their speed the rest are estimated;
Ray is started (or, if already up, used) only when the remaining work clearly outweighs its
start-up. Every search depends on its seed alone, so where it ran never changes a result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gaea_tune.baselines import TabularResult, simulate, simulate_many, tabular_options

# Seconds of searching in this process before deciding whether Ray pays for the rest.
PROBE_SECONDS = 1.0
# Estimated in-process seconds left above which starting Ray (a local cluster: its processes,
# then workers importing torch, hpbandster and Optuna) pays off ...
RAY_START_PAYS_SECONDS = 20.0
# ... and above which an already running Ray pays off (task round trips, cold workers).
RAY_RUNNING_PAYS_SECONDS = 4.0


def _chunks(seeds: list[int], count: int) -> list[list[int]]:
    count = max(1, min(count, len(seeds)))
    return [seeds[i::count] for i in range(count)]


def _probe(
    method: str, dataset: str, budget_seconds: float, seeds: list[int], seconds: float,
    options: dict[str, Any],
) -> tuple[list[TabularResult], float]:  # fmt: skip
    """Searches of the first seeds, in this process, until ``seconds`` have passed (at least
    one); returns them and the wall seconds per search."""
    done: list[TabularResult] = []
    started = time.perf_counter()
    for seed in seeds:
        done.append(simulate(method, dataset, budget_seconds, seed, **options))
        if time.perf_counter() - started >= seconds:
            break
    return done, (time.perf_counter() - started) / len(done)


def run_seeds(
    method: str,
    dataset: str,
    budget_seconds: float,
    seeds: Sequence[int],
    *,
    address: str | None = None,
    chunks_per_cpu: int = 16,
    use_ray: bool = True,
    **options: Any,
) -> list[TabularResult]:
    """``simulate(method, dataset, budget_seconds, seed, **options)`` for every seed, in seed
    order; with Ray, chunks of seeds run as tasks (``chunks_per_cpu`` per cluster CPU).

    With ``use_ray``, the first seeds run in this process for about :data:`PROBE_SECONDS`; the
    rest go to Ray only if their estimated time in this process exceeds
    :data:`RAY_START_PAYS_SECONDS` (:data:`RAY_RUNNING_PAYS_SECONDS` when Ray is already
    initialised). Ray is then joined at ``address`` or started locally without dashboard.
    ``use_ray=False`` runs the plain loop in this process.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    tabular_options(method, options)  # fail fast on a bad method/option, before any task starts
    if not (isinstance(budget_seconds, (int, float)) and budget_seconds > 0):
        raise ValueError(f"budget_seconds must be > 0, got {budget_seconds!r}")
    if isinstance(chunks_per_cpu, bool) or not (
        isinstance(chunks_per_cpu, int) and chunks_per_cpu >= 1
    ):
        raise ValueError(f"chunks_per_cpu must be an integer >= 1, got {chunks_per_cpu!r}")
    if not use_ray:
        return simulate_many(method, dataset, budget_seconds, seeds, **options)
    done, per_search = _probe(method, dataset, budget_seconds, seeds, PROBE_SECONDS, options)
    rest = seeds[len(done) :]
    if not rest:
        return done
    import ray

    running = ray.is_initialized()
    pays = RAY_RUNNING_PAYS_SECONDS if running else RAY_START_PAYS_SECONDS
    if per_search * len(rest) <= pays:
        return done + simulate_many(method, dataset, budget_seconds, rest, **options)
    if not running:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1)(simulate_many)
    refs = [
        task.remote(method, dataset, budget_seconds, chunk, **options)
        for chunk in _chunks(rest, cpus * chunks_per_cpu)
    ]
    by_seed = {r.seed: r for chunk in ray.get(refs) for r in chunk}
    return done + [by_seed[s] for s in rest]
