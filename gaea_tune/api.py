"""The public Python API behind ``import gaea_tune``: run a comparison from a notebook or script.

``compare(config)`` runs the same budget-matched comparison as ``gaea-tune compare`` and returns
a :class:`ComparisonResult`. Calling it changes no global state of the caller: no matplotlib
backend switch, no logging or warning filters left changed, no environment variables set, and a
Ray runtime it had to start itself is shut down at the end (one the caller started is kept).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ComparisonResult:
    """What a comparison produced.

    ``summary``: the content of ``summary.json`` (per method: seeds with spend, incumbent,
    ground truth, curve; statistics; failed methods). ``results``: one row per method (a pandas
    ``DataFrame``, ranked). ``files``: name -> path of the report files. ``outcomes``: the raw
    per method x seed outcomes. ``workdir``, ``tracking_uri``, ``experiment_id`` and
    ``parent_run_id`` locate everything in the output folder and in MLflow.
    """

    summary: dict[str, Any]
    results: Any
    files: dict[str, str]
    workdir: Path
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def plot_incumbents(self) -> Any:
        """Incumbent ground truth against device-hours, per method (a matplotlib Figure)."""
        from gaea_tune.report import plot_incumbents

        return plot_incumbents(self.summary)

    def plot_entropy(self) -> Any | None:
        """Architecture-weight entropy per epoch of the weight-sharing searches (a Figure), or
        None when no search recorded one."""
        from gaea_tune.report import plot_entropy

        return plot_entropy(self.summary)


def _all_loggers() -> list[logging.Logger]:
    named = [logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict)]
    return [logging.getLogger(), *named]


@contextlib.contextmanager
def _process_state_kept() -> Iterator[None]:
    """Put back what running a comparison changes in the calling process: the environment
    (Ray's driver sets ``PYTHONBREAKPOINT``, ``RAY_*`` and OpenMP variables), logger levels,
    handlers and propagation (Ray, MLflow and Optuna configure theirs; a logger first made during
    the run gets level NOTSET back). Warning filters that libraries add when first imported are
    left in place: they belong to those libraries, as after importing them directly."""
    environ = dict(os.environ)
    saved = {
        id(lg): (lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in _all_loggers()
    }
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        for lg in _all_loggers():
            if id(lg) in saved:
                lg.level, handlers, lg.propagate, lg.disabled = saved[id(lg)]
                lg.handlers[:] = handlers
            else:
                lg.setLevel(logging.NOTSET)


def compare(
    config: Any,
    *,
    resume: bool = False,
    address: str | None = None,
    progress: Any = print,
) -> ComparisonResult:
    """Run the budget-matched comparison ``config`` (an ``ExperimentConfig`` from
    :func:`gaea_tune.load_config`) and write its report; see :class:`ComparisonResult`.

    ``address``: a Ray cluster (default: the config's ``ray_address``, else a local Ray).
    ``progress``: called with a text block every ``progress_every_seconds`` (``None``: quiet).
    Raises ``gaea_tune.config.ConfigError`` / ``gaea_tune.tracking.TrackingError`` before any
    compute for bad settings or an unreachable tracking store.
    """
    from gaea_tune.config import ExperimentConfig

    if not isinstance(config, ExperimentConfig):
        raise TypeError(
            f"config must be an ExperimentConfig (gaea_tune.load_config), got {type(config).__name__}"
        )
    with _process_state_kept():
        import pandas as pd

        from gaea_tune.report import _rows, write_report
        from gaea_tune.tracking import Tracker
        from gaea_tune.tune import compare as run_compare

        result = run_compare(
            config,
            resume=resume,
            address=address,
            progress=progress or (lambda text: None),
            shutdown_ray=True,  # a Ray this call started; the report reads MLflow only
        )
        tracker = Tracker(result["tracking_uri"], config.name)
        summary = write_report(tracker, Path(result["workdir"]) / "report", result["parent_run_id"])
    files = dict(summary.get("files", {}))
    return ComparisonResult(
        summary=summary,
        results=pd.DataFrame(_rows(summary)),
        files=files,
        workdir=Path(result["workdir"]),
        tracking_uri=result["tracking_uri"],
        experiment_id=str(result["experiment_id"]),
        parent_run_id=result["parent_run_id"],
        outcomes=list(result["outcomes"]),
    )
