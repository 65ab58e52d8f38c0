"""Proxy fidelity: how well a comparison's standalone training ranks NB201 cells.

A live comparison's standalone methods rank cells by the validation accuracy of a small, briefly
trained network (the *proxy*), while the comparison scores the cell they pick by the NB201 table's
ground truth. :func:`calibrate` measures how far that proxy can be trusted: it trains ``cells``
sampled NB201 cells in this process (no Ray) under exactly the training settings a comparison's
standalone trial uses, then compares the proxy's ranking with the ground truth:

- Spearman's rho and Kendall's tau of the proxy signal against the ground truth, and, on the same
  cells, those of the table's own 12-epoch validation accuracy (the signal of tabular mode);
- the expected regret of taking the proxy's best of ``n`` cells, over all subsets of size ``n``
  (:func:`selection_regret`), beside that of a random pick and of the 12-epoch signal;
- wall seconds, CPU-seconds and device-seconds (the comparisons' charging rule) spent.

The result is written to ``OUTPUT_DIR/calibration/`` (``calibration.json`` and a scatter plot)
and logged as an MLflow run tagged ``gaea.level=calibration`` in the comparison's experiment.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gaea_tune.config import (
    CALIBRATION_CELLS,
    MIN_CALIBRATION_CELLS,
    ConfigError,
    ExperimentConfig,
    MethodConfig,
)

CALIBRATION_LEVEL = "calibration"
# Kendall tau thresholds for the sentence that says how far a proxy's ranking can be trusted.
TRUST_THRESHOLDS = ((0.5, "usefully"), (0.3, "only weakly"))
# Below this many cells, Kendall tau's interval spans most of [-1, 1]: no verdict in words.
MIN_CELLS_FOR_A_VERDICT = 8
_REGRET_SIZES = (2, 5, 10)  # regret@1 is 0 by definition: a 1-cell subset's pick is its best
# The table's datasets whose columns a dataset's ground truth and 12-epoch signal come from.
_TABLE_DATASET = {"cifar10-subset": "cifar10-valid"}


# --------------------------------------------------------------------------- statistics


def regret_sizes(cells: int) -> list[int]:
    """Subset sizes ``n`` the regret is reported for: 2, 5, 10 (those <= ``cells``) and
    ``cells`` itself (the whole draw)."""
    sizes = [n for n in _REGRET_SIZES if n <= cells]
    if cells >= 2 and cells not in sizes:
        sizes.append(cells)
    return sizes


def _expected_top(key: np.ndarray, value: np.ndarray, n: int) -> float:
    """Mean over all size-``n`` subsets of ``value`` at the subset's highest ``key``.

    Cells sharing the highest key in a subset are picked uniformly at random, so a group of
    tied keys contributes its members' mean value. A group ``g`` (``s`` cells, ``b`` cells with
    a lower key) holds a subset's highest key in ``C(b + s, n) - C(b, n)`` of the ``C(K, n)``
    subsets, and given that, the cell picked is a uniformly random member of ``g``.
    """
    total = math.comb(len(key), n)
    below, expected = 0, 0.0
    for level in np.unique(key):  # ascending
        members = key == level
        size = int(members.sum())
        share = math.comb(below + size, n) - math.comb(below, n)
        expected += share / total * float(value[members].mean())
        below += size
    return expected


def selection_regret(proxy: Sequence[float], truth: Sequence[float], n: int) -> float:
    """Expected regret of picking the best of ``n`` cells by ``proxy``, judged by ``truth``.

    The mean, over every subset of ``n`` of the cells (computed exactly, in closed form, not
    sampled), of the subset's best ``truth`` minus the ``truth`` of the cell with the highest
    ``proxy`` in it (ties in ``proxy`` broken uniformly at random). 0 for ``n = 1``.
    """
    key, value = np.asarray(proxy, dtype=float), np.asarray(truth, dtype=float)
    if key.shape != value.shape or key.ndim != 1:
        raise ValueError(
            f"proxy and truth must be 1-d and equally long, got {key.shape}, {value.shape}"
        )
    if not 1 <= n <= len(key):
        raise ValueError(f"n must be in [1, {len(key)}], got {n!r}")
    if not (np.isfinite(key).all() and np.isfinite(value).all()):
        raise ValueError("proxy and truth must be finite")
    return max(0.0, _expected_top(value, value, n) - _expected_top(key, value, n))  # no -0.0


def random_regret(truth: Sequence[float], n: int) -> float:
    """Expected regret of a uniformly random pick among ``n`` cells (the no-signal reference)."""
    value = np.asarray(truth, dtype=float)
    if not 1 <= n <= len(value):
        raise ValueError(f"n must be in [1, {len(value)}], got {n!r}")
    return max(0.0, _expected_top(value, value, n) - float(value.mean()))


def _correlations(signal: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from scipy import stats

    if len(signal) < 2 or np.ptp(signal) == 0 or np.ptp(truth) == 0:
        nan = float("nan")
        return {"spearman": nan, "spearman_p": nan, "kendall": nan, "kendall_p": nan}
    rho = stats.spearmanr(signal, truth)
    tau = stats.kendalltau(signal, truth)  # tau-b: ties in either ranking are accounted for
    return {
        "spearman": float(rho.statistic),
        "spearman_p": float(rho.pvalue),
        "kendall": float(tau.statistic),
        "kendall_p": float(tau.pvalue),
    }


def _kendall_interval(
    signal: np.ndarray, truth: np.ndarray, resamples: int = 2000, seed: int = 0
) -> list[float] | None:
    """A 95% percentile-bootstrap interval of Kendall's tau over the cells (None: too few)."""
    from scipy import stats

    if len(signal) < 5:
        return None
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(resamples):
        pick = rng.integers(len(signal), size=len(signal))
        if np.ptp(signal[pick]) == 0 or np.ptp(truth[pick]) == 0:
            continue
        taus.append(stats.kendalltau(signal[pick], truth[pick]).statistic)
    if len(taus) < resamples // 2:
        return None
    low, high = np.nanpercentile(taus, [2.5, 97.5])
    return [float(low), float(high)]


def proxy_statistics(
    proxy: Sequence[float],
    truth: Sequence[float],
    reference: Sequence[float] | None = None,
    sizes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Rank agreement and selection regret of ``proxy`` against ``truth`` (one value per cell).

    ``reference``: another signal on the same cells (the table's 12-epoch accuracy), reported
    beside it. ``sizes``: the subset sizes of the regrets (default :func:`regret_sizes`).
    Returns ``spearman``, ``kendall`` (+ ``*_p`` values), ``kendall_ci95`` (bootstrap, None with
    fewer than 5 cells), ``regret`` and ``random_regret`` as ``{n: value}``, and with a reference
    ``reference_spearman``, ``reference_kendall`` and ``reference_regret``.
    """
    signal, value = np.asarray(proxy, dtype=float), np.asarray(truth, dtype=float)
    sizes = list(sizes) if sizes is not None else regret_sizes(len(signal))
    out: dict[str, Any] = {"cells": len(signal), **_correlations(signal, value)}
    out["kendall_ci95"] = _kendall_interval(signal, value)
    out["regret"] = {n: selection_regret(signal, value, n) for n in sizes}
    out["random_regret"] = {n: random_regret(value, n) for n in sizes}
    if reference is not None:
        ref = np.asarray(reference, dtype=float)
        corr = _correlations(ref, value)
        out["reference_spearman"], out["reference_kendall"] = corr["spearman"], corr["kendall"]
        out["reference_regret"] = {n: selection_regret(ref, value, n) for n in sizes}
    return out


def trust_sentence(stats: dict[str, Any], truth_column: str, reference_column: str | None) -> str:
    """One sentence, in words, on how far the proxy's ranking can be trusted."""
    tau, rho, cells = stats["kendall"], stats["spearman"], stats["cells"]
    if not math.isfinite(tau):
        return (
            f"Over {cells} cells the proxy gave (nearly) the same signal to every cell or the "
            "ground truth did not vary, so it cannot tell these cells apart."
        )
    words = next((w for limit, w in TRUST_THRESHOLDS if tau >= limit), None)
    if words:
        verdict = f"the proxy ranks cells {words}"
    elif tau <= -TRUST_THRESHOLDS[-1][0]:
        verdict = "the proxy ranks cells largely in reverse"
    else:
        verdict = "the proxy barely tells cells apart"
    interval = stats.get("kendall_ci95")
    if cells < MIN_CELLS_FOR_A_VERDICT:
        verdict = f"too few cells for a verdict ({MIN_CELLS_FOR_A_VERDICT}+ needed)"
    text = f"Kendall tau {tau:.2f} (Spearman {rho:.2f}) over {cells} cells: {verdict}"
    if interval:
        text += f" (tau 95% interval {interval[0]:.2f} to {interval[1]:.2f})"
    big = max(stats["regret"], default=0)
    if big > 1:
        which = (
            f"its pick among all {big} cells is {stats['regret'][big]:.2f} points of "
            f"{truth_column} below the best of them"
            if big == cells
            else f"its pick of the best of {big} costs {stats['regret'][big]:.2f} points of "
            f"{truth_column} on average over all {big}-cell subsets"
        )
        text += f"; {which} (a random pick {stats['random_regret'][big]:.2f})"
    reference = stats.get("reference_kendall")
    if reference_column and reference is not None and math.isfinite(reference):
        text += f"; the table's {reference_column} gives tau {reference:.2f} on the same cells"
    return text + "."


# --------------------------------------------------------------------------- config checks


def tracking_settings(config: ExperimentConfig) -> tuple[str, str | None]:
    """The comparison's MLflow store: ``tracking_uri`` or the SQLite store in ``output_dir``."""
    from gaea_tune.tracking import default_tracking

    if config.tracking_uri:
        return config.tracking_uri, config.artifact_location
    uri, artifacts = default_tracking(Path(config.output_dir).expanduser().resolve())
    return uri, config.artifact_location or artifacts


def columns_for(dataset: str) -> tuple[str, str]:
    """(ground-truth column, the table's 12-epoch validation column) of ``dataset``; raises
    :class:`ConfigError` when the NB201 table holds no ground truth for it."""
    from gaea_tune.datasets import dataset_info
    from gaea_tune.nb201_table import SEARCH_COLUMNS

    info = dataset_info(dataset)
    table_dataset = _TABLE_DATASET.get(dataset, dataset)
    if not info.ground_truth or table_dataset not in SEARCH_COLUMNS:
        raise ConfigError(
            f"dataset.name: the NB201 table holds no ground truth for {dataset!r}, so there is "
            "nothing to calibrate against"
        )
    return info.ground_truth[0], SEARCH_COLUMNS[table_dataset][0]


def calibration_method(config: ExperimentConfig, method: str | None = None) -> MethodConfig:
    """The standalone method whose training settings are calibrated: ``method`` (a label), or
    the first standalone method of the config. Raises :class:`ConfigError` (one line) when the
    config cannot be calibrated: not the NB201 space, tabular mode, no ground truth, or no such
    standalone method."""
    from gaea_tune.registry import STANDALONE_METHODS

    if config.space["name"] != "nb201":
        raise ConfigError(
            f"space.name: calibrate needs the NB201 space, whose table gives each cell a ground "
            f"truth; this config uses {config.space['name']!r}"
        )
    if config.mode != "live":
        raise ConfigError(
            f"mode: calibrate trains networks as a live comparison does; this config is "
            f"{config.mode!r}, whose signal is already the table's"
        )
    columns_for(config.dataset["name"])
    standalone = [m for m in config.methods if m.family == "standalone"]
    if method is None:
        if not standalone:
            raise ConfigError(
                f"methods: calibrate needs a standalone method ({', '.join(STANDALONE_METHODS)}) "
                "whose training settings it measures; this config has only "
                f"{', '.join(m.label for m in config.methods)}"
            )
        return standalone[0]
    for candidate in config.methods:
        if candidate.label == method:
            if candidate.family != "standalone":
                raise ConfigError(
                    f"--method: {method!r} is a weight-sharing method; calibrate measures a "
                    f"standalone method's training; allowed: "
                    f"{', '.join(m.label for m in standalone) or 'none in this config'}"
                )
            return candidate
    raise ConfigError(
        f"--method: no method labelled {method!r}; allowed: "
        f"{', '.join(m.label for m in standalone) or 'none in this config'}"
    )


def calibration_key(settings: dict[str, Any]) -> str:
    """What makes two standalone trainings the same proxy: everything in ``settings`` (of
    :func:`calibration_settings`) but the seed, the method's label and where it runs."""
    kept = {k: v for k, v in settings.items() if k not in ("method", "device", "threads")}
    kept["dataset"] = {k: v for k, v in (settings.get("dataset") or {}).items() if k != "seed"}
    return json.dumps(kept, sort_keys=True)


def calibration_settings(
    config: ExperimentConfig, method: MethodConfig, seed: int
) -> dict[str, Any]:
    """What each calibration cell trains with: the method's training settings as
    ``gaea-tune validate --show`` resolves them, C/N/op set from ``space``, and the data a
    comparison's seed ``seed`` gets (the dataset's seed offset by ``seed``), and the
    comparison-level numerics its trials train in (precision, memory format)."""
    from gaea_tune.resolve import resolved_settings

    resolved = resolved_settings(config)
    training = dict(resolved["methods"][method.label]["training"])
    training.pop("optimizer", None)
    numerics = resolved["comparison"]["numerics"]  # the trials' precision and memory format
    dataset = {k: v for k, v in config.dataset.items() if v is not None}
    dataset["seed"] = int(dataset.get("seed", 0)) + int(seed)
    use_gpu = config.resources["gpu"] > 0
    return {
        "method": method.label,
        "epochs": int(training["epochs"]),
        "batch_size": int(training["batch_size"]),
        "lr": float(training["lr"]),
        "weight_decay": float(training["weight_decay"]),
        "C": int(config.space["C"]),
        "N": int(config.space["N"]),
        "exclude_none": bool(config.space.get("exclude_none", False)),
        "amp": bool(numerics["amp"]),
        "channels_last": bool(numerics["channels_last"]),
        "dataset": dataset,
        "device": "cuda" if use_gpu else "cpu",
        "threads": max(1, int(config.resources["cpu"])),
    }


# --------------------------------------------------------------------------- the measurement


def sample_cells(cells: int, seed: int, exclude_none: bool) -> list[Any]:
    """``cells`` distinct NB201 cells drawn uniformly with ``numpy.random.default_rng(seed)``."""
    from search_spaces import get_space

    space = get_space("nb201")
    available = len(space.candidate_ops(exclude_none)) ** 6
    low = MIN_CALIBRATION_CELLS
    if isinstance(cells, bool) or not isinstance(cells, int) or not low <= cells <= available:
        raise ConfigError(
            f"cells: {cells!r} is out of range; allowed: {low} <= cells <= {available} "
            f"(the cells of the space{' without none' if exclude_none else ''})"
        )
    rng = np.random.default_rng(seed)
    chosen: dict[int, Any] = {}
    while len(chosen) < cells:
        genotype = space.sample(rng, exclude_none=exclude_none)
        chosen.setdefault(genotype.index, genotype)
    return list(chosen.values())


class _Progress:
    """One step per trained cell: a tqdm bar on a terminal, plain lines on stderr otherwise
    (:class:`gaea_tune._progress.Progress`), or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        from gaea_tune._progress import Progress

        self.view = Progress(total=total, desc="calibrate", unit="cell", stream=sys.stderr,
                             enabled=enabled)  # fmt: skip

    def update(self, text: str) -> None:
        self.view.advance(1, text)

    def close(self) -> None:
        self.view.close()


def _train_cell(genotype: Any, splits: Any, settings: dict[str, Any], seed: int) -> dict[str, Any]:
    """Train one cell as a comparison's standalone trial does; its validation curve and cost."""
    import torch

    from gaea_tune.baselines._train import StandaloneTraining, seeded_network
    from gaea_tune.budget import DeviceClock
    from search_spaces import get_space

    use_gpu = settings["device"] == "cuda" and torch.cuda.is_available()
    clock = DeviceClock(1.0 if use_gpu else 0.0, float(settings["threads"]))
    started, cpu_started = time.perf_counter(), time.process_time()
    network = seeded_network(
        get_space("nb201"), genotype, settings["C"], settings["N"], splits.num_classes, seed
    )
    training = StandaloneTraining(
        network,
        splits,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        weight_decay=settings["weight_decay"],
        seed=seed,
        device="cuda" if use_gpu else "cpu",
        label=str(genotype),
        amp=settings["amp"],
        channels_last=settings["channels_last"],
    )
    curve: list[float] = []
    metrics: dict[str, Any] = {}
    failure = None
    try:
        while training.epoch < training.epochs:
            metrics = training.train_epoch()
            metrics.update(training.evaluate())  # every epoch, as a trial reports every epoch
            curve.append(float(metrics["valid_acc"]))
    except FloatingPointError as error:  # NonFiniteLossError: the evaluation failed
        failure = str(error)
    return {
        "proxy_signal": curve[-1] if curve and failure is None else None,
        "valid_loss": metrics.get("valid_loss") if failure is None else None,
        "train_acc": metrics.get("train_acc") if failure is None else None,
        "valid_curve": curve,
        "failure": failure,
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "device_seconds": clock.spent(),
        "device_kind": clock.kind,
    }


def calibration_workers(settings: dict[str, Any], workers: int | None = None) -> int:
    """Cells trained at once: ``workers`` if given (an integer >= 1, else ConfigError), else one
    on a GPU and, on CPU, as many as this machine's cores hold at the trial's threads each."""
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers: expected an integer >= 1, got {workers!r}")
        return workers
    if settings["device"] != "cpu":
        return 1
    from gaea_tune._local_pool import usable_cpus

    return max(1, usable_cpus() // max(1, int(settings["threads"])))


_WORKER: dict[str, Any] = {}


def _worker_start(settings: dict[str, Any]) -> None:
    import torch

    from gaea_tune.data import load_splits

    if settings["device"] == "cpu":
        torch.set_num_threads(settings["threads"])
    _WORKER["splits"] = load_splits(**settings["dataset"])


def _worker_cell(genotype: str, settings: dict[str, Any], seed: int) -> dict[str, Any]:
    from search_spaces import get_space

    return _train_cell(get_space("nb201").parse(genotype), _WORKER["splits"], settings, seed)


def _train_in_pool(
    genotypes: list[Any],
    settings: dict[str, Any],
    seed: int,
    workers: int,
    record: Any,
) -> None:
    """Each cell in a worker process (:func:`gaea_tune._local_pool.process_pool`); each worker
    loads the data once. ``record(position, result)`` as cells finish."""
    from concurrent.futures import as_completed

    from gaea_tune._local_pool import process_pool

    with process_pool(workers, initializer=_worker_start, initargs=(settings,)) as pool:
        futures = {
            pool.submit(_worker_cell, str(genotype), settings, seed): position
            for position, genotype in enumerate(genotypes)
        }
        for future in as_completed(futures):
            record(futures[future], future.result())


def calibrate(
    config: ExperimentConfig,
    cells: int = CALIBRATION_CELLS,
    seed: int = 0,
    method: str | None = None,
    progress: bool = True,
    track: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """Train ``cells`` sampled NB201 cells under the standalone settings of ``config`` and
    measure how well their final validation accuracy ranks them by the NB201 ground truth.

    ``method``: the label of the standalone method whose training settings are used (default:
    the config's first standalone method). ``seed`` draws the cells (``numpy`` Generator,
    obeying ``space.exclude_none``) and seeds training and data as a comparison's seed ``seed``
    does. ``progress``: a progress bar (tqdm, or plain lines) on stderr. ``track``: log an
    MLflow run tagged ``gaea.level=calibration`` in the comparison's experiment. ``workers``:
    cells trained at once, each in its own process with the trial's threads (default
    :func:`calibration_workers`); a cell's result does not depend on it.

    Writes ``OUTPUT_DIR/calibration/calibration.json`` and ``calibration.png`` and returns the
    same content as a dict (``statistics``, ``per_cell``, ``settings``, times, ``sentence``,
    ``files``, ``mlflow``). Raises :class:`ConfigError` before any compute when the config
    cannot be calibrated, and ``TrackingError`` when its MLflow store cannot be used.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ConfigError(f"seed: expected an integer in [0, 2**31), got {seed!r}")
    chosen = calibration_method(config, method)
    truth_column, reference_column = columns_for(config.dataset["name"])
    settings = calibration_settings(config, chosen, seed)
    genotypes = sample_cells(cells, seed, settings["exclude_none"])
    workers = min(calibration_workers(settings, workers), len(genotypes))  # no idle worker
    uri, artifacts = tracking_settings(config)
    if track:
        from gaea_tune.tracking import check_experiment_usable

        check_experiment_usable(uri, config.name)  # before any compute

    import torch

    from gaea_tune.data import load_splits
    from gaea_tune.nb201_table import load_table

    table = load_table()
    threads_before = torch.get_num_threads()
    started, cpu_started = time.perf_counter(), time.process_time()
    bar = _Progress(len(genotypes), progress)
    results: dict[int, dict[str, Any]] = {}

    def record(position: int, result: dict[str, Any]) -> None:
        results[position] = result
        shown = (
            f"valid {result['proxy_signal']:.1f}%"
            if result["failure"] is None
            else "failed (non-finite loss)"
        )
        bar.update(f"{shown}, {result['wall_seconds']:.0f} s")

    try:
        if workers == 1:
            if settings["device"] == "cpu":
                torch.set_num_threads(settings["threads"])
            splits = load_splits(**settings["dataset"])
            for position, genotype in enumerate(genotypes):
                record(position, _train_cell(genotype, splits, settings, seed))
        else:
            _train_in_pool(genotypes, settings, seed, workers, record)
    finally:
        bar.close()
        torch.set_num_threads(threads_before)
    rows = [
        {
            "index": genotype.index,
            "genotype": str(genotype),
            **results[position],
            "ground_truth": table.lookup(genotype, truth_column),
            "table_signal": table.lookup(genotype, reference_column),
        }
        for position, genotype in enumerate(genotypes)
    ]
    # CPU time of this process plus the cells' own (which ran in worker processes, if any).
    cpu = time.process_time() - cpu_started
    if workers > 1:
        cpu += sum(r["cpu_seconds"] for r in rows)
    wall = time.perf_counter() - started
    usable = [r for r in rows if r["failure"] is None]
    if len(usable) < MIN_CALIBRATION_CELLS:
        raise RuntimeError(
            f"only {len(usable)} of {len(rows)} cells trained without a non-finite loss; "
            f"calibration needs at least {MIN_CALIBRATION_CELLS}"
        )
    proxy = np.array([r["proxy_signal"] for r in usable])
    truth = np.array([r["ground_truth"] for r in usable])
    statistics = proxy_statistics(proxy, truth, [r["table_signal"] for r in usable])
    statistics["failed_cells"] = len(rows) - len(usable)
    by_epoch = []
    for epoch in range(settings["epochs"]):
        at = np.array([r["valid_curve"][epoch] for r in usable])
        by_epoch.append({"epoch": epoch + 1, **_correlations(at, truth)})
    statistics["by_epoch"] = by_epoch  # a longer run's epoch e, not an e-epoch run
    report: dict[str, Any] = {
        "experiment": config.name,
        "method": chosen.label,
        "cells": len(rows),
        "seed": seed,
        "settings": settings,
        "ground_truth_column": truth_column,
        "reference_column": reference_column,
        "statistics": statistics,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "device_seconds": float(sum(r["device_seconds"] for r in rows)),
        "device_kind": rows[0]["device_kind"],
        "seconds_per_cell": wall / len(rows),
        "cpu_seconds_per_cell": cpu / len(rows),
        "workers": workers,
        "per_cell": rows,
    }
    report["sentence"] = trust_sentence(statistics, truth_column, reference_column)
    folder = Path(config.output_dir).expanduser().resolve() / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    json_path, png_path = folder / "calibration.json", folder / "calibration.png"
    plot_calibration(report).savefig(png_path, dpi=120)
    report["files"] = {"calibration.json": str(json_path), "calibration.png": str(png_path)}
    report["mlflow"] = None
    json_path.write_text(json.dumps(_jsonable(report), indent=1))  # kept if logging fails
    if track:
        report["mlflow"] = _log_run(report, config, uri, artifacts, png_path)
        json_path.write_text(json.dumps(_jsonable(report), indent=1))
    return report


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def _log_run(
    report: dict[str, Any], config: ExperimentConfig, uri: str, artifacts: str | None, png: Path
) -> dict[str, str]:
    from gaea_tune.tracking import Tracker

    tracker = Tracker(uri, config.name, artifacts)
    name = f"calibrate-{report['method']}-{report['cells']}cells-seed{report['seed']}"
    key = f"{config.name}/calibration/{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns()}"
    run_id = tracker.start_run(
        name=name,
        key=key,
        tags={"gaea.level": CALIBRATION_LEVEL, "gaea.method": report["method"]},
    )
    try:
        tracker.log_params(
            run_id,
            {
                "settings": report["settings"],
                "cells": report["cells"],
                "seed": report["seed"],
                "ground_truth_column": report["ground_truth_column"],
                "reference_column": report["reference_column"],
            },
        )
        stats = report["statistics"]
        metrics = {
            "spearman": stats["spearman"],
            "kendall": stats["kendall"],
            "table_val_12_spearman": stats["reference_spearman"],
            "table_val_12_kendall": stats["reference_kendall"],
            "failed_cells": stats["failed_cells"],
            "wall_seconds": report["wall_seconds"],
            "cpu_seconds": report["cpu_seconds"],
            "device_seconds": report["device_seconds"],
            "seconds_per_cell": report["seconds_per_cell"],
        }
        for n in stats["regret"]:
            metrics[f"regret_at_{n}"] = stats["regret"][n]
            metrics[f"random_regret_at_{n}"] = stats["random_regret"][n]
            metrics[f"table_val_12_regret_at_{n}"] = stats["reference_regret"][n]
        if stats["kendall_ci95"]:
            metrics["kendall_ci95_low"], metrics["kendall_ci95_high"] = stats["kendall_ci95"]
        tracker.log_metrics(run_id, metrics, step=0)
        tracker.set_tags(run_id, {"gaea.calibration.sentence": report["sentence"]})
        tracker.log_json(run_id, _jsonable(report), "calibration.json")
        tracker.log_artifact(run_id, png)
    except BaseException:
        tracker.end_run(run_id, "FAILED")
        raise
    tracker.end_run(run_id, "FINISHED")
    return {
        "tracking_uri": uri,
        "experiment_id": tracker.experiment_id,
        "run_id": run_id,
        "url": tracker.ui_url(),
    }


def plot_calibration(report: dict[str, Any]) -> Any:
    """A matplotlib ``Figure`` (object API; no pyplot or backend state): each cell's proxy
    signal against its ground truth, and beside it the table's 12-epoch signal."""
    from matplotlib.figure import Figure

    rows = [r for r in report["per_cell"] if r["failure"] is None]
    stats, settings = report["statistics"], report["settings"]
    truth = [r["ground_truth"] for r in rows]
    figure = Figure(figsize=(10, 4.5))
    left, right = figure.subplots(1, 2, sharey=True)
    panels = (
        (left, [r["proxy_signal"] for r in rows], stats["spearman"], stats["kendall"],
         f"proxy: final valid acc (%), {settings['epochs']} ep, C={settings['C']}, "
         f"N={settings['N']}, {settings['dataset'].get('resolution') or 'native'} px"),
        (right, [r["table_signal"] for r in rows], stats["reference_spearman"],
         stats["reference_kendall"], f"NB201 table: {report['reference_column']}"),
    )  # fmt: skip
    for axes, signal, rho, tau, label in panels:
        axes.scatter(signal, truth, s=18, alpha=0.8)
        axes.set_xlabel(label, fontsize=9)
        axes.set_title(f"Spearman {rho:.2f}, Kendall tau {tau:.2f}", fontsize=10)
        axes.grid(alpha=0.3)
    left.set_ylabel(f"ground truth: {report['ground_truth_column']}")
    figure.suptitle(
        f"{report['experiment']}: proxy fidelity of {report['method']}'s training "
        f"({report['cells']} cells, seed {report['seed']})",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The short table the ``calibrate`` command prints."""
    stats, settings = report["statistics"], report["settings"]
    sizes = list(stats["regret"])
    head = f"{'signal':<34} {'Spearman':>8} {'Kendall':>8}" + "".join(
        f" {'regret@' + str(n):>10}" for n in sizes
    )
    proxy_name = (
        f"proxy ({settings['epochs']} ep, bs {settings['batch_size']}, "
        f"{settings['dataset'].get('resolution') or 'native'} px, C={settings['C']})"
    )

    def row(name: str, rho: float | None, tau: float | None, regrets: dict[int, float]) -> str:
        def fmt(x: float | None) -> str:
            return f"{x:>8.3f}" if x is not None and math.isfinite(x) else f"{'-':>8}"

        return f"{name:<34} {fmt(rho)} {fmt(tau)}" + "".join(f" {regrets[n]:>10.3f}" for n in sizes)

    return [
        head,
        row(proxy_name, stats["spearman"], stats["kendall"], stats["regret"]),
        row(
            f"NB201 table {report['reference_column']}",
            stats["reference_spearman"],
            stats["reference_kendall"],
            stats["reference_regret"],
        ),
        row("random pick", None, None, stats["random_regret"]),
        "",
        f"regret@n: mean over all n-cell subsets of (best {report['ground_truth_column']}) - "
        "(that of the signal's pick), in accuracy points",
        f"{report['cells']} cells ({stats['failed_cells']} failed), {report['wall_seconds']:.0f} "
        f"wall s ({report['seconds_per_cell']:.1f} s per cell), {report['cpu_seconds']:.0f} "
        f"CPU-s, {report['device_seconds']:.0f} {report['device_kind']}-seconds charged",
    ]
