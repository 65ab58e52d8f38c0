"""Orchestration overhead is measured and shown; curves end where the spend ended."""

from __future__ import annotations

import numpy as np

from gaea_tune.config import parse_config
from gaea_tune.report import markdown_table, plot_incumbents


def test_share_of_the_machine_in_budgets_and_time_to_first_result():
    from gaea_tune.tune._compare import orchestration_summary

    config = parse_config({"name": "o", "budget": {"device_seconds": 30},
                           "methods": {"random": {}, "rea": {}}})  # fmt: skip
    outcomes = [
        {"label": "random", "seed": 0, "spent_device_seconds": 30.0,
         "time_to_first_result_seconds": 4.0},
        {"label": "rea", "seed": 0, "spent_device_seconds": 25.0,
         "time_to_first_result_seconds": 6.5},
    ]  # fmt: skip
    summary = orchestration_summary(outcomes, 100.0, 140.0, 2.0, config)
    assert summary["machine_device_seconds"] == 80.0
    assert summary["share_in_budgets"] == round(55.0 / 80.0, 4)
    assert summary["time_to_first_result_seconds"] == {"random-seed0": 4.0, "rea-seed0": 6.5}
    table = markdown_table({"mode": "live", "device_kind": "cpu", "methods": {},
                            "orchestration": summary})  # fmt: skip
    assert "machine: 68.8% of its 80 cpu-seconds (40 s x 2) went into budgets" in table
    assert "first result after 4.0-6.5 s" in table


def test_a_curve_is_not_drawn_past_its_spend():
    summary = {
        "experiment": "x", "mode": "live", "device_kind": "cpu", "budget_device_seconds": 3600.0,
        "methods": {"a": {"seeds": [{"curve": [[0.0, 90.0], [900.0, 92.0]],
                                     "spent_device_seconds": 1800.0}]}},
    }  # fmt: skip
    figure = plot_incumbents(summary)
    line = figure.axes[0].get_lines()[0]
    xs = np.asarray(line.get_xdata())
    assert xs.max() <= 0.5 + 1e-9  # hours: the seed spent 1800 s of the 3600 s budget
    assert xs.max() > 0.45
