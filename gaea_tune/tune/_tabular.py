"""Seeds of the tabular NB201 simulation spread over the cluster's CPUs with Ray tasks.

One search is a plain loop (gaea_tune.baselines.simulate); Ray only runs chunks of seeds in
parallel, so its per-task overhead is paid once per chunk, not once per search or evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gaea_tune.baselines import TabularResult, simulate_many, tabular_options


def _chunks(seeds: list[int], count: int) -> list[list[int]]:
    count = max(1, min(count, len(seeds)))
    return [seeds[i::count] for i in range(count)]


def run_seeds(
    method: str,
    dataset: str,
    budget_seconds: float,
    seeds: Sequence[int],
    *,
    address: str | None = None,
    chunks_per_cpu: int = 2,
    use_ray: bool = True,
    **options: Any,
) -> list[TabularResult]:
    """``simulate(method, dataset, budget_seconds, seed, **options)`` for every seed, in seed
    order; with Ray, chunks of seeds run as tasks (``chunks_per_cpu`` per cluster CPU).

    Connects to ``address`` (or starts a local Ray without dashboard) if Ray is not initialised.
    ``use_ray=False`` runs the plain loop in this process.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    tabular_options(method, options)  # fail fast on a bad method/option, before any task starts
    if not (isinstance(budget_seconds, (int, float)) and budget_seconds > 0):
        raise ValueError(f"budget_seconds must be > 0, got {budget_seconds!r}")
    if not use_ray:
        return simulate_many(method, dataset, budget_seconds, seeds, **options)
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1)(simulate_many)
    refs = [
        task.remote(method, dataset, budget_seconds, chunk, **options)
        for chunk in _chunks(seeds, cpus * chunks_per_cpu)
    ]
    by_seed = {r.seed: r for chunk in ray.get(refs) for r in chunk}
    return [by_seed[s] for s in seeds]
