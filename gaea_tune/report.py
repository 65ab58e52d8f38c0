"""Tables, plots and ``summary.json`` of a comparison, read back from MLflow (never from trainables)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gaea_tune.statistics import analyse
from gaea_tune.statistics import primary_value as _primary_value
from gaea_tune.tracking import PARENT_TAG, Tracker


def _latest_runs(tracker: Tracker, level: str, count: int, finished: bool = False) -> list[Any]:
    """The experiment's ``count`` latest runs tagged ``gaea.level=level``, newest first."""
    status = " and attributes.status = 'FINISHED'" if finished else ""
    return tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string=f"tags.`gaea.level` = '{level}'{status}",
        order_by=["attributes.start_time DESC"],
        max_results=count,
    )


def _latest_comparison(tracker: Tracker) -> str:
    runs = _latest_runs(tracker, "comparison", 1)
    if not runs:
        raise ValueError(f"no comparison run in MLflow experiment {tracker.experiment_id}")
    return runs[0].info.run_id


def collect(tracker: Tracker, parent_run_id: str | None = None) -> dict[str, Any]:
    """``summary.json``'s content for one comparison run (the latest when not given)."""
    parent_run_id = parent_run_id or _latest_comparison(tracker)
    config = tracker.download_json(parent_run_id, "config.json")
    budget = float(tracker.get_run(parent_run_id).data.params["budget_device_seconds"])
    methods: dict[str, dict[str, Any]] = {}
    entropy: dict[str, list[list[float]]] = {}
    failures: list[dict[str, str]] = []
    for run in tracker.child_runs(parent_run_id):
        if run.data.tags.get("gaea.level") != "method":
            continue
        outcome = None
        if run.info.status == "FAILED":
            failures.append(
                {"run": run.data.tags.get("mlflow.runName"), "mlflow_run_id": run.info.run_id,
                 "reason": run.data.tags.get("gaea.failure", "unknown")}
            )  # fmt: skip
            if "outcome.json" not in tracker.artifact_names(run.info.run_id):
                continue  # failed before it had anything to show
        outcome = outcome or tracker.download_json(run.info.run_id, "outcome.json")
        entry = methods.setdefault(
            outcome["label"],
            {"family": outcome["family"], "method": outcome["method"], "seeds": []},
        )
        entry["seeds"].append(
            {
                "seed": outcome["seed"],
                "status": outcome.get("status", "finished"),
                "failure": outcome.get("failure"),
                "spent_device_seconds": outcome["spent_device_seconds"],
                "trials": outcome["trials"],
                "failed_trials": outcome.get("failed_trials", {}),
                "genotype": outcome["genotype"],
                "search_signal": outcome["search_signal"],
                "ground_truth": outcome["ground_truth"],
                "retrain": outcome.get("retrain"),
                "throughput": outcome.get("throughput"),
                "curve": outcome["curve"],
                "mlflow_run_id": run.info.run_id,
            }
        )
        if outcome["family"] == "weight-sharing":
            for trial in tracker.child_runs(run.info.run_id):
                history = tracker.metric_history(trial.info.run_id, "entropy")
                if history:
                    entropy.setdefault(outcome["label"], []).append([v for _, v in sorted(history)])
    primary = None
    for label, entry in methods.items():
        entry["seeds"].sort(key=lambda s: s["seed"])
        values = [_primary_value(s) for s in entry["seeds"]]
        values = [v for v in values if v is not None]
        entry["mean"] = float(np.mean(values)) if values else None
        entry["std"] = (
            float(np.std(values, ddof=1)) if len(values) > 1 else (0.0 if values else None)
        )
        for seed in entry["seeds"]:
            if seed["ground_truth"]:
                primary = primary or next(iter(seed["ground_truth"]))
        del label
    return {
        "experiment": config["name"],
        "mode": config.get("mode", "live"),
        "budget_device_seconds": budget,
        "device_kind": _device_kind(config),
        "ground_truth_column": primary,
        "space": _space_summary(config),
        "methods": methods,
        "entropy": entropy,
        "statistics": significance(methods),
        "failed_methods": failures,
        "orchestration": _orchestration(tracker, parent_run_id),
        "calibration": calibrations(tracker, config),
        "mlflow": {
            "tracking_uri": tracker.tracking_uri,
            "experiment_id": tracker.experiment_id,
            "parent_run_id": parent_run_id,
        },
    }


def _device_kind(config: dict[str, Any]) -> str:
    """What the spend counts: "simulated" (table seconds), else "gpu" or "cpu" seconds."""
    if config.get("mode") == "tabular" or (config.get("dataset") or {}).get("simulate"):
        return "simulated"
    resources = config.get("resources") or {}
    return "gpu" if float(resources.get("gpu", 0) or 0) > 0 else "cpu"


def _kind_label(summary: dict[str, Any]) -> str:
    kind = summary["device_kind"]
    return kind if kind == "simulated" else kind.upper()


def _orchestration(tracker: Tracker, parent_run_id: str) -> dict[str, Any] | None:
    """The share of the machine that went into budgets (live comparisons), if recorded."""
    if "orchestration.json" not in tracker.artifact_names(parent_run_id):
        return None
    return tracker.download_json(parent_run_id, "orchestration.json")


def calibrations(tracker: Tracker, config_raw: dict[str, Any]) -> dict[str, Any]:
    """The proxy fidelity of this comparison's own standalone settings, where measured.

    For each standalone method, the latest finished ``gaea-tune calibrate`` run of the same MLflow
    experiment whose cells were trained with exactly this method's settings (epochs, batch size,
    lr, weight decay, C, N, op set, dataset and resolution; any seed):
    ``{label: {"kendall", "spearman", "cells", "sentence", "mlflow_run_id"}}``; methods without
    one are absent. Empty for tabular comparisons, whose signal is the table's."""
    if config_raw.get("mode", "live") != "live":
        return {}
    runs = _latest_runs(tracker, "calibration", 50, finished=True)
    if not runs:
        return {}
    from gaea_tune.calibrate import calibration_key, calibration_settings
    from gaea_tune.config import parse_config

    try:
        config = parse_config(dict(config_raw))
    except ValueError:
        return {}  # a config this version no longer reads has no comparable settings
    reports: dict[str, dict[str, Any]] = {}
    found: dict[str, Any] = {}
    for method in config.methods:
        if method.family != "standalone":
            continue
        wanted = calibration_key(calibration_settings(config, method, 0))
        for run in runs:
            run_id = run.info.run_id
            if run_id not in reports:
                names = tracker.artifact_names(run_id)
                reports[run_id] = (
                    tracker.download_json(run_id, "calibration.json")
                    if "calibration.json" in names
                    else {}
                )
            report = reports[run_id]
            if report.get("settings") and calibration_key(report["settings"]) == wanted:
                stats = report["statistics"]
                found[method.label] = {
                    "kendall": stats.get("kendall"),
                    "spearman": stats.get("spearman"),
                    "cells": report.get("cells"),
                    "sentence": report.get("sentence"),
                    "mlflow_run_id": run_id,
                }
                break
    return found


def _space_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The search space every method of the comparison searched, candidate ops included."""
    from search_spaces import get_space

    space = dict(config.get("space") or {})
    name = space.get("name", "nb201")
    exclude_none = bool(space.get("exclude_none", False))
    ops = list(get_space(name).candidate_ops(exclude_none))
    return {"name": name, "C": space.get("C"), "N": space.get("N"),
            "exclude_none": exclude_none, "candidate_ops": ops}  # fmt: skip


def significance(methods: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``statistics`` section of ``summary.json`` (see :mod:`gaea_tune.statistics`): per pair
    of methods, a Wilcoxon signed-rank test over their common seeds, Holm-corrected over all
    pairs, with effect sizes, or "no claim" and why; bootstrap intervals of each method's mean;
    mean ranks over the common seeds and a Friedman test."""
    return analyse(methods)


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    statistics = summary.get("statistics") or {}
    ranks = (statistics.get("ranks") or {}).get("mean_rank") or {}
    for label, entry in summary["methods"].items():
        seeds = entry["seeds"]
        ci = ((statistics.get("methods") or {}).get(label) or {}).get("ci95")
        rows.append(
            {
                "method": label,
                "family": entry["family"],
                "seeds": len(seeds),
                "mean": entry["mean"],
                "std": entry["std"],
                "mean_ci95_low": (ci or [None, None])[0],
                "mean_ci95_high": (ci or [None, None])[1],
                "mean_rank": ranks.get(label),
                "device_hours": float(np.mean([s["spent_device_seconds"] for s in seeds])) / 3600.0,
                "trials": float(np.mean([s["trials"] for s in seeds])),
                "failed": sum(len(s.get("failed_trials") or {}) for s in seeds),
                "failed_seeds": sum(s.get("status") == "failed" for s in seeds),
                "images_per_device_second": _mean_throughput(seeds),
            }
        )
    ranked = sorted(rows, key=lambda r: -(r["mean"] if r["mean"] is not None else -math.inf))
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank if row["mean"] is not None else None
    return ranked


def _throughput_cell(row: dict[str, Any]) -> str:
    value = row.get("images_per_device_second")
    return "-" if value is None else f"{value:.1f}"


def _mean_throughput(seeds: list[dict[str, Any]]) -> float | None:
    """Mean over seeds of images processed per charged device-second (None: not recorded,
    e.g. tabular mode)."""
    values = [(s.get("throughput") or {}).get("images_per_device_second") for s in seeds]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def markdown_table(summary: dict[str, Any]) -> str:
    column = summary.get("ground_truth_column") or "ground truth"
    kind = _kind_label(summary)
    space = summary.get("space")
    lines = []
    if space:
        lines += [
            f"Search space (the same for every method): {space['name']}, candidate ops: "
            f"{', '.join(space['candidate_ops'])}",
        ]
    retrains = [
        seed["retrain"]
        for entry in summary["methods"].values()
        for seed in entry["seeds"]
        if seed.get("retrain")
    ]
    protocols = sorted({str(r.get("retrain_protocol")) for r in retrains})
    numerics = sorted(
        {
            f"{r['retrain_precision']}, {r['retrain_memory_format']}"
            for r in retrains
            if r.get("retrain_precision")
        }
    )
    if protocols:
        how = f" in {' / '.join(numerics)}" if numerics else ""
        lines.append(
            f"Ground truth: each incumbent retrained from scratch with the {', '.join(protocols)} "
            f"protocol{how} (the same for every method), tested once on the test split"
        )
    if lines:
        lines.append("")
    lines += [
        f"| rank | method | family | {column} (mean +- std) | 95% CI of mean | {kind}-hours spent | img per {kind.lower()}-s | trials | failed trials | seeds (failed) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in _rows(summary):
        accuracy = "n/a" if row["mean"] is None else f"{row['mean']:.2f} +- {row['std']:.2f}"
        lines.append(
            f"| {row['rank'] or '-'} | {row['method']} | {row['family']} | {accuracy} | "
            f"{_mean_ci_cell(summary, row)} | "
            f"{row['device_hours']:.4f} | {_throughput_cell(row)} | {row['trials']:.1f} | "
            f"{row['failed']} | "
            f"{row['seeds']} ({row['failed_seeds']}) |"
        )
    for failure in summary.get("failed_methods", []):
        lines.append(f"\nfailed: {failure['run']}: {failure['reason']}")
    overhead = summary.get("orchestration")
    if (
        overhead
        and overhead.get("share_in_budgets") is not None
        and summary["device_kind"] != "simulated"  # table seconds are not the machine's
    ):
        firsts = {
            k: v for k, v in (overhead.get("time_to_first_result_seconds") or {}).items() if v
        }
        first = ""
        if firsts:
            early, late = min(firsts, key=firsts.get), max(firsts, key=firsts.get)
            first = (f"; first result after {firsts[early]:.1f} s ({early}) to "
                     f"{firsts[late]:.1f} s ({late})")  # fmt: skip
        lines.append(
            f"\nmachine: {100 * overhead['share_in_budgets']:.1f}% of its "
            f"{overhead['machine_device_seconds']:.0f} {overhead['device_kind']}-seconds "
            f"({overhead['wall_seconds']:.0f} s x {overhead['machine_devices']:g}) went into "
            f"budgets{first}"
        )
    lines += _budget_lines(summary)
    lines += _calibration_lines(summary)
    lines += _statistics_lines(summary)
    return "\n".join(lines)


# A seed whose spend is outside this share of B is named under the table.
BUDGET_MATCH = (0.9, 1.1)


def _budget_lines(summary: dict[str, Any]) -> list[str]:
    """Method x seeds whose spend missed the budget by more than 10% either way, named: the
    comparison is budget-matched only as far as the spends match."""
    budget = summary.get("budget_device_seconds")
    if not budget:
        return []
    low, high = BUDGET_MATCH
    missed = []
    for label, entry in summary["methods"].items():
        for seed in entry.get("seeds", []):
            spent = seed.get("spent_device_seconds")
            if (
                seed.get("status", "finished") == "finished"
                and spent is not None
                and not (low * budget <= spent <= high * budget)
            ):
                missed.append(f"{label} seed {seed.get('seed')} {100 * spent / budget:.0f}%")
    if not missed:
        return []
    return [
        f"\nbudget not matched within {100 * (high - 1):.0f}%: {', '.join(missed)} of "
        f"B = {budget:g} s. A weight-sharing search runs whole epochs (stopping after the one "
        "that reaches B, or at the count planned from B) and a standalone method starts a trial "
        "only while its expected cost fits, so with B near one epoch or a few trials the spends "
        "differ: raise B (or lower the per-epoch cost) before reading the ranks as "
        "budget-matched."
    ]


def _calibration_lines(summary: dict[str, Any]) -> list[str]:
    """How far the standalone methods' proxy ranking can be trusted (``gaea-tune calibrate``)."""
    if summary.get("mode", "live") != "live":
        return []
    standalone = [m for m, e in summary["methods"].items() if e["family"] == "standalone"]
    if not standalone:
        return []
    measured = summary.get("calibration") or {}
    lines = ["", "Proxy fidelity of the standalone methods' search signal (gaea-tune calibrate):"]
    for label in standalone:
        entry = measured.get(label)
        if entry is None:
            lines.append(f"- {label}: not measured for these settings; "
                         "`gaea-tune calibrate FILE --method " + label + "` measures it")  # fmt: skip
            continue
        if entry.get("sentence"):  # the calibration's own words: tau, its interval, regret
            lines.append(f"- {label}: {entry['sentence']}")
            continue
        tau = "n/a" if entry["kendall"] is None else f"{entry['kendall']:.2f}"
        lines.append(f"- {label}: Kendall tau {tau} over {entry['cells']} cells.")
    return lines


def _mean_ci_cell(summary: dict[str, Any], row: dict[str, Any]) -> str:
    if row["mean"] is None:
        return "n/a"
    if row["mean_ci95_low"] is not None:
        return f"[{row['mean_ci95_low']:.2f}, {row['mean_ci95_high']:.2f}]"
    scored = ((summary.get("statistics") or {}).get("methods") or {}).get(row["method"]) or {}
    return "no claim (1 seed)" if scored.get("n", 0) < 2 else "no claim (no spread)"


def _statistics_lines(summary: dict[str, Any]) -> list[str]:
    """The pairwise comparisons and mean ranks of ``summary["statistics"]``, in markdown."""
    statistics = summary.get("statistics")
    if not statistics:
        return []
    column = summary.get("ground_truth_column") or "the ground truth"
    pairwise, ranks = statistics["pairwise"], statistics["ranks"]
    lines = []
    if pairwise["pairs"]:
        lines += [
            "",
            f"Pairwise comparisons of {column} over the seeds both methods share: Wilcoxon "
            f"signed-rank test, Holm-corrected over the {pairwise['family_size']} pair(s) tested "
            f"(alpha {pairwise['alpha']:g}); difference A - B with a 95% bootstrap CI; r: "
            "matched-pairs rank-biserial correlation (- where no claim is made). A claim needs "
            f"{pairwise['min_common_seeds']}+ common seeds with different results "
            f"({pairwise['min_common_seeds_all_pairs']}+ when all {len(pairwise['pairs'])} "
            "pairs are tested).",
            "",
            "| A | B | common seeds | difference A - B [95% CI] | r | p (raw) | p (Holm) | verdict |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
    for pair in pairwise["pairs"]:
        difference = "-"
        if pair["mean_difference"] is not None:
            ci = pair["difference_ci95"]
            difference = f"{pair['mean_difference']:+.2f}" + (
                f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""
            )
        # r only where the test ran: beside "no claim" (+1.00 from one seed) it reads as a finding
        r = "-" if pair["p_value"] is None else f"{pair['rank_biserial']:+.2f}"
        p_raw = "-" if pair["p_value"] is None else f"{pair['p_value']:.3g}"
        p_holm = "-" if pair["p_holm"] is None else f"{pair['p_holm']:.3g}"
        lines.append(
            f"| {pair['a']} | {pair['b']} | {pair['n_pairs']} | {difference} | {r} | {p_raw} | "
            f"{p_holm} | {pair['verdict']} |"
        )
    if ranks["mean_rank"]:
        order = sorted(ranks["mean_rank"].items(), key=lambda item: (item[1], item[0]))
        lines += [
            "",
            f"Mean rank over the {len(ranks['seeds'])} seed(s) common to all methods "
            "(1 = best, ties averaged): " + ", ".join(f"{m} {r:.2f}" for m, r in order),
        ]
    if ranks["friedman"]:
        friedman = ranks["friedman"]
        lines.append(
            f"Friedman test: chi2 = {friedman['statistic']:.3g}, p = {friedman['p_value']:.3g}: "
            f"{ranks['verdict']}"
        )
    elif ranks["verdict"]:
        subject = "Friedman test" if ranks["mean_rank"] else "Mean ranks and Friedman test"
        lines.append(f"{subject}: {ranks['verdict']}")
    return lines


def csv_table(summary: dict[str, Any]) -> str:
    buffer = io.StringIO()
    rows = _rows(summary)
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["method"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plot_incumbents(summary: dict[str, Any]) -> Any:
    """A matplotlib ``Figure``: each method's incumbent ground truth (mean over seeds, band =
    seed min-max) against device-hours. Uses matplotlib's object API: no global backend or
    pyplot state is touched, so it is safe in notebooks."""
    from matplotlib.figure import Figure

    budget_hours = summary["budget_device_seconds"] / 3600.0
    grid = np.linspace(0.0, budget_hours, 200)
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for label, entry in summary["methods"].items():
        curves = []
        for seed in entry["seeds"]:
            if not seed["curve"]:
                continue
            x = np.array([p[0] for p in seed["curve"]]) / 3600.0
            y = np.array([p[1] for p in seed["curve"]])
            index = np.searchsorted(x, grid, side="right") - 1
            # nothing is drawn past the seed's own spend: its curve ends where its spend ended
            end = float(seed.get("spent_device_seconds") or x[-1] * 3600.0) / 3600.0
            inside = (index >= 0) & (grid <= end + 1e-12)
            curves.append(np.where(inside, y[np.clip(index, 0, None)], np.nan))
        if not curves:
            continue
        stack = np.vstack(curves)
        covered = ~np.all(np.isnan(stack), axis=0)
        x_grid, stack = grid[covered], stack[:, covered]
        mean = np.nanmean(stack, axis=0)
        low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        (line,) = axes.plot(
            x_grid, mean, label=f"{label} ({len(curves)} seed{'s' if len(curves) != 1 else ''})"
        )
        if len(curves) > 1:
            axes.fill_between(x_grid, low, high, color=line.get_color(), alpha=0.2)
    kind = _kind_label(summary)
    column = summary.get("ground_truth_column") or "incumbent search signal"
    axes.set_xlabel(f"{kind}-hours spent (budget {budget_hours:.3g} per method)")
    axes.set_ylabel(column)
    axes.set_title(
        f"{summary['experiment']}: incumbent vs {kind}-hours (band: seed min-max)", fontsize=10
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_entropy(summary: dict[str, Any]) -> Any | None:
    """A matplotlib ``Figure`` of the mean per-edge entropy of each weight-sharing search's
    architecture weights per epoch, or None when no search recorded one."""
    if not summary["entropy"]:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for label, runs in summary["entropy"].items():
        for index, values in enumerate(runs):
            axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                      label=label if index == 0 else None)  # fmt: skip
    axes.set_xlabel("epoch")
    axes.set_ylabel("mean per-edge entropy of architecture weights")
    axes.set_title("Architecture-weight entropy (lower = sparser)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def write_report(
    tracker: Tracker, out_dir: str | Path, parent_run_id: str | None = None
) -> dict[str, Any]:
    """Write summary.json, results.md/.csv and the plots; attach them to the comparison run."""
    summary = collect(tracker, parent_run_id)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "summary.json": json.dumps(summary, indent=1),
        "results.md": markdown_table(summary) + "\n",
        "results.csv": csv_table(summary),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    plot_incumbents(summary).savefig(folder / "incumbent_vs_device_hours.png", dpi=120)
    plots = ["incumbent_vs_device_hours.png"]
    entropy = plot_entropy(summary)
    if entropy is not None:
        entropy.savefig(folder / "entropy.png", dpi=120)
        plots.append("entropy.png")
    parent = summary["mlflow"]["parent_run_id"]
    for name in [*files, *plots]:
        tracker.log_artifact(parent, folder / name, "report")
    summary["files"] = {name: str(folder / name) for name in [*files, *plots]}
    return summary


__all__ = [
    "PARENT_TAG",
    "collect",
    "csv_table",
    "markdown_table",
    "plot_entropy",
    "plot_incumbents",
    "significance",
    "write_report",
]
