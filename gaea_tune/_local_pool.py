"""Work spread over this machine's cores in worker processes (the standard library's pool).

Used where Ray would cost more than it gives on one machine: the tabular studies
(:mod:`gaea_tune.tune._tabular`) and the cells of ``gaea-tune calibrate``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_pool(
    workers: int,
    preload: Sequence[str] = (),
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes forked from a fork server: clean processes, not copies of
    this one (which may hold threads, e.g. MLflow's), that imported the modules in ``preload``
    once; ``initializer(*initargs)`` runs once in each."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=initializer, initargs=initargs
    )
