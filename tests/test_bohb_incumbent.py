"""BOHB's incumbent as hpbandster defines it: the best result at the largest budget."""

from __future__ import annotations

import pickle

import pytest

from gaea_tune.baselines import (
    PAPER_BOHB,
    make_searcher,
    simulate,
    tabular_benchmark,
    tabular_options,
)
from gaea_tune.tune._outcome import incumbent_curve
from search_spaces.nb201 import NB201Space

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _result(trial, spent, epoch, signal, genotype):
    return {"kind": "result", "trial_id": trial, "method_device_seconds": spent,
            "epoch": epoch, "search_signal": signal, "genotype": genotype}  # fmt: skip


# ------------------------------------------------------------------ live: incumbent_curve


def test_low_fidelity_result_never_displaces_a_larger_fidelity_one():
    events = [
        _result("t1", 10, 1, 60.0, B),
        _result("t2", 20, 3, 55.0, A),  # the first result after 3 epochs: the incumbent now
        _result("t3", 30, 1, 90.0, B),  # higher signal after 1 epoch: not BOHB's incumbent
        _result("t4", 40, 3, 57.0, C),  # better at the top fidelity: the incumbent
        _result("t5", 50, 2, 99.0, B),
    ]
    curve, incumbent = incumbent_curve(events, "standalone", None, method="bohb")
    assert (incumbent["trial_id"], incumbent["genotype"]) == ("t4", C)
    assert curve == [[10, 60.0], [20, 55.0], [30, 55.0], [40, 57.0], [50, 57.0]]
    # Other standalone methods (and callers that give no method) keep the best signal so far.
    for method in (None, "random", "rea"):
        _, best = incumbent_curve(events, "standalone", None, method=method)
        assert best["trial_id"] == "t5"
    assert incumbent_curve(events, "standalone", None)[1]["trial_id"] == "t5"


def test_bohb_curve_reads_the_table_for_its_incumbent():
    events = [_result("t1", 10, 1, 90.0, B), _result("t2", 20, 4, 50.0, A)]
    curve, incumbent = incumbent_curve(events, "standalone", "cifar10_test_200", method="bohb")
    assert incumbent["genotype"] == A
    assert curve[0][1] == pytest.approx(85.8633)  # B's table accuracy
    assert curve[1][1] == pytest.approx(94.3733)  # A's


def test_failed_results_at_the_top_fidelity_are_skipped():
    events = [_result("t1", 10, 1, 70.0, B), _result("t2", 20, 3, None, A)]
    _, incumbent = incumbent_curve(events, "standalone", None, method="bohb")
    assert incumbent["trial_id"] == "t1"


# ------------------------------------------------------------------ the ask/tell searcher


def _drive(searcher, steps, signal):
    jobs = []
    for _ in range(steps):
        proposal = searcher.ask()
        budget = searcher.budget_of(proposal)
        value = signal(proposal, budget)
        jobs.append((budget, value, proposal.genotype, proposal.fidelity))
        searcher.tell(proposal, value)
    return jobs


def test_searcher_incumbent_is_the_best_job_at_the_largest_budget():
    # Paper style: every job is evaluated at 12 epochs; only the bracket budget differs.
    searcher = make_searcher("bohb", NB201Space(), 0, **PAPER_BOHB)
    counter = iter(range(10_000))

    # Lower budgets get the higher signals, so the best signal overall is never at the top.
    def signal(proposal, budget):
        return 100.0 - budget + (next(counter) % 7) / 10

    jobs = _drive(searcher, 40, signal)
    top = max(b for b, *_ in jobs)
    assert top == pytest.approx(200.0)
    assert {f for *_, f in jobs} == {12}
    best_top = max((j for j in jobs if j[0] == top), key=lambda j: j[1])
    best_all = max(jobs, key=lambda j: j[1])
    assert best_all[0] < top and best_all[1] > best_top[1]
    assert searcher.incumbent == (best_top[2], best_top[1])
    assert searcher.incumbent_fidelity == 12

    # The incumbent survives save and restore.
    restored = make_searcher("bohb", NB201Space(), 5, **PAPER_BOHB)
    restored.load_state_dict(pickle.loads(pickle.dumps(searcher.state_dict())))
    assert restored.incumbent == searcher.incumbent


def test_before_the_top_budget_the_largest_budget_so_far_stands_in():
    searcher = make_searcher("bohb", NB201Space(), 0, **PAPER_BOHB)
    jobs = _drive(searcher, 9, lambda p, b: 50.0)  # the 9 first jobs of the first bracket
    assert {round(b, 3) for b, *_ in jobs} == {22.222}
    assert searcher.incumbent == (jobs[0][2], 50.0)  # first among ties, as hpbandster's min


# ------------------------------------------------------------------ tabular simulation


@pytest.mark.parametrize("seed", range(4))
def test_simulated_paper_bohb_reports_hpbandsters_incumbent(seed):
    bench = tabular_benchmark("cifar10")
    result = simulate("bohb", "cifar10", 12000, seed=seed, style="paper")
    # Replay the same search, recording each job's bracket budget.
    searcher = make_searcher(
        "bohb", NB201Space(), seed, **tabular_options("bohb", {"style": "paper"})
    )
    jobs, spent = [], 0.0
    for _ in range(result.evaluations):
        proposal = searcher.ask()
        index = proposal.genotype.index
        spent += 12 * bench.epoch_seconds[index]
        value = float(bench.signal[12][index])
        jobs.append((searcher.budget_of(proposal), value, str(proposal.genotype)))
        searcher.tell(proposal, value)
    assert spent == pytest.approx(result.spent)
    top = max(b for b, *_ in jobs)
    best = max((j for j in jobs if j[0] == top), key=lambda j: j[1])
    assert (result.incumbent, result.signal, result.fidelity) == (best[2], best[1], 12)
    assert str(searcher.incumbent[0]) == result.incumbent
    assert result.test_accuracy == pytest.approx(
        float(bench.truth[NB201Space().parse(best[2]).index])
    )
