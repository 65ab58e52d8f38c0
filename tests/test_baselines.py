"""Ask/tell searchers: REA ageing and mutation, seeds, save/restore, failed evaluations."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from gaea_tune.baselines import (
    SEARCHERS,
    REASearcher,
    decode,
    encode,
    hyperband_budgets,
    make_searcher,
    param_spec,
)
from gaea_tune.nb201_table import load_table
from search_spaces.nb201 import NB201Space

# Small enough that BOHB/TPE build their models within the few steps a unit test runs.
FAST_OPTIONS = {
    "random": {},
    "rea": {"population_size": 5, "sample_size": 2},
    "bohb": {"min_fidelity": 1, "max_fidelity": 9, "eta": 3.0, "min_points_in_model": 7},
    "tpe": {"n_startup_trials": 4},
}


def table_signal(genotype, fidelity) -> float:
    column = "cifar10_valid_val_12" if (fidelity or 12) < 100 else "cifar10_valid_val_200"
    return load_table().lookup(genotype, column)


def run(searcher, steps: int, signal=table_signal) -> list[tuple[str, int | None]]:
    asked = []
    for _ in range(steps):
        proposal = searcher.ask()
        asked.append((str(proposal.genotype), proposal.fidelity))
        searcher.tell(proposal, signal(proposal.genotype, proposal.fidelity))
    return asked


def hamming(a, b) -> int:
    return sum(x != y for x, y in zip(a.ops, b.ops))


def test_rea_ages_out_the_oldest_member():
    searcher = REASearcher(NB201Space(), seed=0, population_size=3, sample_size=2)
    told = []
    for step in range(7):
        proposal = searcher.ask()
        # The first member is by far the best: a non-ageing evolution would keep it forever.
        searcher.tell(proposal, 99.0 if step == 0 else float(step))
        told.append(proposal.genotype)
        assert [g for g, _ in searcher.population] == told[-3:]
    assert all(signal < 99.0 for _, signal in searcher.population)


def test_rea_mutates_the_tournament_winner_on_exactly_one_edge():
    space = NB201Space()
    for seed in range(5):
        # S = P drawn without replacement: the tournament sees the whole population, so the
        # parent is its best (the default, with replacement, is covered in test_rea_faithful).
        searcher = REASearcher(
            space, seed=seed, population_size=4, sample_size=4, tournament_replacement=False
        )
        run(searcher, 4)
        for _ in range(10):
            parent = max(searcher.population, key=lambda member: member[1])[0]
            child = searcher.ask()
            assert hamming(child.genotype, parent) == 1
            searcher.tell(child, table_signal(child.genotype, None))


def test_space_mutation_changes_exactly_one_edge():
    space = NB201Space()
    rng = np.random.default_rng(1)
    for _ in range(200):
        genotype = space.sample(rng)
        assert hamming(space.mutate(genotype, rng), genotype) == 1


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_searcher_is_reproducible_from_its_seed(name):
    space = NB201Space()
    first = run(make_searcher(name, space, 7, **FAST_OPTIONS[name]), 20)
    again = run(make_searcher(name, space, 7, **FAST_OPTIONS[name]), 20)
    other = run(make_searcher(name, space, 8, **FAST_OPTIONS[name]), 20)
    assert first == again
    assert first != other


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_searcher_survives_save_and_restore(name):
    space = NB201Space()
    reference = make_searcher(name, space, 3, **FAST_OPTIONS[name])
    run(reference, 12)
    pending = reference.ask()  # an evaluation in flight when the state is saved
    state = pickle.loads(pickle.dumps(reference.state_dict()))

    restored = make_searcher(name, space, 99, **FAST_OPTIONS[name])
    restored.load_state_dict(state)
    assert [p.id for p in restored.pending] == [pending.id]
    for searcher in (reference, restored):
        searcher.tell(searcher.pending[0], table_signal(pending.genotype, pending.fidelity))
    assert run(restored, 12) == run(reference, 12)
    assert restored.incumbent == reference.incumbent


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_failed_evaluations_do_not_crash_a_searcher(name):
    searcher = make_searcher(name, NB201Space(), 0, **FAST_OPTIONS[name])
    bad = [math.nan, math.inf, -math.inf, None, "oops"]

    def flaky(genotype, fidelity):
        step = len(searcher.history)
        return bad[step % len(bad)] if step % 3 == 0 else table_signal(genotype, fidelity)

    run(searcher, 30, flaky)
    assert len(searcher.history) == 30
    failed = [o for o in searcher.history if math.isnan(o.signal)]
    assert len(failed) == 10
    genotype, signal = searcher.incumbent
    assert math.isfinite(signal)
    finite = [o for o in searcher.history if not math.isnan(o.signal)]
    top = max(o.fidelity or 0 for o in finite)
    assert signal == max(o.signal for o in finite if (o.fidelity or 0) == top)


def test_all_failed_results_leave_no_incumbent():
    searcher = make_searcher("rea", NB201Space(), 0, population_size=3, sample_size=2)
    run(searcher, 8, lambda g, f: math.nan)
    assert searcher.incumbent is None


def test_bohb_keeps_the_global_numpy_rng_untouched():
    np.random.seed(123)
    expected = np.random.random_sample(3)
    np.random.seed(123)
    run(make_searcher("bohb", NB201Space(), 0, **FAST_OPTIONS["bohb"]), 20)
    assert np.array_equal(np.random.random_sample(3), expected)


def test_bohb_runs_hyperband_brackets_and_promotes_the_best():
    searcher = make_searcher("bohb", NB201Space(), 0, **FAST_OPTIONS["bohb"])
    assert hyperband_budgets(1, 9, 3.0) == pytest.approx([1.0, 3.0, 9.0])
    asked = run(searcher, 13)  # bracket s=2: 9 at 1 epoch, 3 at 3 epochs, 1 at 9 epochs
    assert [f for _, f in asked] == [1] * 9 + [3] * 3 + [9]
    first = {g: table_signal(g, 12) for g, _ in asked[:9]}
    best_three = sorted(first, key=first.get, reverse=True)[:3]
    assert sorted(g for g, _ in asked[9:12]) == sorted(best_three)
    assert asked[12][0] == max(best_three, key=first.get)


def test_bohb_paper_style_evaluates_every_job_at_the_fixed_fidelity():
    searcher = make_searcher("bohb", NB201Space(), 0, eta=3.0, fixed_fidelity=12)
    assert searcher.budgets == pytest.approx([200 / 9, 200 / 3, 200])
    assert {f for _, f in run(searcher, 15)} == {12}


def test_params_round_trip_nb201():
    space = NB201Space()
    rng = np.random.default_rng(0)
    for _ in range(20):
        genotype = space.sample(rng)
        assert decode(space, encode(space, genotype)) == genotype
    assert len(param_spec(space)) == 6
    assert all(len(choices) == 4 for _, choices in param_spec(space, exclude_none=True))


def test_params_round_trip_darts():
    from search_spaces import get_space
    from search_spaces.darts._genotype import sample_genotype

    darts = get_space("darts")
    rng = np.random.default_rng(0)
    for _ in range(20):
        genotype = sample_genotype(rng)
        decoded = decode(darts, encode(darts, genotype))
        for cell in ("normal", "reduce"):
            for k in range(4):
                assert sorted(decoded.cell(cell)[2 * k : 2 * k + 2], key=lambda p: p[1]) == sorted(
                    genotype.cell(cell)[2 * k : 2 * k + 2], key=lambda p: p[1]
                )


def test_invalid_inputs_name_the_bad_value():
    space = NB201Space()
    with pytest.raises(ValueError, match="'annealing'.*allowed: random, rea, bohb, tpe"):
        make_searcher("annealing", space, 0)
    with pytest.raises(
        ValueError,
        match="sample_size: 5 is above population_size=3; allowed: sample_size <= population_size",
    ):
        make_searcher("rea", space, 0, population_size=3, sample_size=5)
    with pytest.raises(ValueError, match="unknown option.*'populaton_size'"):
        make_searcher("rea", space, 0, populaton_size=3)
    with pytest.raises(ValueError, match="eta must be > 1"):
        make_searcher("bohb", space, 0, eta=1.0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        make_searcher("random", space, "zero")
    searcher = make_searcher("random", space, 0)
    proposal = searcher.ask()
    searcher.tell(proposal, 1.0)
    with pytest.raises(ValueError, match="not pending"):
        searcher.tell(proposal, 1.0)
    with pytest.raises(ValueError, match="parameter 'edge_1_0' got 'conv'"):
        decode(space, {**encode(space, proposal.genotype), "edge_1_0": "conv"})
