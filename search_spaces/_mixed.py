"""Mixed operations whose mixing weights come from outside (the architecture optimiser).

Modes, one per search method family:

- ``"weighted"``: sum of all ops weighted by a simplex vector (DARTS softmax, GAEA theta).
- ``"hard"``: a one-hot vector whose gradient flows straight through (GDAS); only the chosen op
  runs, scaled by its (unit) weight so gradients reach the architecture parameters. This is
  GDAS's forward on the DARTS (NASNet) space (AutoDL-Projects
  xautodl/models/cell_searchs/search_cells.py lines 180-181, ``MixedOp.forward_gdas``). NB201's
  GDAS also adds the other ops' (zero-valued) weights, so they get gradients too; the NB201
  supernet does that itself (see :class:`search_spaces.nb201.NB201Supernet`).
- ``"partial"``: PC-DARTS partial channel connection: the weighted sum runs on ``1/k`` of the
  channels, the rest bypass (pooled when the edge reduces), then channels are shuffled.
- ``"single"``: one op chosen by a one-hot vector without gradient (random search with weight
  sharing); only that op runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as torch_module

MODES = ("weighted", "hard", "partial", "single")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOKS = tuple(f"_global{name}" for name in _HOOKS)


def hooked(*modules: nn.Module) -> bool:
    """Whether a hook may see, keep or wrap these modules' outputs: a forward or backward hook
    of their own, or a global module hook (``torch.nn.modules.module.register_module_*``). A
    module's output that a hook sees is not owned in the sense of :func:`sum_terms`: a forward
    hook may keep it, and a full backward hook hands on a view that must not be written into."""
    if any(getattr(torch_module, name, None) for name in _GLOBAL_HOOKS):
        return True
    return any(getattr(m, name, None) for m in modules for name in _HOOKS)


def sum_terms(terms: Iterable[tuple[torch.Tensor, bool]]) -> torch.Tensor:
    """``((t0 + t1) + t2) + ...`` of ``(tensor, owned)`` terms, each addition made into a
    tensor of the sum's own where there is one instead of into a new tensor.

    A term is *owned* when it is a fresh tensor that nothing else reads and whose value no
    backward needs: the output of a batch norm (its backward keeps the input, not the output)
    or of a product (its backward keeps the factors), unless a module hook sees it
    (:func:`hooked`). A node itself (``skip_connect``) or an output shared between edges is
    not. The result of the first addition is owned too.

    The value is bit for bit that of the out-of-place sum: the pairing is kept, and each pair
    is added as ``a + b`` or ``b + a``, equal in floating point; a pair of different dtypes
    is added out of place, with the usual type promotion. Raises ``ValueError`` without terms.

    Why: at the 32x32 stage of the NB201 networks on CPU, where the activations outgrow the
    caches, an out-of-place add of a [64, 16, 32, 32] tensor took 0.98 ms against 0.22 ms in
    place (``torch.profiler``, standalone training step, 2 threads): the new tensor's memory
    is written cold. Measured in one process, A/B: the standalone step 2% faster.
    """
    it = iter(terms)
    first = next(it, None)
    if first is None:
        raise ValueError("a sum needs at least one term")
    total, owned = first
    for term, term_owned in it:
        if owned and total.dtype == term.dtype:
            total = total.add_(term)
        elif term_owned and term.dtype == total.dtype:
            total = term.add_(total)
        else:
            total = total + term
        owned = True
    return total


def _weighted_sum(
    x: Any,
    weights: torch.Tensor,
    ops: nn.ModuleList,
    run: Callable[[nn.Module, Any], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``sum(w * op(x))`` in op order, without the ``0 + ...`` that Python's ``sum`` starts with,
    added in place into the first product (:func:`sum_terms`; the same values). ``run(op, x)``,
    if given, stands for ``op(x)`` (the NB201 search cell passes a node index and shares the
    ReLU of its ReLU-Conv-BN ops per node). Raises ``ValueError`` without ops."""
    if not len(ops):
        raise ValueError("a mixed op needs at least one candidate op")
    return sum_terms(
        (w * (op(x) if run is None else run(op, x)), True) for w, op in zip(weights, ops)
    )


class MixedOp(nn.Module):
    """Candidate ops on one edge; ``forward(x, weights, mode)`` mixes them."""

    def __init__(self, candidates: nn.ModuleList, stride: int = 1, partial_k: int = 1) -> None:
        super().__init__()
        self.candidates = candidates
        self.stride = stride
        self.partial_k = partial_k

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, mode: str = "weighted"
    ) -> torch.Tensor:
        if mode == "weighted":
            return _weighted_sum(x, weights, self.candidates)
        if mode in ("hard", "single"):
            index = int(weights.argmax())
            out = self.candidates[index](x)
            return out * weights[index] if mode == "hard" else out
        if mode == "partial":
            return self._partial(x, weights)
        raise ValueError(f"unknown mixed-op mode {mode!r}; allowed: {', '.join(MODES)}")

    def _partial(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        k = self.partial_k
        active = x.shape[1] // k
        x_active, x_bypass = x[:, :active], x[:, active:]
        mixed = _weighted_sum(x_active, weights, self.candidates)
        if k == 1:  # every channel goes through the ops; nothing bypasses them
            return mixed
        if self.stride > 1:
            x_bypass = F.max_pool2d(x_bypass, 2, 2, ceil_mode=True)
        if mixed.shape[1] != active:  # ops that change the channel count keep the ratio
            raise ValueError("partial channel mode needs ops that keep the channel count")
        out = torch.cat([mixed, x_bypass], dim=1)
        return channel_shuffle(out, k) if k > 1 else out


class StrideSafeConv2d(nn.Conv2d):
    """``nn.Conv2d`` that runs a strided 1x1 convolution as a stride-1 one on the subsampled input.

    oneDNN's CPU kernel for the weight gradient of a 1x1 convolution with stride > 1 on a
    channels_last (NHWC) input with fewer input channels than its SIMD width (1-7 with AVX2,
    up to 15 with AVX-512) writes past its buffer: with one thread glibc aborts (``corrupted
    size vs. prev_size``), with more it can hang or return wrong weight gradients. A 1x1 kernel
    never reads the pixels a stride skips, so padding, then taking every ``stride``-th pixel
    and convolving with stride 1 computes the same output and gradients without that kernel,
    in every memory layout. Other kernel sizes run as ``nn.Conv2d``. Parameters, attributes
    (``stride`` included) and the state dict are those of ``nn.Conv2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size != (1, 1) or self.stride == (1, 1):
            return super().forward(x)
        if not isinstance(self.padding, str) and any(self.padding):
            pad = self._reversed_padding_repeated_twice
            x = F.pad(x, pad) if self.padding_mode == "zeros" else F.pad(x, pad, self.padding_mode)
        x = x[:, :, :: self.stride[0], :: self.stride[1]]
        return F.conv2d(x, self.weight, self.bias, 1, 0, 1, self.groups)


class ExcludePadAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d(kernel_size, stride, padding, count_include_pad=False)``, faster on CPU.

    Shapes: ``[B, C, H, W]`` in, ``[B, C, H', W']`` out (``H' = (H + 2p - k) // s + 1``); each
    output is the mean of the input pixels its window covers, padding not counted (the NB201
    and DARTS ``avg_pool_3x3``). On a CPU tensor it runs as a depthwise convolution with a
    kernel of ones, times the inverse of each window's count of real pixels: ATen's CPU
    average-pool kernels are about 7x slower than oneDNN's depthwise convolution forward and
    backward at the NB201 supernet's sizes (C=16, 32x32, batch 64), where the pool was a
    third of a search step. The values and gradients are the pool's up to float rounding
    (``tests/test_op_numerics.py`` checks both against float64). Elsewhere (CUDA) and with
    ``ceil_mode`` or a ``divisor_override`` it is ``nn.AvgPool2d`` itself. No parameters or
    buffers: the state dict is the pool's (empty).
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__(kernel_size, stride, padding, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type != "cpu"
            or x.dim() != 4
            or not x.is_floating_point()
            or self.ceil_mode
            or self.divisor_override
        ):
            return super().forward(x)
        k, s, p = (_pair(v) for v in (self.kernel_size, self.stride, self.padding))
        if any(pad > size // 2 for pad, size in zip(p, k)):
            return super().forward(x)  # ATen's own error for a padding over half the kernel
        if torch.is_autocast_enabled("cpu"):  # the pool runs in its input's dtype, as ATen's
            with torch.autocast("cpu", enabled=False):
                return self._depthwise(x, k, s, p)
        return self._depthwise(x, k, s, p)

    def _depthwise(
        self, x: torch.Tensor, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int]
    ) -> torch.Tensor:
        channels = x.shape[1]
        ones, inverse = _pool_constants(channels, *x.shape[-2:], k, s, p, x.dtype)
        return F.conv2d(x, ones, None, s, p, 1, channels) * inverse


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


_POOL_CONSTANTS: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}


def _pool_constants(
    channels: int,
    height: int,
    width: int,
    k: tuple[int, int],
    s: tuple[int, int],
    p: tuple[int, int],
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ones kernel ``[C, 1, kh, kw]`` and the ``[1, 1, H', W']`` inverse pixel counts of
    an exclude-padding average pool (CPU tensors, cached per shape and dtype)."""
    key = (channels, height, width, k, s, p, dtype)
    found = _POOL_CONSTANTS.get(key)
    if found is None:
        # plain tensors even when first built under torch.inference_mode, so that a later
        # training forward can save them for its backward
        with torch.inference_mode(False), torch.no_grad():
            ones = torch.ones(channels, 1, *k, dtype=dtype)
            counts = F.conv2d(
                torch.ones(1, 1, height, width, dtype=torch.float64),
                torch.ones(1, 1, *k, dtype=torch.float64),
                None, s, p,
            )  # fmt: skip
            inverse = counts.reciprocal().to(dtype)
        if len(_POOL_CONSTANTS) > 256:
            _POOL_CONSTANTS.clear()
        found = _POOL_CONSTANTS[key] = (ones, inverse)
    return found
