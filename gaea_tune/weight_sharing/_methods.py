"""Weight-sharing search methods by name and the architecture parameters each one keeps."""

from __future__ import annotations

import torch

from gaea_tune.weight_sharing._arch_optim import (
    GAEAOptimizer,
    gumbel_softmax_hard,
    simplex_init,
    softmax_adam,
)
from gaea_tune.weight_sharing._options import METHODS, Method, get_method

__all__ = ["METHODS", "ArchParameters", "Method", "get_method"]


class ArchParameters:
    """Architecture parameters of one search: op weights per cell type (+ PC-DARTS edge betas).

    ``simplex``: tensors hold the mixing weights (rows on simplices, initialised uniform).
    ``softmax``: tensors hold logits (DARTS's ``1e-3 * randn`` initialisation, drawn from
    ``generator``); mixing weights are their row-softmax. Edge betas are kept per node (one
    vector per group of incoming edges) so that each node's betas form their own simplex.
    """

    def __init__(
        self,
        method: Method,
        shapes: dict[str, tuple[int, int]],
        edge_groups: dict[str, list[list[int]]] | None,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        if not method.has_arch:
            raise ValueError(f"method {method.name!r} has no architecture parameters")
        self.method = method
        self.shapes = dict(shapes)
        self.device = device
        self.ops: dict[str, torch.Tensor] = {}
        for cell, shape in self.shapes.items():
            self.ops[cell] = self._init(shape, generator)
        self.betas: dict[str, list[torch.Tensor]] = {}
        self.groups: dict[str, list[list[int]]] = {}
        if method.edge_betas:
            if edge_groups is None:
                raise ValueError(f"method {method.name!r} needs the space's edge groups")
            for cell in self.shapes:
                groups = [list(g) for g in edge_groups[cell]]
                covered = sorted(e for g in groups for e in g)
                if covered != list(range(self.shapes[cell][0])):
                    raise ValueError(
                        f"edge groups of {cell!r} must cover every edge once: {groups}"
                    )
                self.groups[cell] = groups
                self.betas[cell] = [self._init((len(g),), generator) for g in groups]

    def _init(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        if self.method.geometry == "simplex":
            t = simplex_init(shape)
        else:
            t = 1e-3 * torch.randn(shape, generator=generator)
        return t.to(self.device).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        params = [self.ops[c] for c in self.shapes]
        for c in self.betas:
            params.extend(self.betas[c])
        return params

    def make_optimizer(self, lr: float, weight_decay: float | None) -> torch.optim.Optimizer:
        if self.method.geometry == "simplex":
            return GAEAOptimizer(self.parameters(), lr=lr)
        return softmax_adam(
            self.parameters(), lr=lr, weight_decay=1e-3 if weight_decay is None else weight_decay
        )

    def _normalise(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.method.geometry == "simplex" else torch.softmax(t, dim=-1)

    def probs(self) -> dict[str, torch.Tensor]:
        """Per cell type, the ``[E, K]`` op distribution (differentiable)."""
        return {c: self._normalise(t) for c, t in self.ops.items()}

    def entropic_penalty(self) -> torch.Tensor:
        """GAEA's entropic regulariser ``sum(theta * log(K * theta))`` over every cell type's op
        weights (the KL divergence of each edge's weights from uniform; edge betas are not
        included), as gaea_release cnn/architect/architect_egdas.py lines 134-144 adds it
        (scaled by its ``arch_weight_decay``) to the architecture loss. Simplex methods only."""
        if self.method.geometry != "simplex":
            raise ValueError(f"method {self.method.name!r} has no simplex weights to regularise")
        total = torch.zeros((), device=self.device)
        for theta in self.ops.values():
            k = theta.shape[-1]
            total = total + (theta * torch.log(theta.clamp_min(1e-30) * k)).sum()
        return total

    def edge_weights(self) -> dict[str, torch.Tensor] | None:
        """Per cell type, the ``[E]`` edge weights (PC-DARTS), or ``None``."""
        if not self.betas:
            return None
        out = {}
        for cell, vectors in self.betas.items():
            flat = torch.cat([self._normalise(v) for v in vectors])
            order = torch.tensor([e for g in self.groups[cell] for e in g])
            out[cell] = flat[torch.argsort(order).to(flat.device)]
        return out

    def mixing(
        self, tau: float | None, generator: torch.Generator
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """Mixing weights (and edge weights) for one training forward pass."""
        probs = self.probs()
        if self.method.gumbel:
            if tau is None:
                raise ValueError("gumbel sampling needs a temperature")
            if self.method.geometry == "simplex":  # GAEA-GDAS samples from theta itself
                logits = {c: p.clamp_min(1e-30).log() for c, p in probs.items()}
            else:
                logits = dict(self.ops)
            probs = {c: gumbel_softmax_hard(v, tau, generator) for c, v in logits.items()}
        return probs, self.edge_weights()

    def state_dict(self) -> dict[str, object]:
        return {
            "ops": {c: t.detach().cpu().clone() for c, t in self.ops.items()},
            "betas": {c: [v.detach().cpu().clone() for v in vs] for c, vs in self.betas.items()},
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        with torch.no_grad():
            for c, t in state["ops"].items():  # type: ignore[attr-defined]
                self.ops[c].copy_(t)
            for c, vs in state["betas"].items():  # type: ignore[attr-defined]
                for mine, theirs in zip(self.betas[c], vs):
                    mine.copy_(theirs)
