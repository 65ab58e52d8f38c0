"""Seed-level statistics of a comparison: what the seeds support, and nothing more.

Plain numpy/scipy; no MLflow. The input is the ``methods`` part of
``summary.json`` (one entry per method, one record per seed); each seed's score is its primary
ground-truth value (the first column of its ``ground_truth``). Failed seeds without a score are
left out.

What is computed, and why:

* **Pairing.** The same seed gives every method the same data split and initial draws, so two
  methods are compared on the seeds they share, through their per-seed differences. Methods
  with no seed in common are not compared.
* **Test: Wilcoxon signed-rank** (Wilcoxon 1945), two-sided, on the nonzero paired differences
  (seeds where both methods score the same carry no sign and are dropped: Wilcoxon's own
  convention), with scipy's exact null distribution (exhaustive sign flips when the absolute
  differences tie). It is chosen over the paired t-test because it assumes no normal
  distribution of the differences, which a handful of seeds cannot check and which NAS outcomes
  often break (a search that collapses on one seed gives one far-off difference, which
  dominates a t statistic but is only one rank here). This is the test Demsar (2006, JMLR 7)
  recommends for two learners over paired blocks, and Benavoli, Corani & Mangili (2016, JMLR 17)
  recommend it, Holm-corrected, for pairwise comparisons of several ones. Its price is that it
  cannot reject anything with few seeds: with n nonzero differences the smallest attainable
  two-sided p is 2 / 2**n, so it needs n >= 6 to reach p < 0.05 (and more under a multiplicity
  correction: see ``min_seeds_for_claim``). A paired t-test would give p-values from n = 2 on,
  but at 3 seeds they rest on an unverifiable normality assumption and have very little power.
* **No claim.** A pair gets no p-value, and the verdict "no claim" with its reason, when the
  methods share no seed, when their paired difference is the same on every seed (zero
  variance: identical results, or the seed does not move the outcome, so the seeds are not
  independent replicates), or when fewer than 6 paired differences are nonzero.
* **All pairwise comparisons, Holm-corrected.** Every pair of methods is compared (there is no
  pre-declared control method, and testing "the best" picked from the same data against the
  rest would condition on the outcome). The family-wise error over the pairs that get a p-value
  is held at ``ALPHA`` with Holm's step-down (Holm 1979, Scand. J. Statist. 6).
* **Effect sizes.** Per pair: the mean paired difference with a 95% bootstrap confidence
  interval, and the matched-pairs rank-biserial correlation r = (R+ - R-) / (R+ + R-) over the
  ranked nonzero differences (Kerby 2014, Compr. Psychol. 3), the effect size that goes with the
  signed-rank test (+1: the first method wins on every seed, -1: loses on every seed). Per
  method: a 95% bootstrap confidence interval of its mean over its seeds.
* **Bootstrap.** ``scipy.stats.bootstrap``, percentile method, 9999 resamples, a fixed seed
  per interval (the same data always give the same interval). The percentile interval stays
  inside the observed range; BCa's acceleration would be estimated from a jackknife over the
  same few seeds. With fewer than about 10 seeds any bootstrap interval is too narrow (with 3
  it is the range of the 3 values); it describes the seeds, it is not a test.
* **Ranks.** Over the seeds that every scored method has, each seed ranks the methods (1 = the
  highest score, ties averaged), and each method gets its mean rank. A Friedman test (Friedman
  1937; scipy's chi-square approximation) of "all methods rank alike" runs with 3+ methods and
  3+ such seeds; otherwise, or when every seed ties all methods, "no claim". It is an omnibus
  test; which pairs differ is the pairwise tests' answer (not a mean-rank post-hoc test, after
  Benavoli et al. 2016).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

ALPHA = 0.05
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
TEST = "wilcoxon-signed-rank"
CORRECTION = "holm"
_DECIMALS = 10  # paired differences are rounded so that float noise does not break ties


def min_seeds_for_claim(pairs: int = 1, alpha: float = ALPHA) -> int:
    """Smallest number of nonzero paired differences with which a Wilcoxon signed-rank test,
    Holm-corrected over ``pairs`` tests, can reject at all: 2 / 2**n * pairs <= alpha."""
    return max(1, math.ceil(math.log2(2.0 * max(pairs, 1) / alpha)))


MIN_PAIRS = min_seeds_for_claim(1)  # 6 at alpha 0.05


def primary_value(seed: Mapping[str, Any]) -> float | None:
    """A seed's score: its first ground-truth value, or None when it has none."""
    truth = seed.get("ground_truth")
    return float(next(iter(truth.values()))) if truth else None


def seed_scores(methods: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[int, float]]:
    """``{label: {seed: score}}`` of every method with at least one scored seed."""
    scores: dict[str, dict[int, float]] = {}
    for label, entry in methods.items():
        values = {}
        for seed in entry.get("seeds", []):
            value = primary_value(seed)
            if value is not None and math.isfinite(value):
                values[int(seed["seed"])] = value
        if values:
            scores[label] = values
    return scores


def bootstrap_mean_ci(values: Any, confidence: float = CONFIDENCE) -> list[float] | None:
    """Percentile bootstrap interval of the mean (seeded); None with under 2 values or none
    distinct (a constant sample has no sampling spread to show)."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size < 2 or np.ptp(data) == 0:
        return None
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    low, high = result.confidence_interval
    return [float(low), float(high)]


def holm(p_values: list[float], alpha: float = ALPHA) -> tuple[list[float], list[bool]]:
    """Holm's step-down adjusted p-values and rejections (Holm 1979, Scand. J. Statist. 6, 65-70).

    The i-th smallest of m p-values is multiplied by m - i + 1 (i from 1), made non-decreasing
    in that order and capped at 1; a hypothesis is rejected when its adjusted p is <= alpha.
    (The same numbers as ``statsmodels.stats.multitest.multipletests(method="holm")``, checked
    in the tests, without its full garbage collection on every call.)"""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    steps = np.arange(p.size, 0, -1)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * steps))
    return [float(v) for v in adjusted], [bool(v <= alpha) for v in adjusted]


def rank_biserial(differences: Any) -> float | None:
    """Matched-pairs rank-biserial correlation of the nonzero paired differences (Kerby 2014)."""
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return None
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def paired_comparison(
    first: Mapping[int, float],
    second: Mapping[int, float],
    intervals: bool = True,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Wilcoxon signed-rank test of ``first - second`` over their common seeds, before any
    multiplicity correction: ``p_value`` is None and ``reason`` says why when no claim is made."""
    from scipy import stats

    needed = min_seeds_for_claim(1, alpha)

    seeds = sorted(set(first) & set(second))
    d = np.round(np.array([first[s] - second[s] for s in seeds], dtype=float), _DECIMALS)
    nonzero = d[d != 0]
    result: dict[str, Any] = {
        "seeds": seeds,
        "n_pairs": len(seeds),
        "n_nonzero": int(nonzero.size),
        "mean_difference": float(d.mean()) if d.size else None,
        "difference_ci95": bootstrap_mean_ci(d) if intervals else None,
        "rank_biserial": rank_biserial(d),
        "statistic": None,
        "p_value": None,
        "reason": None,
    }
    if not seeds:
        result["reason"] = "no common seeds"
    elif nonzero.size == 0:
        plural = "s" if len(seeds) != 1 else ""
        result["reason"] = f"identical results on the {len(seeds)} common seed{plural}"
    elif len(seeds) > 1 and np.ptp(d) == 0:
        result["reason"] = (
            f"the paired difference is {d[0]:+.4g} on each of the {len(seeds)} common seeds "
            "(zero variance: the seeds are not independent replicates)"
        )
    elif nonzero.size < needed:
        result["reason"] = (
            f"{nonzero.size} nonzero paired difference{'s' if nonzero.size != 1 else ''}; the "
            f"Wilcoxon signed-rank test needs {needed} to reach p < {alpha:g} (smallest "
            f"attainable p here: {2.0 / 2**nonzero.size:.3g})"
        )
    else:
        method: Any = "auto"  # exact; exhaustive sign flips with tied |d| up to 13 pairs
        if nonzero.size > 13 and np.unique(np.abs(nonzero)).size < nonzero.size:
            method = stats.PermutationMethod(
                n_resamples=BOOTSTRAP_RESAMPLES, rng=np.random.default_rng(BOOTSTRAP_SEED)
            )
        test = stats.wilcoxon(nonzero, method=method)
        result["statistic"] = float(test.statistic)
        result["p_value"] = float(test.pvalue)
    return result


def pairwise_comparisons(
    scores: Mapping[str, Mapping[int, float]], alpha: float = ALPHA, intervals: bool = True
) -> dict[str, Any]:
    """Every pair of methods (the one with the higher mean first), Holm-corrected over the
    pairs that get a p-value; each pair's ``verdict`` is what the report may claim."""
    order = sorted(scores, key=lambda label: (-float(np.mean(list(scores[label].values()))), label))
    pairs = []
    for i, first in enumerate(order):
        for second in order[i + 1 :]:
            pair = {"a": first, "b": second}
            pair.update(paired_comparison(scores[first], scores[second], intervals, alpha))
            pairs.append(pair)
    tested = [pair for pair in pairs if pair["p_value"] is not None]
    adjusted, reject = holm([pair["p_value"] for pair in tested], alpha)
    for pair, p_holm, significant in zip(tested, adjusted, reject):
        pair["p_holm"] = p_holm
        pair["significant"] = significant
        if significant:
            winner, loser = (
                (pair["a"], pair["b"]) if pair["rank_biserial"] > 0 else (pair["b"], pair["a"])
            )
            pair["verdict"] = f"{winner} > {loser}"
        else:
            pair["verdict"] = "no significant difference"
    for pair in pairs:
        if pair["p_value"] is None:
            pair.update(p_holm=None, significant=False, verdict=f"no claim: {pair['reason']}")
    return {
        "test": TEST,
        "correction": CORRECTION,
        "alpha": alpha,
        "family_size": len(tested),
        "min_common_seeds": min_seeds_for_claim(1, alpha),
        "min_common_seeds_all_pairs": min_seeds_for_claim(len(pairs), alpha) if pairs else None,
        "pairs": pairs,
    }


def rank_analysis(
    scores: Mapping[str, Mapping[int, float]], alpha: float = ALPHA
) -> dict[str, Any]:
    """Mean rank of each method over the seeds all of them share (1 = best, ties averaged), and a
    Friedman test of equal ranks with 3+ methods and 3+ such seeds."""
    from scipy import stats

    labels = sorted(scores)
    seeds = sorted(set.intersection(*(set(scores[label]) for label in labels))) if labels else []
    result: dict[str, Any] = {"seeds": seeds, "mean_rank": {}, "friedman": None, "verdict": None}
    if len(labels) < 2:
        result["verdict"] = "no claim: fewer than 2 methods with a score"
        return result
    if not seeds:
        result["verdict"] = "no claim: no seed common to all methods"
        return result
    table = np.array([[scores[label][seed] for label in labels] for seed in seeds])
    ranks = np.vstack([stats.rankdata(-row, method="average") for row in table])
    result["mean_rank"] = {label: float(r) for label, r in zip(labels, ranks.mean(axis=0))}
    if len(labels) < 3 or len(seeds) < 3:
        result["verdict"] = (
            f"no claim: the Friedman test needs 3+ methods and 3+ common seeds "
            f"(have {len(labels)} and {len(seeds)})"
        )
    elif all(np.ptp(row) == 0 for row in table):
        result["verdict"] = "no claim: all methods tie on every common seed"
    else:
        test = stats.friedmanchisquare(*table.T)
        p_value = float(test.pvalue)
        result["friedman"] = {"statistic": float(test.statistic), "p_value": p_value}
        result["verdict"] = (
            "the methods' ranks differ"
            if p_value <= alpha
            else "no significant difference in ranks"
        )
    return result


def analyse(methods: Mapping[str, Mapping[str, Any]], alpha: float = ALPHA) -> dict[str, Any]:
    """The ``statistics`` section of ``summary.json``."""
    scores = seed_scores(methods)
    return {
        "score": "primary ground-truth value per seed",
        "alpha": alpha,
        "methods": {
            label: {
                "n": len(values),
                "mean": float(np.mean(list(values.values()))),
                "ci95": bootstrap_mean_ci(list(values.values())),
            }
            for label, values in scores.items()
        },
        "pairwise": pairwise_comparisons(scores, alpha),
        "ranks": rank_analysis(scores, alpha),
    }


__all__ = [
    "ALPHA",
    "MIN_PAIRS",
    "analyse",
    "bootstrap_mean_ci",
    "holm",
    "min_seeds_for_claim",
    "paired_comparison",
    "pairwise_comparisons",
    "primary_value",
    "rank_analysis",
    "rank_biserial",
    "seed_scores",
]
