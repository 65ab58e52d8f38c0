"""Seed-level statistics of a comparison: paired tests, Holm, effect sizes, ranks, "no claim"."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gaea_tune.statistics import (
    MIN_PAIRS,
    analyse,
    bootstrap_mean_ci,
    holm,
    min_seeds_for_claim,
    paired_comparison,
    pairwise_comparisons,
    rank_analysis,
    rank_biserial,
    seed_scores,
)

COLUMN = "cifar10_test_200"


def _method(values, seeds=None, family="standalone"):
    """One entry of ``collect()``'s ``methods``: a score per seed (None: a failed seed)."""
    seeds = range(len(values)) if seeds is None else seeds
    return {
        "family": family,
        "method": "random",
        "seeds": [
            {
                "seed": seed,
                "status": "finished" if value is not None else "failed",
                "ground_truth": {COLUMN: value} if value is not None else {},
                "spent_device_seconds": 100.0,
                "trials": 3,
                "failed_trials": {},
            }
            for seed, value in zip(seeds, values)
        ],
    }


def _pair(stats, a, b):
    (pair,) = [p for p in stats["pairs"] if {p["a"], p["b"]} == {a, b}]
    return pair


def _false_positive_rate(n_methods, n_seeds, draws, seed):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(draws):
        values = rng.normal(93.0, 0.3, size=(n_methods, n_seeds))
        methods = {f"m{i}": _method(list(row)) for i, row in enumerate(values)}
        stats = pairwise_comparisons(seed_scores(methods), intervals=False)
        hits += any(pair["significant"] for pair in stats["pairs"])
    return hits / draws


def test_identical_methods_three_seeds_claim_nothing():
    """10 methods x 3 seeds from one distribution: no pair is significant in >= 95% of draws
    (with 3 seeds the signed-rank test never rejects: every pair is "no claim")."""
    rate = _false_positive_rate(n_methods=10, n_seeds=3, draws=200, seed=20240601)
    assert rate <= 0.05, rate
    assert rate == 0.0


def test_identical_methods_enough_seeds_hold_the_family_wise_error():
    """Where the tests do run (3 methods x 10 seeds, Holm over 3 pairs), a false claim about any
    pair stays within alpha (1000 draws: the estimate's standard error is about 0.7%)."""
    rate = _false_positive_rate(n_methods=3, n_seeds=10, draws=1000, seed=7)
    assert rate <= 0.05, rate


@pytest.mark.parametrize("n_seeds", [3, 10])
def test_constant_groups_give_no_claim_never_p_zero(n_seeds):
    methods = {"a": _method([93.0] * n_seeds), "b": _method([94.0] * n_seeds)}
    stats = analyse(methods)
    pair = _pair(stats["pairwise"], "a", "b")
    assert pair["p_value"] is None and pair["p_holm"] is None and not pair["significant"]
    assert pair["verdict"].startswith("no claim: ") and "zero variance" in pair["verdict"]
    assert pair["mean_difference"] == pytest.approx(1.0)  # b first: the higher mean
    assert stats["pairwise"]["family_size"] == 0
    assert stats["methods"]["a"]["ci95"] is None  # a constant sample shows no spread
    json.dumps(stats, allow_nan=False)


def test_identical_results_give_no_claim():
    pair = paired_comparison({s: 93.0 + s for s in range(8)}, {s: 93.0 + s for s in range(8)})
    assert pair["p_value"] is None and "identical results on the 8 common seeds" in pair["reason"]


def test_clear_difference_with_enough_seeds_is_significant_after_holm():
    rng = np.random.default_rng(3)
    methods = {
        "better": _method(list(rng.normal(95.0, 0.3, 10))),
        "worse": _method(list(rng.normal(93.0, 0.3, 10))),
        "also-worse": _method(list(rng.normal(93.0, 0.3, 10))),
    }
    stats = analyse(methods)
    pairwise = stats["pairwise"]
    assert pairwise["test"] == "wilcoxon-signed-rank" and pairwise["correction"] == "holm"
    assert pairwise["family_size"] == 3
    for other in ("worse", "also-worse"):
        pair = _pair(pairwise, "better", other)
        assert pair["a"] == "better" and pair["n_pairs"] == 10
        assert pair["p_value"] == pytest.approx(2 / 2**10)  # all 10 differences positive
        assert pair["p_holm"] < 0.05 and pair["significant"]
        assert pair["verdict"] == f"better > {other}"
        assert pair["rank_biserial"] == 1.0
        low, high = pair["difference_ci95"]
        assert 0 < low < pair["mean_difference"] < high
    assert not _pair(pairwise, "worse", "also-worse")["significant"]
    json.dumps(stats, allow_nan=False)


def test_many_seeds_with_tied_differences_use_a_permutation_p_value():
    differences = [1, 1, 2, 2, 3, 3, 1, 2, 3, 1, 2, 3, -1, -2, 1, 2]  # 16, tied |d|
    first = {s: 94.0 for s in range(16)}
    second = {s: 94.0 - d for s, d in enumerate(differences)}
    pair = paired_comparison(first, second)
    assert pair["n_nonzero"] == 16 and 0 < pair["p_value"] < 0.01
    assert pair == paired_comparison(first, second)  # seeded: reproducible


def test_unpaired_seeds_give_no_claim():
    methods = {"a": _method([93.0, 93.5, 94.0], [0, 1, 2]), "b": _method([92, 92.4, 91], [3, 4, 5])}
    stats = analyse(methods)
    pair = _pair(stats["pairwise"], "a", "b")
    assert pair["n_pairs"] == 0 and pair["mean_difference"] is None
    assert pair["verdict"] == "no claim: no common seeds"
    assert stats["ranks"]["verdict"] == "no claim: no seed common to all methods"


def test_too_few_seeds_give_no_claim_with_the_reason():
    pair = paired_comparison({s: 94.0 + 0.1 * s for s in range(5)}, {s: 93.0 for s in range(5)})
    assert pair["p_value"] is None
    assert (
        "5 nonzero paired differences" in pair["reason"] and f"needs {MIN_PAIRS}" in pair["reason"]
    )


def test_failed_seeds_and_empty_methods_are_left_out():
    methods = {
        "a": _method([94.0, None, 94.2]),
        "b": _method([93.0, 93.5, None]),
        "empty": {"family": "standalone", "method": "x", "seeds": []},
    }
    assert seed_scores(methods) == {"a": {0: 94.0, 2: 94.2}, "b": {0: 93.0, 1: 93.5}}
    stats = analyse(methods)
    assert set(stats["methods"]) == {"a", "b"}
    assert [p["seeds"] for p in stats["pairwise"]["pairs"]] == [[0]]


def test_single_seed_method_has_no_comparison():
    methods = {"a": {"seeds": [{"seed": 0, "ground_truth": {"c": 1.0}}]}, "b": {"seeds": []}}
    stats = analyse(methods)
    assert stats["pairwise"]["pairs"] == []
    assert stats["methods"]["a"] == {"n": 1, "mean": 1.0, "ci95": None}
    assert stats["ranks"]["verdict"].startswith("no claim")


def test_mean_ranks_and_friedman_by_hand():
    # seed:   0  1  2  3         ranks per seed (1 = best, ties averaged)
    scores = {
        "a": {0: 3, 1: 3, 2: 2, 3: 3},  # 1, 1, 1.5, 1  -> 1.125
        "b": {0: 2, 1: 1, 2: 2, 3: 2},  # 2, 3, 1.5, 2  -> 2.125
        "c": {0: 1, 1: 2, 2: 1, 3: 1},  # 3, 2, 3,   3  -> 2.75
    }
    ranks = rank_analysis(scores)
    assert ranks["seeds"] == [0, 1, 2, 3]
    assert ranks["mean_rank"] == {"a": 1.125, "b": 2.125, "c": 2.75}
    # Friedman: 12 / (n k (k+1)) * sum(R^2) - 3 n (k+1) = 0.25 * 213.5 - 48 = 5.375, divided
    # by the tie correction 1 - sum(t^3 - t) / (n (k^3 - k)) = 1 - 6 / 96; chi2 with k - 1 = 2 df.
    statistic = 5.375 / (1 - 6 / 96)
    assert ranks["friedman"]["statistic"] == pytest.approx(statistic)
    assert ranks["friedman"]["p_value"] == pytest.approx(math.exp(-statistic / 2))  # 0.0569
    assert ranks["verdict"] == "no significant difference in ranks"

    # 3 seeds ranking 3 methods alike: Q = 12 / 36 * (9 + 36 + 81) - 36 = 6, p = exp(-3) < 0.05
    concordant = {"a": {0: 3, 1: 5, 2: 9}, "b": {0: 2, 1: 4, 2: 8}, "c": {0: 1, 1: 3, 2: 7}}
    ranks = rank_analysis(concordant)
    assert ranks["mean_rank"] == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert ranks["friedman"]["statistic"] == pytest.approx(6.0)
    assert ranks["friedman"]["p_value"] == pytest.approx(math.exp(-3))
    assert ranks["verdict"] == "the methods' ranks differ"


def test_friedman_no_claim_cases():
    two_methods = rank_analysis({"a": {0: 2, 1: 2, 2: 2}, "b": {0: 1, 1: 1, 2: 1}})
    assert two_methods["mean_rank"] == {"a": 1.0, "b": 2.0}
    assert two_methods["friedman"] is None and two_methods["verdict"].startswith("no claim")
    two_seeds = rank_analysis({"a": {0: 3, 1: 3}, "b": {0: 2, 1: 2}, "c": {0: 1, 1: 1}})
    assert two_seeds["friedman"] is None and "have 3 and 2" in two_seeds["verdict"]
    ties = rank_analysis({m: {0: 1.0, 1: 2.0, 2: 3.0} for m in "abc"})
    assert ties["mean_rank"] == {"a": 2.0, "b": 2.0, "c": 2.0}
    assert ties["verdict"] == "no claim: all methods tie on every common seed"


def test_holm_by_hand():
    adjusted, reject = holm([0.01, 0.04, 0.03])
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])
    assert reject == [True, False, False]
    assert holm([]) == ([], [])


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(11)
    cases = [[0.2], [0.01, 0.01, 0.04, 0.5], [0.049, 0.001, 0.9, 0.0125, 0.02]]
    cases += [list(rng.uniform(0, 0.08, size)) for size in (3, 10, 45)]
    for p_values in cases:
        reject, adjusted, _, _ = multitest.multipletests(p_values, alpha=0.05, method="holm")
        ours, our_reject = holm(p_values)
        assert ours == pytest.approx(list(adjusted), abs=1e-12)
        assert our_reject == list(reject)


def test_seeds_needed_for_a_claim():
    assert MIN_PAIRS == min_seeds_for_claim(1) == 6  # 2 / 2**6 = 0.031 <= 0.05 < 2 / 2**5
    assert min_seeds_for_claim(3) == 7  # 3 * 2 / 2**7 = 0.047
    assert min_seeds_for_claim(45) == 11  # 10 methods: 45 pairs


def test_effect_size_and_bootstrap_by_hand():
    assert rank_biserial([1.0, -2.0, 3.0, 0.0]) == pytest.approx((1 + 3 - 2) / 6)
    assert rank_biserial([0.0, 0.0]) is None
    assert bootstrap_mean_ci([93.0]) is None and bootstrap_mean_ci([93.0, 93.0]) is None
    values = [94.0, 94.2, 94.1]
    ci = bootstrap_mean_ci(values)
    assert ci == bootstrap_mean_ci(values)  # seeded: reproducible
    assert ci == pytest.approx([94.0, 94.2])  # with 3 seeds: their range


def test_markdown_shows_no_claim_and_the_pairwise_table():
    from gaea_tune.report import csv_table, markdown_table

    rng = np.random.default_rng(5)
    methods = {
        "good": _method(list(rng.normal(95.0, 0.3, 8))),
        "bad": _method(list(rng.normal(93.0, 0.3, 8))),
        "few": _method([94.0, 94.5, 93.5]),
        "const": _method([93.0] * 8),
    }
    for entry in methods.values():
        values = [s["ground_truth"][COLUMN] for s in entry["seeds"]]
        entry["mean"], entry["std"] = float(np.mean(values)), float(np.std(values, ddof=1))
    summary = {
        "mode": "tabular",
        "device_kind": "cpu",
        "ground_truth_column": COLUMN,
        "methods": methods,
        "statistics": analyse(methods),
        "failed_methods": [],
    }
    table = markdown_table(summary)
    lines = table.splitlines()
    assert (
        "| A | B | common seeds | difference A - B [95% CI] | r | p (raw) | p (Holm) | verdict |"
        in lines
    )
    row = {tuple(line.split(" | ")[:2]): line for line in lines if line.startswith("| ")}
    assert row[("| good", "few")].endswith("| - | - | no claim: 3 nonzero paired differences; "
                                          "the Wilcoxon signed-rank test needs 6 to reach p < "
                                          "0.05 (smallest attainable p here: 0.25) |")  # fmt: skip
    assert "| good > bad |" in row[("| good", "bad")]
    assert "| good > const |" in row[("| good", "const")]
    assert "no claim (no spread)" in row[("| 4", "const")]  # per-method row: no CI
    ci = summary["statistics"]["methods"]["good"]["ci95"]
    assert f"| [{ci[0]:.2f}, {ci[1]:.2f}] |" in row[("| 1", "good")]
    assert "Mean rank over the 3 seed(s) common to all methods" in table
    assert "Friedman test: chi2 = " in table
    assert "mean_ci95_low" in csv_table(summary).splitlines()[0]
