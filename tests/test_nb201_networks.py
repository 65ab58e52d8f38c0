"""NAS-Bench-201 codec, space, standalone network and supernet."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from search_spaces.nb201 import (
    EDGES,
    NUM_CELLS,
    OPS,
    NB201Genotype,
    NB201Network,
    NB201Space,
    NB201Supernet,
    all_genotypes,
)
from search_spaces.nb201._networks import _InferCell, _SearchCell

TABLE = Path(__file__).resolve().parents[1] / "gaea_tune" / "data" / "nb201.csv.gz"
BEST_CIFAR10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
NO_NONE = OPS[1:]


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space()


def _table_archs() -> list[tuple[int, str]]:
    with gzip.open(TABLE, "rb") as fh:
        rows = csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8"))
        return [(int(row["index"]), row["arch"]) for row in rows]


def _uniform(k: int, requires_grad: bool = True) -> torch.Tensor:
    return torch.full((6, k), 1.0 / k, requires_grad=requires_grad)


# --- codec and space -------------------------------------------------------------------------


def test_codec_round_trip_matches_table_order() -> None:
    archs = _table_archs()
    assert len(archs) == NUM_CELLS
    genotypes = all_genotypes()
    for row, (index, arch) in enumerate(archs):
        assert index == row
        genotype = NB201Genotype.from_string(arch)
        assert str(genotype) == arch
        assert genotype.index == row
        assert genotypes[row] == genotype


@pytest.mark.parametrize(
    "bad",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|",  # two nodes only
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        "|conv_7x7~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
        "|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
        "nor_conv_3x3~0+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    ],
)
def test_parse_errors_name_the_bad_input(space: NB201Space, bad: str) -> None:
    with pytest.raises(ValueError) as info:
        space.parse(bad)
    message = str(info.value)
    assert bad in message or "conv_7x7" in message


def test_parse_returns_the_genotype(space: NB201Space) -> None:
    genotype = space.parse(BEST_CIFAR10)
    assert genotype.ops[:3] == ("nor_conv_3x3",) * 3
    assert str(genotype) == BEST_CIFAR10


@pytest.mark.parametrize("exclude_none", [False, True])
def test_mutate_changes_exactly_one_edge(space: NB201Space, exclude_none: bool) -> None:
    rng = np.random.default_rng(0)
    genotype = space.parse(BEST_CIFAR10)
    for _ in range(300):
        child = space.mutate(genotype, rng, exclude_none=exclude_none)
        assert sum(a != b for a, b in zip(child.ops, genotype.ops)) == 1
        if exclude_none:
            assert "none" not in child.ops
        genotype = child


def test_sample_exclude_none_never_yields_none(space: NB201Space) -> None:
    rng = np.random.default_rng(1)
    samples = [space.sample(rng, exclude_none=True) for _ in range(500)]
    assert all("none" not in g.ops for g in samples)
    assert {op for g in samples for op in g.ops} == set(NO_NONE)
    with_none = [space.sample(rng) for _ in range(200)]
    assert any("none" in g.ops for g in with_none)


def test_space_shapes_and_groups(space: NB201Space) -> None:
    assert space.name == "nb201"
    assert space.candidate_ops(exclude_none=True) == NO_NONE
    assert space.candidate_ops(exclude_none=False) == OPS
    assert space.arch_shapes(exclude_none=True) == {"cell": (6, 4)}
    assert space.arch_shapes(exclude_none=False) == {"cell": (6, 5)}
    groups = space.edge_groups()["cell"]
    assert groups == [[0], [1, 2], [3, 4, 5]]
    assert all(EDGES[e][0] == node for node, group in enumerate(groups, 1) for e in group)


def test_discretize_picks_argmax_per_edge(space: NB201Space) -> None:
    rng = np.random.default_rng(2)
    weights = torch.tensor(rng.random((6, 4)), dtype=torch.float32)
    genotype = space.discretize({"cell": weights}, NO_NONE)
    expected = tuple(NO_NONE[int(np.argmax(row))] for row in weights.numpy())
    assert genotype.ops == expected
    with pytest.raises(ValueError, match=r"\(6, 5\)"):
        space.discretize({"cell": weights}, OPS)


# --- standalone network ----------------------------------------------------------------------


def test_best_cifar10_cell_has_nb201_parameter_count() -> None:
    # NAS-Bench-201 counts every parameter (BN affine included): 1.073M for this cell.
    net = NB201Network(BEST_CIFAR10, C=16, N=5, num_classes=10)
    params = sum(p.numel() for p in net.parameters()) / 1e6
    assert params == pytest.approx(1.073, abs=0.005)


@pytest.mark.parametrize("size", [16, 32])
def test_network_forward_backward(space: NB201Space, size: int) -> None:
    net = space.build_network(space.parse(BEST_CIFAR10), C=4, N=1, num_classes=7)
    logits = net(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 7)
    logits.sum().backward()
    assert net.stem[0].weight.grad is not None


def test_infer_cell_sums_incoming_edges() -> None:
    x = torch.randn(2, 4, 8, 8)
    skips = _InferCell(NB201Genotype(("skip_connect",) * 6), 4)
    # node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x
    torch.testing.assert_close(skips(x), 4 * x)
    nothing = _InferCell(NB201Genotype(("none",) * 6), 4)
    assert torch.count_nonzero(nothing(x)) == 0
    # node3 fed only by node2 <- node0 through skips: 1<-0 none, 2<-0 skip, 3<-2 skip
    chain = _InferCell(
        NB201Genotype(("none", "skip_connect", "none", "none", "none", "skip_connect")), 4
    )
    torch.testing.assert_close(chain(x), x)


def test_network_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="C must be a positive int, got 0"):
        NB201Network(BEST_CIFAR10, C=0)


# --- supernet --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["weighted", "hard", "partial"])
@pytest.mark.parametrize("exclude_none", [False, True])
def test_supernet_modes_send_gradients_to_weights(
    space: NB201Space, mode: str, exclude_none: bool
) -> None:
    torch.manual_seed(0)
    k = 4 if exclude_none else 5
    net = space.build_supernet(C=4, N=1, num_classes=5, exclude_none=exclude_none)
    weights = torch.softmax(torch.randn(6, k), dim=1).requires_grad_()
    logits = net(torch.randn(3, 3, 16, 16), {"cell": weights}, mode=mode)
    assert logits.shape == (3, 5)
    logits.square().sum().backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0
    if mode == "hard":
        # NB201's GDAS forward (AutoDL-Projects search_cells.py forward_gdas): the chosen op
        # runs, scaled by its weight; every other weight is added with zero value, so each of
        # them receives the same, non-zero gradient (the sum of the edge output's gradient).
        chosen = weights.detach().argmax(dim=1)
        for row in range(6):
            others = [j for j in range(k) if j != int(chosen[row])]
            grads = weights.grad[row, others]
            assert torch.count_nonzero(grads) == len(others)
            assert torch.allclose(grads, grads[0].expand_as(grads))
    assert net.stem[0].weight.grad is not None


def test_supernet_single_mode_runs_one_op_per_edge() -> None:
    torch.manual_seed(0)
    net = NB201Supernet(4, 1, 5, NO_NONE)
    calls: dict[tuple[int, int, int], int] = {}

    def counter(key: tuple[int, int, int]):
        def hook(module, inputs) -> None:
            calls[key] = calls.get(key, 0) + 1

        return hook

    cells = [c for c in net.cells if isinstance(c, _SearchCell)]
    for ci, cell in enumerate(cells):
        for e, edge in enumerate(cell.edges):
            for o, op in enumerate(edge.candidates):
                op.register_forward_pre_hook(counter((ci, e, o)))
    chosen = [3, 0, 1, 2, 1, 0]
    weights = torch.nn.functional.one_hot(torch.tensor(chosen), 4).float().requires_grad_()
    logits = net(torch.randn(2, 3, 16, 16), {"cell": weights}, mode="single")
    logits.sum().backward()
    assert weights.grad is None
    assert net.classifier.weight.grad is not None
    expected = {(ci, e, o): 1 for ci in range(len(cells)) for e, o in enumerate(chosen)}
    assert calls == expected


def test_hard_and_single_match_weighted_on_one_hot() -> None:
    torch.manual_seed(0)
    net = NB201Supernet(4, 1, 5, OPS)
    x = torch.randn(2, 3, 16, 16)
    weights = torch.nn.functional.one_hot(torch.tensor([3, 1, 2, 4, 3, 1]), 5).float()
    reference = net(x, {"cell": weights}, mode="weighted")
    torch.testing.assert_close(net(x, {"cell": weights}, mode="hard"), reference)
    torch.testing.assert_close(net(x, {"cell": weights}, mode="single"), reference)


@pytest.mark.parametrize("partial_k", [1, 2])
def test_partial_mode_edge_weights_get_gradients(space: NB201Space, partial_k: int) -> None:
    torch.manual_seed(0)
    net = space.build_supernet(C=8, N=1, num_classes=3, exclude_none=True, partial_k=partial_k)
    weights = _uniform(4)
    edge_weights = torch.tensor([1.0, 0.3, 0.7, 0.2, 0.5, 0.3], requires_grad=True)
    logits = net(
        torch.randn(2, 3, 16, 16),
        {"cell": weights},
        mode="partial",
        edge_weights={"cell": edge_weights},
    )
    logits.square().sum().backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0
    assert edge_weights.grad is not None and torch.all(edge_weights.grad != 0)


def test_partial_supernet_runs_only_partial_mode() -> None:
    net = NB201Supernet(8, 1, 3, NO_NONE, partial_k=2)
    with pytest.raises(ValueError, match="partial_k=2.*'weighted'"):
        net(torch.randn(2, 3, 16, 16), {"cell": _uniform(4)}, mode="weighted")
    with pytest.raises(ValueError, match="divisible by partial_k"):
        NB201Supernet(6, 1, 3, NO_NONE, partial_k=4)


@pytest.mark.parametrize("size", [16, 32])
def test_supernet_input_sizes(size: int) -> None:
    net = NB201Supernet(4, 1, 10, NO_NONE)
    logits = net(torch.randn(2, 3, size, size), {"cell": _uniform(4, requires_grad=False)})
    assert logits.shape == (2, 10)


def test_supernet_channels_last_matches_contiguous() -> None:
    torch.manual_seed(0)
    net = NB201Supernet(4, 1, 3, NO_NONE, partial_k=2).eval()
    x = torch.randn(2, 3, 16, 16)
    weights = {"cell": torch.softmax(torch.randn(6, 4), dim=1)}
    reference = net(x, weights, mode="partial")
    net = net.to(memory_format=torch.channels_last)
    out = net(x.to(memory_format=torch.channels_last), weights, mode="partial")
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-5)


def test_supernet_rejects_bad_inputs() -> None:
    net = NB201Supernet(4, 1, 3, NO_NONE)
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"shape \(6, 4\), got \(6, 5\)"):
        net(x, {"cell": _uniform(5)})
    with pytest.raises(ValueError, match="key 'cell'"):
        net(x, {"normal": _uniform(4)})
    with pytest.raises(ValueError, match="'sample'"):
        net(x, {"cell": _uniform(4)}, mode="sample")
    with pytest.raises(ValueError, match="conv_5x5"):
        NB201Supernet(4, 1, 3, ("skip_connect", "conv_5x5"))


# --- shared work per node: one average pool per node ------------------------------------------


def test_supernet_pools_each_node_once_with_the_values_of_one_pool_per_edge(monkeypatch) -> None:
    """The avg_pool_3x3 of a node is identical on every edge leaving it; the search cell pools
    each node once (3 pools per cell, not 6) and gets the outputs and gradients of one pool
    per edge."""
    from search_spaces.nb201 import _networks

    torch.manual_seed(0)
    net = NB201Supernet(8, 1, 5, NO_NONE)
    x = torch.randn(4, 3, 16, 16)
    weights = torch.softmax(torch.randn(6, 4), dim=1)
    calls = []
    # counted by the pool's forward, not by a hook: a hooked op runs unshared, as its own call
    from search_spaces._mixed import ExcludePadAvgPool2d

    pool_forward = ExcludePadAvgPool2d.forward

    def counted(self, x):
        calls.append(1)
        return pool_forward(self, x)

    monkeypatch.setattr(ExcludePadAvgPool2d, "forward", counted)

    def run() -> tuple[torch.Tensor, ...]:
        w = weights.clone().requires_grad_()
        net.zero_grad(set_to_none=True)
        out = net(x, {"cell": w})
        out.square().sum().backward()
        grads = tuple(p.grad.clone() for p in net.parameters() if p.grad is not None)
        return (out.detach(), w.grad, *grads)

    shared = run()
    assert len(calls) == 3 * 3  # three cells, three source nodes each
    calls.clear()
    plain_apply = _networks._PerNode.apply

    def one_pool_per_edge(self, op, source):
        if isinstance(op, torch.nn.AvgPool2d):
            return op(self.nodes[source])
        return plain_apply(self, op, source)

    monkeypatch.setattr(_networks._PerNode, "apply", one_pool_per_edge)
    separate = run()
    assert len(calls) == 3 * 6
    assert len(shared) == len(separate)
    for a, b in zip(shared, separate):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_exclude_pad_avg_pool_matches_torchs_pool(stride: int, channels_last: bool) -> None:
    from search_spaces._mixed import ExcludePadAvgPool2d

    torch.manual_seed(0)
    x64 = torch.randn(3, 5, 9, 7, dtype=torch.float64, requires_grad=True)
    reference = torch.nn.AvgPool2d(3, stride, 1, count_include_pad=False)(x64)
    g = torch.randn_like(reference)
    reference.backward(g)
    x = x64.detach().float()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    out = ExcludePadAvgPool2d(3, stride, 1)(x)
    out.backward(g.float())
    torch.testing.assert_close(out.double(), reference.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-5, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # runs in its input's dtype, as ATen's
        assert ExcludePadAvgPool2d(3, stride, 1)(x).dtype == torch.float32
    assert ExcludePadAvgPool2d(3, stride, 1).state_dict() == {}


def test_exclude_pad_avg_pool_after_inference_mode_and_bad_padding() -> None:
    """Constants first built under inference_mode still serve a training forward; a padding
    over half the kernel is refused as torch's pool refuses it."""
    from search_spaces._mixed import ExcludePadAvgPool2d

    pool = ExcludePadAvgPool2d(3, 1, 1)
    with torch.inference_mode():
        pool(torch.randn(2, 4, 11, 13))
    x = torch.randn(2, 4, 11, 13, requires_grad=True)
    pool(x).sum().backward()
    assert x.grad is not None
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        ExcludePadAvgPool2d(2, 1, 2)(torch.randn(1, 2, 6, 6))


def test_a_pool_is_shared_only_with_pools_of_the_same_settings():
    from search_spaces._mixed import ExcludePadAvgPool2d
    from search_spaces.nb201._networks import _PerNode

    x = torch.randn(2, 3, 6, 6)
    shared = _PerNode([x])
    first = shared.apply(ExcludePadAvgPool2d(3, 1, 1), 0)
    assert shared.apply(ExcludePadAvgPool2d(3, 1, 1), 0) is first
    counting_pad = shared.apply(torch.nn.AvgPool2d(3, 1, 1, count_include_pad=True), 0)
    torch.testing.assert_close(counting_pad, torch.nn.AvgPool2d(3, 1, 1)(x))
    assert not torch.allclose(counting_pad, first)  # the border windows differ
    assert shared.apply(ExcludePadAvgPool2d(3, 2, 1), 0).shape[-1] == 3
