"""Node sums made in place (``search_spaces._mixed.sum_terms``) give the out-of-place sums'
values and gradients bit for bit, and never write into a tensor something else reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
import torch

from search_spaces import _mixed
from search_spaces._mixed import sum_terms
from search_spaces.darts import DartsSupernet
from search_spaces.darts import _supernet as darts_supernet
from search_spaces.nb201 import OPS, NB201Network, NB201Supernet
from search_spaces.nb201 import _networks as nb201_networks
from search_spaces.nb201 import _ops as nb201_ops

BEST_CIFAR10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
# skip_connect and pools first on a node, a node of only skip_connect, a none edge
MIXED_CELL = (
    "|skip_connect~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
)


def _out_of_place(terms: Iterable[tuple[torch.Tensor, bool]]) -> torch.Tensor:
    total: torch.Tensor | None = None
    for term, _ in terms:
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no terms")
    return total


def _plain_residual_forward(self: nb201_ops.ResNetBasicBlock, x: torch.Tensor) -> torch.Tensor:
    return self.shortcut(x) + self.conv_b(self.conv_a(x))


@pytest.fixture
def out_of_place(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Calling it swaps every in-place sum for the plain ``a + b`` chain."""

    def swap() -> None:
        for module in (_mixed, nb201_networks, darts_supernet):
            monkeypatch.setattr(module, "sum_terms", _out_of_place)
        monkeypatch.setattr(nb201_ops.ResNetBasicBlock, "forward", _plain_residual_forward)

    return swap


def test_sum_terms_adds_into_owned_terms_only() -> None:
    a, b, c = (torch.randn(2, 3) for _ in range(3))
    a0, b0, c0 = a.clone(), b.clone(), c.clone()
    expected = (a0 + b0) + c0

    total = sum_terms([(a, False), (b, True), (c, False)])
    assert torch.equal(total, expected)
    assert total.data_ptr() == b.data_ptr()  # b + a, then c added into it
    assert torch.equal(a, a0) and torch.equal(c, c0)

    a, b = a0.clone(), b0.clone()
    total = sum_terms([(a, False), (b, False)])
    assert torch.equal(total, a0 + b0)
    assert total.data_ptr() not in (a.data_ptr(), b.data_ptr())
    assert torch.equal(a, a0) and torch.equal(b, b0)

    only = torch.randn(3)
    assert sum_terms([(only, True)]) is only
    with pytest.raises(ValueError, match="at least one term"):
        sum_terms([])


def test_sum_terms_with_mixed_dtypes_promotes_out_of_place() -> None:
    half = torch.randn(4).to(torch.bfloat16)
    full = torch.randn(4)
    half0 = half.clone()
    total = sum_terms([(half, True), (full, False)])
    assert total.dtype == torch.float32
    assert torch.equal(total, half0 + full)
    assert torch.equal(half, half0)


def _run(net: torch.nn.Module, x: torch.Tensor, *args: object) -> list[torch.Tensor]:
    torch.manual_seed(1)
    net.zero_grad(set_to_none=True)
    inputs = x.clone().requires_grad_()
    before = inputs.detach().clone()
    out = net(inputs, *args)
    out.square().sum().backward()
    assert torch.equal(inputs.detach(), before), "the network wrote into its input"
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    arch = [a.grad for a in args if isinstance(a, torch.Tensor) and a.grad is not None]
    for a in args:
        if isinstance(a, dict):
            arch += [t.grad for t in a.values() if t.grad is not None]
    return [out.detach(), inputs.grad, *grads, *arch]


def _assert_bitwise(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def _assert_same_as_out_of_place(
    net: torch.nn.Module,
    run: Callable[[], list[torch.Tensor]],
    out_of_place: Callable[[], None],
    check: Callable[[], None] = lambda: None,
) -> None:
    """``run()`` with the in-place sums (then ``check()``), and again with the plain sums from
    the same state (BN running statistics included): equal bit for bit."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    in_place = run()
    check()
    net.load_state_dict(state)
    out_of_place()
    _assert_bitwise(in_place, run())


@pytest.mark.parametrize("arch", [BEST_CIFAR10, MIXED_CELL])
@pytest.mark.parametrize("channels_last", [False, True])
def test_nb201_network_matches_out_of_place_sums(
    arch: str, channels_last: bool, out_of_place: Callable[[], None]
) -> None:
    torch.manual_seed(0)
    net = NB201Network(arch, C=8, N=2, num_classes=5)
    x = torch.randn(4, 3, 16, 16)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    _assert_same_as_out_of_place(net, lambda: _run(net, x), out_of_place)


def _weights(rows: int, ops: tuple[str, ...]) -> torch.Tensor:
    """Random mixing weights, skip_connect the largest in every row: the single-path modes
    then pass every node on as it is, the case an in-place sum must not write into."""
    logits = torch.randn(rows, len(ops))
    logits[:, ops.index("skip_connect")] += 10.0
    return torch.softmax(logits, dim=1).requires_grad_()


@pytest.mark.parametrize("mode", ["weighted", "hard", "single", "partial"])
def test_nb201_supernet_matches_out_of_place_sums(
    mode: str, out_of_place: Callable[[], None]
) -> None:
    torch.manual_seed(0)
    partial_k = 2 if mode == "partial" else 1
    net = NB201Supernet(8, 1, 5, OPS, partial_k=partial_k)
    x = torch.randn(4, 3, 16, 16)
    w = _weights(6, OPS)
    edge = torch.softmax(torch.randn(6), 0).requires_grad_() if mode == "partial" else None

    def run() -> list[torch.Tensor]:
        w.grad = None
        edge_weights = None if edge is None else {"cell": edge}
        if edge is not None:
            edge.grad = None
        result = _run(net, x, {"cell": w}, mode, edge_weights)
        return result + ([edge.grad] if edge is not None else [])

    _assert_same_as_out_of_place(net, run, out_of_place)


@pytest.mark.parametrize("mode", ["weighted", "hard", "single", "partial"])
def test_darts_supernet_matches_out_of_place_sums(
    mode: str, out_of_place: Callable[[], None]
) -> None:
    torch.manual_seed(0)
    partial_k = 2 if mode == "partial" else 1
    net = DartsSupernet(C=4, layers=3, num_classes=5, partial_k=partial_k)
    x = torch.randn(2, 3, 16, 16)
    edges = net.num_edges
    weights = {"normal": _weights(edges, net.ops), "reduce": _weights(edges, net.ops)}
    edge_weights = None
    if mode == "partial":
        edge_weights = {
            k: torch.softmax(torch.randn(edges), 0).requires_grad_() for k in ("normal", "reduce")
        }

    def run() -> list[torch.Tensor]:
        for t in [*weights.values(), *(edge_weights or {}).values()]:
            t.grad = None
        result = _run(net, x, weights, mode, edge_weights)
        return result + [t.grad for t in (edge_weights or {}).values()]

    _assert_same_as_out_of_place(net, run, out_of_place)


def _hook_targets(kind: str, net: torch.nn.Module) -> torch.nn.Module:
    # edges[1] is the first term of node 2's sum (node 2 <- 0, conv 3x3)
    if kind == "edge-bn":  # the batch norm ending an NB201 edge op: its output is a node term
        return net.cells[0].edges[1][2]
    if kind == "edge-op":  # a whole NB201 edge op (normally run from the node's shared ReLU)
        return net.cells[0].edges[1]
    if kind == "residual":  # conv_b of the residual block: its output takes the shortcut
        return net.cells[1].conv_b
    return net.cells[0].edges[0]  # a DARTS supernet MixedOp, the first term of a node sum


@pytest.mark.parametrize("kind", ["edge-bn", "edge-op", "residual", "mixed-op"])
def test_module_hooks_see_and_keep_what_they_would_without_in_place_sums(
    kind: str, out_of_place: Callable[[], None]
) -> None:
    """A full backward hook runs (no error for writing into its view) and a forward hook keeps
    the module's own output, not the node sum it would otherwise become; the values and
    gradients stay the out-of-place sum's."""
    torch.manual_seed(0)
    if kind == "mixed-op":
        net: torch.nn.Module = DartsSupernet(C=4, layers=3, num_classes=5)
        x = torch.randn(2, 3, 16, 16)
        args: tuple[object, ...] = (
            {
                "normal": _weights(net.num_edges, net.ops),
                "reduce": _weights(net.num_edges, net.ops),
            },
        )
    else:
        net = NB201Network(BEST_CIFAR10, C=4, N=1, num_classes=5)
        x = torch.randn(2, 3, 16, 16)
        args = ()
    target = _hook_targets(kind, net)
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []
    grads: list[torch.Tensor] = []
    target.register_forward_hook(lambda m, i, out: kept.append((out, out.detach().clone())))
    target.register_full_backward_hook(lambda m, gi, go: grads.append(go[0].clone()))
    first_grads: list[torch.Tensor] = []

    def hooks_ran_and_kept_their_outputs() -> None:
        assert kept and grads, "the hooks did not run"
        assert all(torch.equal(out.detach(), copy) for out, copy in kept)
        first_grads.extend(grads)
        grads.clear()

    _assert_same_as_out_of_place(
        net, lambda: _run(net, x, *args), out_of_place, hooks_ran_and_kept_their_outputs
    )
    _assert_bitwise(first_grads, grads)


def test_a_global_module_hook_turns_in_place_sums_off(out_of_place: Callable[[], None]) -> None:
    from torch.nn.modules.module import register_module_forward_hook

    torch.manual_seed(0)
    net = NB201Network(BEST_CIFAR10, C=4, N=1, num_classes=5)
    x = torch.randn(2, 3, 16, 16)
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []
    in_cells = {id(m) for m in net.cells.modules()}  # (lastact's ReLU is in place by design)

    def keep(module: torch.nn.Module, inputs: object, out: object) -> None:
        if id(module) in in_cells and isinstance(out, torch.Tensor):
            kept.append((out, out.detach().clone()))

    handle = register_module_forward_hook(keep)
    try:

        def kept_as_they_were() -> None:
            assert kept and all(torch.equal(out.detach(), copy) for out, copy in kept)

        _assert_same_as_out_of_place(net, lambda: _run(net, x), out_of_place, kept_as_they_were)
    finally:
        handle.remove()
