"""The eight candidate operations of the DARTS CNN space, as the DARTS paper defines them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from search_spaces._mixed import ExcludePadAvgPool2d, StrideSafeConv2d

# Candidate ops in DARTS's column order.
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BatchNorm.

    The conv is a :class:`~search_spaces._mixed.StrideSafeConv2d`: a strided 1x1 conv runs as a
    stride-1 conv on every ``stride``-th pixel, because oneDNN's NHWC weight-gradient kernel for
    strided 1x1 convs with few input channels writes out of bounds.
    """

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            StrideSafeConv2d(C_in, C_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BatchNorm.

    The convs are :class:`~search_spaces._mixed.StrideSafeConv2d`, so a ``kernel=1`` strided
    variant also avoids oneDNN's out-of-bounds NHWC weight-gradient kernel for strided 1x1
    convs with few input channels.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            StrideSafeConv2d(
                C_in,
                C_in,
                kernel,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=C_in,
                bias=False,
            ),
            StrideSafeConv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable blocks (dilation 1); only the first one strides."""

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )


class Identity(nn.Module):
    """The stride-1 skip connection (drop-path never applies to it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the op's output."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convs, the second on a one-pixel shifted input.

    The shifted branch is zero-padded back to the input size, so odd sizes also work (for even
    sizes the result is the same as DARTS's). With ``C_out == 1`` the first conv has no output
    channels and is skipped.

    Both convs are :class:`~search_spaces._mixed.StrideSafeConv2d` (``stride=2``): each runs as
    a stride-1 1x1 conv on every second pixel (``x[:, :, ::2, ::2]``, and the same of the shifted
    input ``x[:, :, 1:, 1:]`` padded back to the input size), which gives the same output,
    gradients, parameters and state dict as ``nn.Conv2d(..., stride=2)``. The stride-2 1x1
    conv itself is avoided because oneDNN's CPU weight-gradient kernel for it on a
    channels_last input with few input channels (1-7 with AVX2, up to 15 with AVX-512) writes
    past its buffer: a glibc abort (``corrupted size vs. prev_size``) with one thread, a hang
    or silently wrong weight gradients with more. This op is DARTS's ``skip_connect`` on
    reduction edges, so partial-channel search at small ``C`` reaches those widths.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        half = C_out // 2
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = StrideSafeConv2d(C_in, half, 1, stride=2, bias=False)
        self.conv_2 = StrideSafeConv2d(C_in, C_out - half, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        if self.conv_1.out_channels == 0:  # C_out == 1: the shifted branch is the whole output
            return self.bn(self.conv_2(shifted))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


OpBuilder = Callable[[int, int, bool], nn.Module]

OPS: dict[str, OpBuilder] = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride, affine: ExcludePadAvgPool2d(3, stride=stride, padding=1),
    "skip_connect": lambda C, stride, affine: (
        Identity() if stride == 1 else FactorizedReduce(C, C, affine)
    ),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine),
}


def build_op(name: str, C: int, stride: int, affine: bool = True) -> nn.Module:
    """One candidate op on ``C`` channels (``stride`` 1 or 2)."""
    if name not in OPS:
        raise ValueError(f"unknown DARTS op {name!r}; allowed: {', '.join(PRIMITIVES)}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    return OPS[name](C, stride, affine)


def build_search_op(name: str, C: int, stride: int) -> nn.Module:
    """A candidate op as the search network uses it: ``affine=False``, pools followed by BN."""
    op = build_op(name, C, stride, affine=False)
    if "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op


def drop_path(
    x: torch.Tensor, drop_prob: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob``, scaling the rest by ``1/keep``."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    if generator is None:
        mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < keep
    else:
        mask = torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=generator.device)
        mask = (mask < keep).to(x.device)
    return x * mask.to(x.dtype) / keep
