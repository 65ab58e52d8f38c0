"""Tests of the DARTS CNN search space (tiny networks, CPU only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from search_spaces.darts import (
    CELL_OPS,
    DARTS_V1,
    DARTS_V2,
    PC_DARTS,
    PRIMITIVES,
    DartsGenotype,
    DartsNetwork,
    DartsSpace,
    DartsSupernet,
    build_op,
    count_parameters,
    discretize,
    parse_genotype,
)

SPACE = DartsSpace()

V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=range(2, 6), "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
)


def _choices(genotype: DartsGenotype) -> list[tuple[str, int, str, int]]:
    return [
        (cell_type, position, op, source)
        for cell_type in ("normal", "reduce")
        for position, (op, source) in enumerate(genotype.cell(cell_type))
    ]


def _assert_sampled_valid(genotype: DartsGenotype) -> None:
    for cell_type in ("normal", "reduce"):
        pairs = genotype.cell(cell_type)
        for node in range(4):
            (op_a, src_a), (op_b, src_b) = pairs[2 * node : 2 * node + 2]
            assert src_a != src_b
            assert 0 <= src_a <= node + 1 and 0 <= src_b <= node + 1
            assert op_a in CELL_OPS and op_b in CELL_OPS
        assert genotype.concat(cell_type) == (2, 3, 4, 5)


# --------------------------------------------------------------------------- genotype text


def test_str_is_darts_text():
    assert str(DARTS_V2) == V2_TEXT
    assert repr(DARTS_V2) == V2_TEXT


@pytest.mark.parametrize("genotype", [DARTS_V1, DARTS_V2, PC_DARTS], ids=["v1", "v2", "pc"])
def test_published_round_trip(genotype):
    text = str(genotype)
    assert "normal_concat=range(2, 6)" in text and "reduce_concat=range(2, 6)" in text
    assert parse_genotype(text) == genotype
    assert SPACE.parse(text) == genotype


def test_parse_accepts_list_concat_multiline_and_assignment():
    text = """DARTS_V2 = Genotype(
        normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0),
                ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0),
                ('skip_connect', 0), ('dil_conv_3x3', 2)],
        normal_concat=[2, 3, 4, 5],
        reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2),
                ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2),
                ('skip_connect', 2), ('max_pool_3x3', 1)],
        reduce_concat=[2, 3, 4, 5],
    )"""
    assert parse_genotype(text) == DARTS_V2
    assert DARTS_V2.normal[7] == ("dil_conv_3x3", 2)
    assert DARTS_V2.reduce_concat == (2, 3, 4, 5)


def test_non_contiguous_concat_prints_as_list():
    text = V2_TEXT.replace("normal_concat=range(2, 6)", "normal_concat=[2, 3, 5]")
    genotype = parse_genotype(text)
    assert genotype.normal_concat == (2, 3, 5)
    assert "normal_concat=[2, 3, 5]" in str(genotype)
    assert parse_genotype(str(genotype)) == genotype


def test_sampled_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(30):
        genotype = SPACE.sample(rng)
        _assert_sampled_valid(genotype)
        assert parse_genotype(str(genotype)) == genotype


def test_sampling_is_seeded():
    a = [str(SPACE.sample(np.random.default_rng(7))) for _ in range(2)]
    assert a[0] == a[1]
    assert str(SPACE.sample(np.random.default_rng(8))) != a[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (V2_TEXT.replace("'dil_conv_3x3', 2", "'conv_7x7', 2"), "unknown op 'conv_7x7'"),
        (V2_TEXT.replace("'dil_conv_3x3', 2", "'none', 2"), "unknown op 'none'"),
        (
            V2_TEXT.replace(
                "('sep_conv_3x3', 1), ('skip_connect', 0)",
                "('sep_conv_3x3', 1), ('skip_connect', 4)",
            ),
            "node 2 .*bad input index 4.*0..3",
        ),
        (
            V2_TEXT.replace(
                "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ",
                "[('max_pool_3x3', 2), ('max_pool_3x3', 1), ",
            ),
            "'reduce' node 0 .*bad input index 2",
        ),
        (V2_TEXT.replace(", ('dil_conv_3x3', 2)]", "]"), "needs 8 .*got 7"),
        (
            V2_TEXT.replace("('skip_connect', 0), ('dil", "('skip_connect', -1), ('dil"),
            "bad input index -1",
        ),
        (
            V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', '2')"),
            "input must be an integer",
        ),
        (V2_TEXT.replace("normal_concat=range(2, 6)", "normal_concat=range(2, 'x')"), "range"),
        (
            V2_TEXT.replace("normal_concat=range(2, 6)", "normal_concat=range(2, 9)"),
            "normal_concat",
        ),
        (
            V2_TEXT.replace("normal_concat=range(2, 6)", "normal_concat=list(range(2, 6))"),
            "normal_concat",
        ),
        (V2_TEXT.replace("normal=[", "normal=__import__('os').listdir('.') + ["), "not a literal"),
        (V2_TEXT.replace("Genotype(", "Gen0type("), "expected Genotype"),
        (V2_TEXT.replace(", reduce_concat=range(2, 6))", ", extra=1)"), "unknown field 'extra'"),
        (V2_TEXT.split(", reduce=")[0] + ")", "missing reduce"),
        (V2_TEXT[:-5], "not valid syntax"),
        ("", "not valid syntax"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_genotype(text)


def test_constructor_validates_and_is_immutable():
    with pytest.raises(ValueError, match="node 3 .*bad input index 5.*0..4"):
        DartsGenotype(
            normal=[("sep_conv_3x3", 0)] * 7 + [("sep_conv_3x3", 5)],
            normal_concat=range(2, 6),
            reduce=DARTS_V2.reduce,
            reduce_concat=range(2, 6),
        )
    with pytest.raises(AttributeError):
        DARTS_V2.normal = ()  # type: ignore[misc]
    assert hash(DARTS_V2) == hash(parse_genotype(V2_TEXT))


# --------------------------------------------------------------------------- discretisation


def test_discretize_picks_top2_edges_and_ignores_none():
    ops = PRIMITIVES
    k = {op: i for i, op in enumerate(ops)}
    normal = np.full((14, len(ops)), 0.01)
    # node 0 (edges 0, 1): both kept; `none` dominates edge 0 but is ignored.
    normal[0, k["none"]] = 0.9
    normal[0, k["sep_conv_5x5"]] = 0.05
    normal[1, k["max_pool_3x3"]] = 0.3
    # node 1 (edges 2-4): edge 4 (input 2) strongest, then edge 2 (input 0); edge 3 only `none`.
    normal[2, k["dil_conv_3x3"]] = 0.4
    normal[3, k["none"]] = 0.99
    normal[4, k["sep_conv_3x3"]] = 0.6
    # node 2 (edges 5-8): inputs 3 and 1.
    normal[8, k["skip_connect"]] = 0.7
    normal[6, k["avg_pool_3x3"]] = 0.5
    normal[7, k["dil_conv_5x5"]] = 0.2
    # node 3 (edges 9-13): inputs 4 and 0.
    normal[13, k["sep_conv_3x3"]] = 0.8
    normal[9, k["sep_conv_5x5"]] = 0.75
    normal[12, k["none"]] = 1.0
    reduce = np.full((14, len(ops)), 0.01)
    reduce[:, k["max_pool_3x3"]] = np.linspace(0.1, 0.2, 14)  # later inputs stronger
    genotype = discretize(torch.tensor(normal), reduce, ops)
    assert genotype.normal == (
        ("max_pool_3x3", 1),
        ("sep_conv_5x5", 0),
        ("sep_conv_3x3", 2),
        ("dil_conv_3x3", 0),
        ("skip_connect", 3),
        ("avg_pool_3x3", 1),
        ("sep_conv_3x3", 4),
        ("sep_conv_5x5", 0),
    )
    assert genotype.reduce == (
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 3),
        ("max_pool_3x3", 2),
        ("max_pool_3x3", 4),
        ("max_pool_3x3", 3),
    )
    assert genotype.normal_concat == (2, 3, 4, 5)
    via_space = SPACE.discretize(
        {"normal": torch.tensor(normal), "reduce": torch.tensor(reduce)}, ops
    )
    assert via_space == genotype


def test_discretize_without_none_column_and_shape_errors():
    ops = SPACE.candidate_ops(exclude_none=True)
    weights = torch.zeros(14, len(ops))
    weights[:, ops.index("sep_conv_3x3")] = 1.0
    genotype = discretize(weights, weights, ops)
    assert {op for op, _ in genotype.normal} == {"sep_conv_3x3"}
    with pytest.raises(ValueError, match=r"shape \(14, 7\).*got \(13, 7\)"):
        discretize(weights[:13], weights, ops)
    with pytest.raises(ValueError, match="besides 'none'"):
        discretize(torch.ones(14, 1), torch.ones(14, 1), ("none",))
    with pytest.raises(ValueError, match="distinct DARTS ops"):
        discretize(weights, weights, ops[:-1] + ("conv_9x9",))


def test_discretize_of_uniform_weights_is_valid():
    ops = SPACE.candidate_ops(exclude_none=False)
    weights = {
        c: torch.full(shape, 1.0 / shape[1]) for c, shape in SPACE.arch_shapes(False).items()
    }
    genotype = SPACE.discretize(weights, ops)
    _assert_sampled_valid(genotype)


# --------------------------------------------------------------------------- mutation


def test_mutate_changes_exactly_one_choice():
    rng = np.random.default_rng(1)
    kinds = set()
    for genotype in [DARTS_V1, DARTS_V2, PC_DARTS] + [SPACE.sample(rng) for _ in range(20)]:
        for _ in range(10):
            child = SPACE.mutate(genotype, rng)
            diffs = [
                (a, b) for a, b in zip(_choices(genotype), _choices(child), strict=True) if a != b
            ]
            assert len(diffs) == 1
            (_, _, op_a, src_a), (_, _, op_b, src_b) = diffs[0]
            assert (op_a != op_b) != (src_a != src_b)  # either the op or the input changed
            kinds.add("op" if op_a != op_b else "input")
            _assert_sampled_valid(child)
            assert parse_genotype(str(child)) == child
    assert kinds == {"op", "input"}


# --------------------------------------------------------------------------- ops


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
def test_op_shapes(name, stride):
    x = torch.randn(2, 4, 9, 9)
    out = build_op(name, 4, stride, affine=True)(x)
    assert out.shape == (2, 4, 9 if stride == 1 else 5, 9 if stride == 1 else 5)


def test_build_op_rejects_unknown():
    with pytest.raises(ValueError, match="unknown DARTS op 'conv'"):
        build_op("conv", 4, 1)


# --------------------------------------------------------------------------- evaluation network


def test_darts_v2_parameter_count():
    network = DartsNetwork(DARTS_V2, C=36, layers=20, num_classes=10, auxiliary=True)
    params = count_parameters(network)
    assert abs(params / 1e6 - 3.35) <= 0.01
    assert count_parameters(network, exclude_auxiliary=False) > params
    no_aux = SPACE.build_network(DARTS_V2, C=36, N=20, num_classes=10)
    assert count_parameters(no_aux, exclude_auxiliary=False) == params


def test_eval_network_train_with_auxiliary_and_drop_path():
    torch.manual_seed(0)
    network = DartsNetwork(PC_DARTS, C=4, layers=5, num_classes=10, drop_path_prob=0.2)
    network.generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    network.train()
    logits, aux_logits = network(x)
    assert logits.shape == aux_logits.shape == (2, 10)
    loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux_logits, y)
    loss.backward()
    assert network.auxiliary_head.classifier.weight.grad is not None
    assert network.stem[0].weight.grad.abs().sum() > 0
    pair = network.forward_with_aux(torch.randn(2, 3, 16, 16))  # smaller maps also work
    assert pair[1] is not None and pair[1].shape == (2, 10)
    network.eval()
    with torch.no_grad():
        out = network(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert network.forward_with_aux(x)[1] is None


def test_build_network_returns_logits_and_accepts_text():
    network = SPACE.build_network(str(DARTS_V1), C=4, N=3, num_classes=5)
    network.train()
    out = network(torch.randn(2, 3, 16, 16))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    out.sum().backward()


# --------------------------------------------------------------------------- supernet


def _arch(num_ops: int, requires_grad: bool = True) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        c: (1e-3 * torch.randn(14, num_ops, generator=gen)).requires_grad_(requires_grad)
        for c in ("normal", "reduce")
    }


@pytest.mark.parametrize("mode", ["weighted", "hard", "partial", "single"])
def test_supernet_modes_forward_backward(mode):
    exclude_none = mode == "partial"
    partial_k = 4 if mode == "partial" else 1
    supernet = SPACE.build_supernet(
        C=8, N=3, num_classes=10, exclude_none=exclude_none, partial_k=partial_k
    )
    ops = SPACE.candidate_ops(exclude_none)
    alphas = _arch(len(ops))
    if mode in ("weighted", "partial"):
        weights = {c: a.softmax(-1) for c, a in alphas.items()}
    elif mode == "hard":  # straight-through one-hot, as GDAS
        weights = {}
        for c, a in alphas.items():
            soft = a.softmax(-1)
            hard = F.one_hot(soft.argmax(-1), len(ops)).to(soft.dtype)
            weights[c] = hard - soft.detach() + soft
    else:
        gen = torch.Generator().manual_seed(1)
        weights = {
            c: F.one_hot(torch.randint(len(ops), (14,), generator=gen), len(ops)).float()
            for c in ("normal", "reduce")
        }
    betas = {c: torch.zeros(14, requires_grad=True) for c in ("normal", "reduce")}
    edge_weights = None
    if mode == "partial":
        edge_weights = {}
        for c, b in betas.items():
            edge_weights[c] = torch.cat([b[g].softmax(0) for g in map(list, _groups())])
    x = torch.randn(2, 3, 16, 16)
    logits = supernet(x, weights, mode=mode, edge_weights=edge_weights)
    assert logits.shape == (2, 10)
    F.cross_entropy(logits, torch.tensor([0, 3])).backward()
    if mode != "single":
        for c in ("normal", "reduce"):
            assert alphas[c].grad is not None and alphas[c].grad.abs().sum() > 0
    if mode == "partial":
        for c in ("normal", "reduce"):
            assert betas[c].grad is not None and betas[c].grad.abs().sum() > 0
    grads = [p.grad for p in supernet.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def _groups() -> list[list[int]]:
    return SPACE.edge_groups()["normal"]


def test_supernet_edge_weights_in_weighted_mode_and_input_errors():
    supernet = DartsSupernet(C=4, layers=3, num_classes=10)
    weights = {c: torch.full((14, 8), 1 / 8) for c in ("normal", "reduce")}
    edge_weights = {c: torch.ones(14, requires_grad=True) for c in ("normal", "reduce")}
    x = torch.randn(2, 3, 16, 16)
    supernet(x, weights, edge_weights=edge_weights).sum().backward()
    assert edge_weights["reduce"].grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"shape \(14, 8\), got \(14, 7\)"):
        supernet(x, {c: torch.ones(14, 7) for c in ("normal", "reduce")})
    with pytest.raises(ValueError, match="needs keys"):
        supernet(x, {"cell": torch.ones(14, 8)})
    with pytest.raises(ValueError, match="unknown mode 'soft'"):
        supernet(x, weights, mode="soft")
    partial = DartsSupernet(C=8, layers=3, partial_k=4)
    with pytest.raises(ValueError, match="only in 'partial' mode"):
        partial(x, weights, mode="weighted")
    with pytest.raises(ValueError, match="divide C"):
        DartsSupernet(C=6, layers=3, partial_k=4)


# --------------------------------------------------------------------------- space interface


def test_space_shapes_and_groups():
    assert SPACE.name == "darts"
    assert SPACE.candidate_ops(False) == PRIMITIVES
    assert SPACE.candidate_ops(True) == PRIMITIVES[1:]
    assert SPACE.arch_shapes(False) == {"normal": (14, 8), "reduce": (14, 8)}
    assert SPACE.arch_shapes(True) == {"normal": (14, 7), "reduce": (14, 7)}
    groups = [[0, 1], [2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12, 13]]
    assert SPACE.edge_groups() == {"normal": groups, "reduce": groups}
    supernet = SPACE.build_supernet(C=4, N=3, num_classes=10, exclude_none=True)
    assert supernet.ops == PRIMITIVES[1:]
