"""Gradient checks of every op of both search spaces, run in a child process.

``python tests/_op_numerics_worker.py THREADS`` builds every candidate op of the DARTS and
NB201 spaces (enumerated from their op tables), the modules with convolutions around them
(FactorizedReduce, ReLUConvBN, DilConv/SepConv, NB201's ResNetBasicBlock, DARTS's auxiliary
head) and a small supernet of each space, at small channel counts and strides 1 and 2 where
the op takes a stride. Each case runs forward and backward in float32 with NCHW and with
channels_last input (module converted as the search converts the supernet) under
``torch.set_num_threads(THREADS)``, and compares the output, the input gradient and every
parameter gradient with a float64 NCHW reference.

Output, one line each: ``CASE <label>`` before a case starts (so that an abort or a hang can
be traced to the op), ``MISMATCH <label> <input size> <layout> <tensor> err=<e> (...)`` for a
tensor out of tolerance (``err``: the largest difference in units of the tolerance),
``ERROR <label>: <exception>`` for a case that raised, ``WORST <err>`` and
``DONE <cases> <failures>`` at the end. Exit status 1 when any tensor mismatches or any case
raises.

The oneDNN CPU ISA is chosen by the parent through ``ONEDNN_MAX_CPU_ISA`` (read once, when
oneDNN starts), hence one process per ISA and thread count.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_spaces import get_space  # noqa: E402
from search_spaces.darts import _ops as darts_ops  # noqa: E402
from search_spaces.darts._network import AuxiliaryHead  # noqa: E402
from search_spaces.nb201 import _genotype as nb201_genotype  # noqa: E402
from search_spaces.nb201 import _ops as nb201_ops  # noqa: E402

# Channel counts: below, at and above the AVX2 (8) and AVX-512 (16) float32 vector widths.
# Search variants (affine-free BN, pools followed by BN; what supernets run, with partial
# channels) at all of them, evaluation variants (affine BN) at some.
CHANNELS = (1, 2, 3, 4, 5, 7, 8, 12, 16)
CHANNELS_EVAL = (1, 4, 7, 16)
# (batch, height, width): an even size (the broken kernel shows up there) for every case, and
# an odd one (padding of strided and shifted branches) where the module strides.
EVEN = ((4, 8, 8),)
SIZES = EVEN + ((2, 7, 7),)


def _sizes(stride: int) -> tuple[tuple[int, int, int], ...]:
    return SIZES if stride > 1 else EVEN


# Elementwise: |float32 - float64| <= ATOL * scale + RTOL * |float64|, where scale is the
# case's gradient scale (the largest reference gradient over the input and all parameters) for
# gradients, and the largest reference output for the output. A common scale rather than each
# tensor's own: a weight that feeds batch norm through a single input channel has an almost
# zero exact gradient (BN makes the loss nearly invariant to its scale), while float32 rounds
# sums of terms as large as the other gradients.
RTOL = 1e-4
ATOL = 1e-5
LAYOUTS = ("nchw", "channels_last")

Builder = Callable[[], nn.Module]
Call = Callable[..., torch.Tensor]


class Case:
    """One module to check: ``build()`` makes it; ``forward(call, x)`` runs it, where ``call``
    calls the module (default: ``call(x)``); ``slack`` multiplies the tolerance (float32
    rounding compounds through a whole network)."""

    def __init__(
        self,
        label: str,
        build: Builder,
        C_in: int,
        sizes: tuple[tuple[int, int, int], ...] = EVEN,
        forward: Callable[[Call, torch.Tensor], torch.Tensor] | None = None,
        slack: float = 1.0,
    ) -> None:
        self.label, self.build, self.C_in, self.sizes = label, build, C_in, sizes
        self.forward = forward or (lambda call, x: call(x))
        self.slack = slack


def darts_cases() -> Iterator[Case]:
    for name in darts_ops.OPS:
        for stride in (1, 2):
            for C in CHANNELS:
                yield Case(
                    f"darts/{name} (search) C={C} stride={stride}",
                    lambda n=name, C=C, s=stride: darts_ops.build_search_op(n, C, s),
                    C,
                    _sizes(stride),
                )
            for C in CHANNELS_EVAL:
                yield Case(
                    f"darts/{name} (eval) C={C} stride={stride}",
                    lambda n=name, C=C, s=stride: darts_ops.build_op(n, C, s, affine=True),
                    C,
                    _sizes(stride),
                )
    for C in CHANNELS:
        # reduction_prev preprocessing: C_prev_prev channels in, the cell's C out
        yield Case(
            f"darts/FactorizedReduce C_in={C} C_out={2 * C}",
            lambda C=C: darts_ops.FactorizedReduce(C, 2 * C, affine=False),
            C,
            SIZES,
        )
        for stride in (1, 2):  # stride 1: preprocessing; ReLUConvBN also takes stride 2
            yield Case(
                f"darts/ReLUConvBN 1x1 C_in={C} C_out={2 * C} stride={stride}",
                lambda C=C, s=stride: darts_ops.ReLUConvBN(C, 2 * C, 1, s, 0),
                C,
                _sizes(stride),
            )
    for C in CHANNELS_EVAL:
        yield Case(f"darts/AuxiliaryHead C={C}", lambda C=C: AuxiliaryHead(C, 10), C)


def nb201_cases() -> Iterator[Case]:
    for name in nb201_genotype.OPS:
        for C in CHANNELS:
            yield Case(
                f"nb201/{name} (search) C={C}",
                lambda n=name, C=C: nb201_ops.make_op(n, C, affine=False),
                C,
            )
        for C in CHANNELS_EVAL:
            yield Case(
                f"nb201/{name} (eval) C={C}",
                lambda n=name, C=C: nb201_ops.make_op(n, C, affine=True),
                C,
            )
    for C in CHANNELS:
        for stride in (1, 2):
            # even sizes only: at stride 2 the 2x2 pooled shortcut and the padded 3x3 conv
            # disagree on odd sizes (NB201's inputs are even)
            yield Case(
                f"nb201/ResNetBasicBlock C_in={C} C_out={2 * C} stride={stride}",
                lambda C=C, s=stride: nb201_ops.ResNetBasicBlock(C, 2 * C, stride=s),
                C,
            )
            for kernel in (1, 3):
                yield Case(
                    f"nb201/ReLUConvBN {kernel}x{kernel} C={C} stride={stride}",
                    lambda C=C, k=kernel, s=stride: nb201_ops.ReLUConvBN(C, C, k, stride=s),
                    C,
                    _sizes(stride),
                )


def supernet_cases() -> Iterator[Case]:
    """A small supernet of each space in partial-channel mode (op widths down to 1-2)."""
    for space_name, C, N, k in (("darts", 4, 3, 2), ("nb201", 4, 1, 2)):
        space = get_space(space_name)
        shapes = space.arch_shapes(False)
        generator = torch.Generator().manual_seed(0)
        weights = {
            cell: torch.randn(shape, generator=generator).softmax(dim=-1)
            for cell, shape in shapes.items()
        }

        def forward(call: Call, x: torch.Tensor, weights=weights) -> torch.Tensor:
            return call(x, {cell: v.to(x.dtype) for cell, v in weights.items()}, mode="partial")

        yield Case(
            f"{space_name}/supernet C={C} N={N} partial_k={k}",
            lambda s=space, C=C, N=N, k=k: s.build_supernet(C, N, 10, False, k),
            3,
            sizes=((2, 8, 8),),
            forward=forward,
            slack=10.0,
        )


def all_cases() -> Iterator[Case]:
    yield from darts_cases()
    yield from nb201_cases()
    yield from supernet_cases()


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


def _convert(
    tensors: dict[str, torch.Tensor], dtype: torch.dtype, layout: str
) -> dict[str, torch.Tensor]:
    """What ``module.to(dtype)`` / ``module.to(memory_format=...)`` make of parameters and
    buffers."""
    out = {}
    for name, t in tensors.items():
        if t.is_floating_point():
            t = t.to(dtype)
        if layout == "channels_last" and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        out[name] = t
    return out


def _grads(
    case: Case,
    module: nn.Module,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    grad_out: Callable[[torch.Tensor], torch.Tensor],
) -> dict[str, torch.Tensor | None]:
    """Output, input gradient and parameter gradients of ``module`` run with ``params`` and
    (copies of) ``buffers``, for the output gradient ``grad_out(output)``."""
    leaves = {name: p.clone().requires_grad_() for name, p in params.items()}
    state = {**leaves, **{name: b.clone() for name, b in buffers.items()}}
    x = x.clone().requires_grad_()

    def call(*args, **kwargs) -> torch.Tensor:
        return functional_call(module, state, args, kwargs)

    y = case.forward(call, x)
    y.backward(grad_out(y))
    out: dict[str, torch.Tensor | None] = {"output": y.detach(), "input.grad": x.grad}
    for name, leaf in leaves.items():
        if leaf.numel():
            out[f"{name}.grad"] = leaf.grad
    return out


def _compare(case: Case, where: str, ref: dict, got: dict) -> tuple[list[str], float]:
    lines, worst = [], 0.0
    grad_scale = max(
        (r.abs().max().item() for n, r in ref.items() if n != "output" and r is not None),
        default=0.0,
    )
    for name, r in ref.items():
        a = got.get(name)
        if r is None or a is None or a.shape != r.shape:
            if r is None and a is None:
                continue
            shapes = [None if t is None else tuple(t.shape) for t in (a, r)]
            lines.append(f"MISMATCH {where} {name} shape={shapes[0]} reference={shapes[1]}")
            continue
        scale = r.abs().max().item() if name == "output" else grad_scale
        diff = (a.double() - r).abs()
        bound = case.slack * (ATOL * scale + RTOL * r.abs())
        ok = bool((diff <= bound).all())  # False for NaN
        # err: the largest difference in units of the bound (passes at <= 1)
        err = (diff / bound.clamp_min(1e-300)).max().item()
        if err == err:  # not NaN
            worst = max(worst, err)
        if not ok:
            lines.append(
                f"MISMATCH {where} {name} err={err:.3g} (max|diff|={diff.max().item():.3g}, "
                f"scale={scale:.3g}, tolerance {case.slack:g}*({ATOL:g}*scale+{RTOL:g}*|ref|))"
            )
    return lines, worst


def check(case: Case, threads: int) -> tuple[list[str], float]:
    """Mismatch lines for ``case`` and its largest error in units of the tolerance."""
    lines, worst = [], 0.0
    torch.manual_seed(_seed(case.label))
    module = case.build().train()
    params = {name: p.detach() for name, p in module.named_parameters()}
    buffers = {name: b.detach() for name, b in module.named_buffers()}
    generator = torch.Generator().manual_seed(_seed(case.label))
    for batch, height, width in case.sizes:
        x = torch.randn(batch, case.C_in, height, width, generator=generator)
        grad_out = torch.empty(0)

        def reference_grad(y: torch.Tensor) -> torch.Tensor:
            nonlocal grad_out
            grad_out = torch.randn(y.shape, generator=generator)
            return grad_out.double()

        # float64 NCHW reference (one thread: it does not use oneDNN and is the slow part)
        torch.set_num_threads(1)
        ref = _grads(
            case,
            module,
            _convert(params, torch.float64, "nchw"),
            _convert(buffers, torch.float64, "nchw"),
            x.double(),
            reference_grad,
        )
        torch.set_num_threads(threads)
        for layout in LAYOUTS:
            g, x_in = grad_out, x
            if layout == "channels_last":
                x_in = x.contiguous(memory_format=torch.channels_last)
                if g.dim() == 4:
                    g = g.contiguous(memory_format=torch.channels_last)
            got = _grads(
                case,
                module,
                _convert(params, torch.float32, layout),
                _convert(buffers, torch.float32, layout),
                x_in,
                lambda y, g=g: g,
            )
            where = f"{case.label} N={batch} H={height} W={width} {layout}"
            case_lines, case_worst = _compare(case, where, ref, got)
            lines += case_lines
            worst = max(worst, case_worst)
    return lines, worst


def main(argv: list[str]) -> int:
    threads = int(argv[1])
    torch.set_num_threads(threads)
    cases = bad = 0
    worst = 0.0
    for case in all_cases():
        print(f"CASE {case.label}", flush=True)
        try:
            lines, case_worst = check(case, threads)
        except Exception as exc:  # a module that cannot run is a failed case, not the end
            lines, case_worst = [f"ERROR {case.label}: {type(exc).__name__}: {exc}"], 0.0
        worst = max(worst, case_worst)
        cases += 1
        bad += len(lines)
        for line in lines:
            print(line, flush=True)
    print(f"WORST {worst:.3g}", flush=True)
    print(f"DONE {cases} {bad}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
