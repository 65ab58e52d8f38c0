"""Mixed operations whose mixing weights come from outside (the architecture optimiser).

Modes, one per search method family:

- ``"weighted"``: sum of all ops weighted by a simplex vector (DARTS softmax, GAEA theta).
- ``"hard"``: a one-hot vector whose gradient flows straight through (GDAS); only the chosen op
  runs, scaled by its (unit) weight so gradients reach the architecture parameters.
- ``"partial"``: PC-DARTS partial channel connection: the weighted sum runs on ``1/k`` of the
  channels, the rest bypass (pooled when the edge reduces), then channels are shuffled.
- ``"single"``: one op chosen by a one-hot vector without gradient (random search with weight
  sharing); only that op runs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MODES = ("weighted", "hard", "partial", "single")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


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
            return sum(w * op(x) for w, op in zip(weights, self.candidates))
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
        mixed = sum(w * op(x_active) for w, op in zip(weights, self.candidates))
        if k == 1:  # every channel goes through the ops; nothing bypasses them
            return mixed
        if self.stride > 1:
            x_bypass = F.max_pool2d(x_bypass, 2, 2, ceil_mode=True)
        if mixed.shape[1] != active:  # ops that change the channel count keep the ratio
            raise ValueError("partial channel mode needs ops that keep the channel count")
        out = torch.cat([mixed, x_bypass], dim=1)
        return channel_shuffle(out, k) if k > 1 else out
