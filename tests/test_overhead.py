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
    assert "first result after 4.0 s (random-seed0) to 6.5 s (rea-seed0)" in table


def test_spends_that_miss_the_budget_are_named_under_the_table():
    from gaea_tune.report import _budget_lines

    def seed(number, spent, status="finished"):
        return {"seed": number, "spent_device_seconds": spent, "status": status}

    summary = {"mode": "live", "device_kind": "cpu", "budget_device_seconds": 20.0,
               "methods": {"gaea-darts": {"seeds": [seed(0, 31.3), seed(1, 21.0)]},
                           "random": {"seeds": [seed(0, 13.8), seed(1, 5.0, "failed")]}}}  # fmt: skip
    table = "\n".join(_budget_lines(summary))
    assert (
        "budget not matched within 10%: gaea-darts seed 0 156%, random seed 0 69% of B = 20 s"
        in table
    )
    summary["methods"] = {
        "gaea-darts": {"seeds": [seed(0, 21.9)]},
        "random": {"seeds": [seed(0, 18.1)]},
    }
    assert _budget_lines(summary) == []


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
