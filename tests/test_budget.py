"""The budget ledger: charges cumulative spend once, gates new trials, never goes negative."""

from __future__ import annotations

import pytest

from gaea_tune.budget import BudgetLedger, device_count
from gaea_tune.tune._outcome import incumbent_curve


def test_device_count_prefers_gpus_and_labels_cpu_slots():
    assert device_count(0.5, 4) == (0.5, "gpu")
    assert device_count(0, 2) == (2.0, "cpu")
    with pytest.raises(ValueError, match="gpus=0, cpus=0"):
        device_count(0, 0)
    with pytest.raises(ValueError, match="gpus=-1"):
        device_count(-1, 1)


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="budget must be > 0"):
        BudgetLedger(0)


def test_cumulative_reports_are_not_double_counted():
    ledger = BudgetLedger(100.0)
    ledger.charge("a", 10.0)
    ledger.charge("a", 25.0)
    ledger.charge("a", 25.0)  # a retried trial reporting the same epoch again
    ledger.charge("b", 5.0)
    assert ledger.spent == 30.0
    ledger.charge("a", 20.0)  # restored from an older checkpoint: redoes 5 s of work
    assert ledger.spent == 30.0
    ledger.charge("a", 30.0)  # the redone 5 s (20 -> 25) is charged again, as it was spent
    assert ledger.spent == 40.0
    ledger.charge_lost(4.0)  # work a dead worker did after its last checkpoint
    assert ledger.spent == 44.0
    assert ledger.remaining == 56.0
    with pytest.raises(ValueError, match="nan"):
        ledger.charge("a", float("nan"))


def test_may_start_accounts_for_expected_and_committed_cost():
    ledger = BudgetLedger(100.0)
    assert ledger.may_start()  # nothing known yet: the first trial always starts
    ledger.start("a")
    ledger.charge("a", 40.0)
    ledger.finish("a")
    assert ledger.expected_trial_cost() == 40.0
    ledger.start("b")
    ledger.charge("b", 10.0)  # b is expected to need 30 more
    assert ledger.committed() == 30.0
    assert not ledger.may_start()  # 50 spent + 30 committed + 40 expected > 100
    assert ledger.may_start(expected_cost=20.0)
    ledger.finish("b", completed=False)  # a failed trial does not inform the estimate
    assert ledger.finished_costs == [40.0]
    ledger.charge("c", 60.0)
    assert ledger.exhausted()
    assert not ledger.may_start(expected_cost=0.0)


def test_next_fits_sets_aside_what_live_trials_may_still_spend():
    ledger = BudgetLedger(10.0)
    ledger.start("a")
    ledger.charge("a", 4.0)
    ledger.finish("a")  # expected cost 4
    ledger.start("b")
    ledger.charge("b", 1.0)  # b may spend 3 more, or be stopped by a halving first
    assert not ledger.may_start()  # 5 spent + 3 committed + 4 expected > 10
    assert ledger.next_fits()  # 5 spent + 4 expected <= 10: wait for b, do not end
    ledger.finish("b")  # stopped at 1: expected cost (4 + 1) / 2
    assert ledger.may_start()
    ledger.charge("c", 3.0)
    assert not ledger.next_fits()  # 8 spent + 2.5 expected > 10: the last trial was launched


def _result(trial, spent, signal, genotype):
    return {"kind": "result", "trial_id": trial, "method_device_seconds": spent,
            "search_signal": signal, "genotype": genotype}  # fmt: skip


A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def test_standalone_incumbent_is_best_by_own_signal():
    events = [_result("t1", 10, 60.0, B), _result("t2", 20, 55.0, A), _result("t2", 30, 70.0, A)]
    curve, incumbent = incumbent_curve(events, "standalone", "cifar10_test_200")
    assert incumbent["genotype"] == A
    assert [p[0] for p in curve] == [10, 20, 30]
    assert curve[0][1] == pytest.approx(85.8633)  # B's table accuracy (index 0)
    assert curve[1][1] == pytest.approx(85.8633)  # t2's first result is worse: B stays
    assert curve[2][1] == pytest.approx(94.3733)


def test_weight_sharing_incumbent_is_where_the_search_stands():
    events = [_result("s", 10, 60.0, A), _result("s", 20, 50.0, B)]
    curve, incumbent = incumbent_curve(events, "weight-sharing", None)
    assert incumbent["genotype"] == B
    assert curve == [[10, 60.0], [20, 50.0]]  # no table: the search signal


def test_a_finish_seen_twice_counts_once_in_the_expected_trial_cost():
    """After a resume, Tune may report a trial's completion again: its cost informs the
    estimate for the next trial once."""
    from gaea_tune.budget import BudgetLedger

    ledger = BudgetLedger(budget=12.0)
    for trial, cost in (("a", 4.0), ("b", 1.0)):
        ledger.start(trial)
        ledger.charge(trial, cost)
        ledger.finish(trial)
    ledger.finish("a")
    assert ledger.expected_trial_cost() == 2.5
