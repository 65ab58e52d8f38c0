"""NAS-Bench-201 operations and the residual block between stages.

Every op keeps the channel count and the spatial size (stride 1): ``nor_conv_kxk`` is
ReLU-Conv-BN, ``avg_pool_3x3`` a 3x3 average pool (padding 1, padding not counted),
``skip_connect`` the identity and ``none`` a zero output.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces._mixed import ExcludePadAvgPool2d, StrideSafeConv2d, hooked
from search_spaces.nb201._genotype import OPS


class ReLUConvBN(nn.Sequential):
    """ReLU, a bias-free convolution, batch norm.

    The conv is a :class:`~search_spaces._mixed.StrideSafeConv2d`: a strided 1x1 conv runs as a
    stride-1 conv on every ``stride``-th pixel, because oneDNN's NHWC weight-gradient kernel for
    strided 1x1 convs with few input channels writes out of bounds.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int = 1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            StrideSafeConv2d(
                C_in, C_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
            ),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the input (kept in the graph so mixing weights get
    a (zero) gradient)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, C: int, affine: bool, track_running_stats: bool = True) -> nn.Module:
    """The NB201 op ``name`` on ``C`` channels (stride 1)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(C, C, 1, affine=affine, track_running_stats=track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(C, C, 3, affine=affine, track_running_stats=track_running_stats)
    if name == "avg_pool_3x3":
        return ExcludePadAvgPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NB201 op {name!r}; allowed: {', '.join(OPS)}")


class ResNetBasicBlock(nn.Module):
    """The stride-2 block between stages, as NAS-Bench-201 builds it: two ReLU-Conv3x3-BN
    layers (the first with stride 2) plus a shortcut of 2x2 average pooling and a 1x1 conv."""

    def __init__(self, C_in: int, C_out: int, stride: int = 2, affine: bool = True) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ResNetBasicBlock stride must be 1 or 2, got {stride!r}")
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride=stride, affine=affine)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, stride=1, affine=affine)
        if stride == 2:
            self.shortcut: nn.Module = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Conv2d(C_in, C_out, kernel_size=1, bias=False),
            )
        elif C_in != C_out:
            self.shortcut = ReLUConvBN(C_in, C_out, 1, affine=affine)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # conv_b's output (a batch norm's, which its backward does not keep) takes the sum in
        # place unless a hook sees it (search_spaces._mixed.sum_terms): shortcut + residual,
        # bit for bit, without a new tensor
        residual = self.conv_b(self.conv_a(x))
        shortcut = self.shortcut(x)
        if residual.dtype == shortcut.dtype and not hooked(self.conv_b, self.conv_b[-1]):
            return residual.add_(shortcut)
        return shortcut + residual
