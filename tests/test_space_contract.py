"""The contract every search space opts into (one SearchSpace protocol, the same signatures).

A new space is added to ``SPACES`` below (and to ``search_spaces.get_space``) and must pass every
test here unchanged.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from search_spaces import SPACE_NAMES, SearchSpace, get_space
from search_spaces._mixed import MODES

SPACES = list(SPACE_NAMES)
PROTOCOL = [
    name for name, member in vars(SearchSpace).items()
    if callable(member) and not name.startswith("_")
]  # fmt: skip


@pytest.fixture(params=SPACES)
def space(request):
    return get_space(request.param)


def test_every_protocol_method_exists_with_the_protocols_signature(space):
    for name in PROTOCOL:
        mine = inspect.signature(getattr(type(space), name)).parameters
        theirs = list(inspect.signature(getattr(SearchSpace, name)).parameters)
        assert list(mine)[: len(theirs)] == theirs, name  # the protocol's, in order
        extra = list(mine)[len(theirs) :]  # a space may add options, with defaults
        assert all(mine[p].default is not inspect.Parameter.empty for p in extra), name


@pytest.mark.parametrize("exclude_none", [False, True])
def test_sample_mutate_parse_and_parameter_encoding_round_trip(space, exclude_none):
    rng = np.random.default_rng(0)
    names = {name for name, _ in space.param_spec(exclude_none)}
    for _ in range(50):
        genotype = space.sample(rng, exclude_none=exclude_none)
        assert space.parse(str(genotype)) == genotype
        params = space.encode_params(genotype)
        assert set(params) == names
        decoded = space.decode_params(params)
        # the same cell (DARTS: a node's two inputs come back in sorted order)
        assert space.encode_params(decoded) == params
        assert space.parse(str(decoded)) == decoded
        for name, choices in space.param_spec(exclude_none):
            assert params[name] in choices, (name, params[name])
        child = space.mutate(genotype, rng, exclude_none=exclude_none)
        assert child != genotype and space.parse(str(child)) == child
        if exclude_none:
            assert "none" not in str(child)


@pytest.mark.parametrize("exclude_none", [False, True])
def test_discretize_gives_a_valid_genotype(space, exclude_none):
    ops = space.candidate_ops(exclude_none)
    shapes = space.arch_shapes(exclude_none)
    assert all(shape[1] == len(ops) for shape in shapes.values())
    weights = {cell: torch.rand(shape) for cell, shape in shapes.items()}
    genotype = space.discretize(weights, ops)
    assert space.parse(str(genotype)) == genotype
    groups = space.edge_groups()
    for cell, (edges, _) in shapes.items():
        assert sorted(e for group in groups[cell] for e in group) == list(range(edges))


@pytest.mark.parametrize("mode", MODES)
def test_supernet_forward_and_backward_in_every_mode(space, mode):
    torch.manual_seed(0)
    partial_k = 2 if mode == "partial" else 1
    net = space.build_supernet(C=4, N=1, num_classes=3, exclude_none=True, partial_k=partial_k)
    shapes = space.arch_shapes(True)
    weights = {c: torch.softmax(torch.randn(s), dim=1).requires_grad_() for c, s in shapes.items()}
    edges = None
    if mode == "partial":
        edges = {c: torch.rand(s[0]).requires_grad_() for c, s in shapes.items()}
    logits = net(torch.randn(2, 3, 16, 16), weights, mode=mode, edge_weights=edges)
    assert logits.shape == (2, 3)
    logits.square().sum().backward()
    moved = any(w.grad is not None and w.grad.abs().sum() > 0 for w in weights.values())
    assert moved is (mode != "single")  # single (RS-WS) runs one op, unweighted
    assert any(p.grad is not None for p in net.parameters())


def test_standalone_network_of_a_sampled_genotype(space):
    genotype = space.sample(np.random.default_rng(1))
    net = space.build_network(genotype, 4, 2, 5)
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 5)
    out.sum().backward()
