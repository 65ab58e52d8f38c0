"""REA as NAS-Bench-201's R_EA.py runs it: tournaments with replacement, node-then-input mutation."""

from __future__ import annotations

from collections import Counter
from itertools import count

import numpy as np
import pytest

from gaea_tune.baselines import REASearcher, make_searcher
from gaea_tune.baselines._options import validate_tabular
from search_spaces.darts import DartsSpace
from search_spaces.nb201 import EDGES, OPS, NB201Space

BEST_CIFAR10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


class TokenSpace:
    """A stand-in space: genotypes are tokens, a child remembers its parent."""

    name = "tokens"

    def __init__(self) -> None:
        self._ids = count()

    def sample(self, rng: np.random.Generator) -> str:
        return f"g{next(self._ids)}"

    def mutate(self, genotype: str, rng: np.random.Generator) -> tuple[str, str]:
        return ("child", genotype)

    def parse(self, text: str) -> str:
        return text


def _filled(signals: list[float], **options) -> REASearcher:
    searcher = REASearcher(
        TokenSpace(), seed=0, population_size=len(signals), sample_size=3, **options
    )
    for signal in signals:
        searcher.tell(searcher.ask(), signal)
    return searcher


def test_rea_defaults_to_tournaments_with_replacement():
    assert REASearcher(NB201Space(), seed=0).tournament_replacement is True
    searcher = _filled([1.0, 3.0, 2.0])
    draws = [searcher.tournament(3) for _ in range(3000)]
    repeated = np.mean([len(set(d.tolist())) < 3 for d in draws])
    # Three independent draws from three members are all distinct with probability 6/27.
    assert repeated == pytest.approx(1 - 6 / 27, abs=0.03)
    members = Counter(int(i) for d in draws for i in d)
    assert all(abs(members[i] / 9000 - 1 / 3) < 0.02 for i in range(3))


def test_without_replacement_stays_available_as_an_option():
    searcher = _filled([1.0, 3.0, 2.0], tournament_replacement=False)
    assert all(sorted(searcher.tournament(3).tolist()) == [0, 1, 2] for _ in range(200))
    assert validate_tabular("rea", "rea", {"tournament_replacement": False}) == {
        "tournament_replacement": False
    }
    with pytest.raises(ValueError, match="tournament_replacement: expected true or false"):
        make_searcher("rea", NB201Space(), 0, tournament_replacement="no")


def test_parent_is_the_best_drawn_member():
    signals = [1.0, 3.0, 2.0]
    searcher = _filled(signals)
    population = [g for g, _ in searcher.population]
    drawn_log: list[np.ndarray] = []
    draw = searcher.tournament

    def spy(size: int) -> np.ndarray:
        drawn_log.append(draw(size))
        return drawn_log[-1]

    searcher.tournament = spy
    parents = Counter()
    for _ in range(5400):  # asks only: the population stays as it is
        child = searcher.ask().genotype
        drawn = drawn_log[-1].tolist()
        best = max(drawn, key=lambda i: signals[i])
        assert child == ("child", population[best])
        parents[signals[best]] += 1
    # With replacement the worst member wins when it is drawn 3 times (1/27), the middle one when
    # the best is never drawn and the middle one is (7/27), the best otherwise (19/27).
    assert parents[1.0] / 5400 == pytest.approx(1 / 27, abs=0.01)
    assert parents[2.0] / 5400 == pytest.approx(7 / 27, abs=0.02)
    assert parents[3.0] / 5400 == pytest.approx(19 / 27, abs=0.02)


def test_rea_population_fills_randomly_then_ages():
    searcher = REASearcher(TokenSpace(), seed=1, population_size=3, sample_size=2)
    first = [searcher.ask() for _ in range(3)]
    assert [p.genotype for p in first] == ["g0", "g1", "g2"]  # random genotypes until full
    for proposal, signal in zip(first, (5.0, 1.0, 2.0)):
        searcher.tell(proposal, signal)
    child = searcher.ask()
    assert child.genotype[0] == "child"
    searcher.tell(child, 0.0)
    assert [g for g, _ in searcher.population] == ["g1", "g2", child.genotype]  # oldest left


def _edge_and_ops(parent, child) -> tuple[int, str, str]:
    changed = [e for e, (a, b) in enumerate(zip(parent.ops, child.ops)) if a != b]
    assert len(changed) == 1
    edge = changed[0]
    return edge, parent.ops[edge], child.ops[edge]


@pytest.mark.parametrize("exclude_none", [False, True])
def test_nb201_mutation_picks_a_node_then_one_of_its_inputs(exclude_none):
    space = NB201Space()
    rng = np.random.default_rng(0)
    parent = space.parse(BEST_CIFAR10)
    n = 18_000
    edges, new_ops = Counter(), Counter()
    for _ in range(n):
        edge, old, new = _edge_and_ops(parent, space.mutate(parent, rng, exclude_none=exclude_none))
        assert new != old
        edges[EDGES[edge]] += 1
        new_ops[(old, new)] += 1
    # Node uniform over 1..3, then one of its inputs uniformly (R_EA.py's mutate_arch_func).
    expected = {(t, s): 1 / 3 / t for t, s in EDGES}
    for edge, p in expected.items():
        assert edges[edge] / n == pytest.approx(p, abs=0.015), (edge, edges[edge] / n)
    # The new op is uniform over the candidates other than the current one.
    candidates = [op for op in OPS if not (exclude_none and op == "none")]
    for old in set(parent.ops):
        total = sum(c for (o, _), c in new_ops.items() if o == old)
        others = [op for op in candidates if op != old]
        assert {new for (o, new) in new_ops if o == old} == set(others)
        for new in others:
            assert new_ops[(old, new)] / total == pytest.approx(1 / len(others), abs=0.03)


def test_darts_mutation_picks_a_cell_node_input_then_op_or_input():
    space = DartsSpace()
    rng = np.random.default_rng(3)
    parent = space.sample(rng)
    n = 8000
    cells, nodes, kinds = Counter(), Counter(), Counter()
    for _ in range(n):
        child = space.mutate(parent, rng)
        diffs = [
            (cell, position)
            for cell in ("normal", "reduce")
            for position, (a, b) in enumerate(zip(parent.cell(cell), child.cell(cell)))
            if a != b
        ]
        assert len(diffs) == 1
        cell, position = diffs[0]
        (op_a, src_a), (op_b, src_b) = parent.cell(cell)[position], child.cell(cell)[position]
        node = position // 2
        cells[cell] += 1
        nodes[node] += 1
        kind = "op" if op_a != op_b else "input"
        assert (op_a != op_b) != (src_a != src_b)
        kinds[(node, kind)] += 1
    assert cells["normal"] / n == pytest.approx(0.5, abs=0.02)
    for node in range(4):
        assert nodes[node] / n == pytest.approx(0.25, abs=0.02)
    assert kinds[(0, "input")] == 0  # node 0's two inputs are both taken
    for node in (1, 2, 3):
        share = kinds[(node, "input")] / nodes[node]
        assert share == pytest.approx(0.5, abs=0.05)
