"""Architecture optimisers and the maps from architecture parameters to mixing weights.

- :class:`GAEAOptimizer`: exponentiated gradient on per-edge simplices (GAEA). The parameters
  *are* the mixing weights (no softmax): ``theta <- theta * exp(-lr * grad)``, clamped to a small
  floor and renormalised along the last dimension (one simplex per row).
- :func:`softmax_adam`: the softmax controls (DARTS, GDAS, PC-DARTS): Adam on logits.
- :func:`gumbel_softmax_hard`: GDAS's straight-through Gumbel-softmax sample; with GAEA the
  logits are ``log(theta)``, i.e. the sample is drawn from ``theta`` itself.
- :func:`gumbel_tau`: GDAS's temperature, annealed linearly from ``tau_max`` to ``tau_min``
  (after GAEA-GDAS's architecture warm-up).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

# GAEA clamps every weight at 1e-5 before renormalising (gaea_release
# cnn/architect/architect_edarts.py lines 10-13, applied at line 120).
DEFAULT_FLOOR = 1e-5


class GAEAOptimizer(torch.optim.Optimizer):
    """Exponentiated-gradient (mirror descent) steps that keep every row on the simplex.

    ``params`` hold non-negative weights whose last dimension sums to one (``[E, K]`` op weights
    or ``[n]`` edge weights of one node). One step, per row::

        theta <- theta * exp(-lr * grad);  theta <- max(theta, floor);  theta <- theta / sum(theta)

    The product is formed in the log domain (a softmax of ``log theta - lr * grad``), so large
    gradients cannot overflow; the result is the same normalised vector. ``floor`` defaults to
    GAEA's 1e-5 (:data:`DEFAULT_FLOOR`).
    """

    def __init__(
        self, params: Iterable[torch.Tensor], lr: float = 0.1, floor: float = DEFAULT_FLOOR
    ) -> None:
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if not (isinstance(floor, (int, float)) and 0 <= floor < 1):
            raise ValueError(f"floor must be in [0, 1), got {floor!r}")
        super().__init__(params, {"lr": float(lr), "floor": float(floor)})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, floor = group["lr"], group["floor"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                logits = p.clamp_min(torch.finfo(p.dtype).tiny).log_() - lr * p.grad
                p.copy_(torch.softmax(logits, dim=-1))
                if floor > 0:
                    p.clamp_(min=floor)
                    p.div_(p.sum(dim=-1, keepdim=True))
        return loss


def simplex_init(shape: tuple[int, ...], device: torch.device | str | None = None) -> torch.Tensor:
    """Uniform weights on every row (GAEA's initialisation)."""
    return torch.full(shape, 1.0 / shape[-1], device=device)


def softmax_adam(
    params: Iterable[torch.Tensor],
    lr: float = 3e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    weight_decay: float = 1e-3,
) -> torch.optim.Adam:
    """DARTS's architecture optimiser: Adam on the logits (paper defaults)."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)


def gumbel_tau(
    epoch: int, epochs: int, tau_max: float = 10.0, tau_min: float = 0.1, warmup: int = 0
) -> float:
    """GDAS's temperature for the 0-based ``epoch`` of ``epochs``.

    ``tau_max - (tau_max - tau_min) * max(epoch - warmup, 0) / (epochs - 1)``: with no warm-up,
    NB201's GDAS (AutoDL-Projects exps/NAS-Bench-201-algos/GDAS.py lines 237-239: ``tau_max``
    at the first epoch, ``tau_min`` at the last); with a warm-up, GAEA-GDAS (gaea_release
    cnn/architect/architect_egdas.py lines 31-37): ``tau_max`` until the warm-up ends, then the
    same slope, so the last epoch stays above ``tau_min``.
    """
    if not 0 < tau_min <= tau_max:
        raise ValueError(f"need 0 < tau_min <= tau_max, got {tau_min=}, {tau_max=}")
    if epochs <= 1:
        return float(tau_max)
    frac = max(min(epoch, epochs - 1) - max(warmup, 0), 0) / (epochs - 1)
    return float(tau_max - (tau_max - tau_min) * frac)


def gumbel_softmax_hard(
    logits: torch.Tensor, tau: float, generator: torch.Generator
) -> torch.Tensor:
    """A one-hot sample per row whose gradient is that of the tempered softmax (straight-through).

    ``one_hot(argmax) - p.detach() + p`` with ``p = softmax((logits + gumbel) / tau)``, as GDAS
    forms ``hardwts`` (AutoDL-Projects xautodl/models/cell_searchs/search_model_gdas.py lines
    115-121; GAEA-GDAS with ``logits = log theta``: gaea_release
    cnn/architect/architect_egdas.py lines 66-74). The Gumbel noise is drawn on the CPU from
    ``generator`` (so runs are reproducible on any device) and moved to ``logits.device``.
    """
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau!r}")
    eps = 1e-10
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32)
    gumbels = -torch.log(-torch.log(u.clamp(eps, 1 - eps)))
    soft = torch.softmax((logits + gumbels.to(logits.device, logits.dtype)) / tau, dim=-1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


def row_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of every row of non-negative, row-normalised ``weights``."""
    w = weights.detach().double()
    return -(w * w.clamp_min(1e-300).log()).sum(dim=-1)
