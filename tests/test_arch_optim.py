"""Architecture optimisers: the GAEA exponentiated-gradient update and Gumbel sampling."""

from __future__ import annotations

import math

import pytest
import torch

from gaea_tune.weight_sharing import (
    GAEAOptimizer,
    gumbel_softmax_hard,
    gumbel_tau,
    row_entropy,
    simplex_init,
    softmax_adam,
)


def _step(theta: torch.Tensor, grad: torch.Tensor, lr: float, floor: float = 1e-8) -> None:
    opt = GAEAOptimizer([theta], lr=lr, floor=floor)
    theta.grad = grad
    opt.step()


def test_gaea_update_keeps_every_edge_on_the_simplex() -> None:
    g = torch.Generator().manual_seed(0)
    theta = torch.softmax(torch.randn(6, 5, generator=g), dim=1).requires_grad_(True)
    opt = GAEAOptimizer([theta], lr=0.5, floor=1e-6)
    for _ in range(50):
        theta.grad = 100 * torch.randn(6, 5, generator=g)  # large gradients must not overflow
        opt.step()
        assert torch.all(theta >= 1e-6 * 0.999)
        torch.testing.assert_close(theta.sum(dim=1), torch.ones(6), rtol=0, atol=1e-6)


def test_gaea_update_matches_hand_computed_values() -> None:
    theta = torch.tensor([[0.5, 0.3, 0.2], [0.25, 0.25, 0.5]], requires_grad=True)
    grad = torch.tensor([[1.0, 0.0, -1.0], [2.0, -2.0, 0.5]])
    lr = 0.5
    _step(theta, grad, lr)
    expected = []
    for row_t, row_g in zip(([0.5, 0.3, 0.2], [0.25, 0.25, 0.5]), grad.tolist()):
        unnorm = [t * math.exp(-lr * gr) for t, gr in zip(row_t, row_g)]
        expected.append([u / sum(unnorm) for u in unnorm])
    torch.testing.assert_close(theta.detach(), torch.tensor(expected), rtol=1e-6, atol=1e-7)


def test_gaea_floor_clamps_then_renormalises() -> None:
    theta = torch.tensor([[0.5, 0.5]], requires_grad=True)
    _step(theta, torch.tensor([[0.0, 100.0]]), lr=1.0, floor=1e-3)
    # exp(-100) is far below the floor: clamp to 1e-3, then renormalise
    expected = torch.tensor([[1.0 / 1.001, 1e-3 / 1.001]])
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-5, atol=1e-8)


def test_gaea_rejects_bad_hyperparameters() -> None:
    theta = simplex_init((2, 3)).requires_grad_(True)
    with pytest.raises(ValueError, match="lr must be"):
        GAEAOptimizer([theta], lr=0.0)
    with pytest.raises(ValueError, match="floor must be"):
        GAEAOptimizer([theta], lr=0.1, floor=1.5)


def _steps_to_vertex(use_gaea: bool, grad_of, lr: float, target: int, limit: int = 5000) -> int:
    """Steps until the weight of ``target`` exceeds 0.99 (``limit`` if never)."""
    k = 4
    if use_gaea:
        param = simplex_init((1, k)).requires_grad_(True)
        opt: torch.optim.Optimizer = GAEAOptimizer([param], lr=lr)
    else:
        param = torch.zeros(1, k, requires_grad=True)
        opt = torch.optim.SGD([param], lr=lr)
    for step in range(1, limit + 1):
        opt.zero_grad()
        w = param if use_gaea else torch.softmax(param, dim=1)
        loss = grad_of(w)
        loss.backward()
        opt.step()
        current = (param if use_gaea else torch.softmax(param, dim=1)).detach()
        if float(current[0, target]) > 0.99:
            return step
    return limit


@pytest.mark.parametrize(
    "objective",
    [
        # linear loss <c, w>: minimised at the vertex of the smallest cost
        lambda w: (w * torch.tensor([[1.0, 0.6, 0.3, 0.0]])).sum(),
        # convex quadratic pulling toward vertex 3 from a point outside the simplex
        lambda w: ((w - torch.tensor([[0.0, 0.0, 0.0, 1.5]])) ** 2).sum(),
    ],
    ids=["linear", "quadratic"],
)
def test_gaea_reaches_a_vertex_faster_than_softmax_gradient_descent(objective) -> None:
    lr = 0.5
    gaea = _steps_to_vertex(True, objective, lr, target=3)
    softmax = _steps_to_vertex(False, objective, lr, target=3)
    assert gaea < 5000
    assert gaea * 2 <= softmax, (gaea, softmax)


def test_softmax_adam_uses_darts_defaults() -> None:
    alpha = torch.zeros(2, 3, requires_grad=True)
    group = softmax_adam([alpha]).param_groups[0]
    assert group["lr"] == 3e-4 and group["betas"] == (0.5, 0.999) and group["weight_decay"] == 1e-3


def test_gumbel_tau_anneals_from_max_to_min() -> None:
    assert gumbel_tau(0, 10) == 10.0
    assert gumbel_tau(9, 10) == pytest.approx(0.1)
    assert gumbel_tau(3, 10) == pytest.approx(10 - 9.9 * 3 / 9)
    with pytest.raises(ValueError, match="tau_min"):
        gumbel_tau(0, 10, tau_max=0.1, tau_min=1.0)


def test_gumbel_softmax_hard_is_one_hot_with_soft_gradients() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]], requires_grad=True)
    sample = gumbel_softmax_hard(logits, tau=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample.detach().sum(dim=1), torch.ones(2))
    assert set(sample.detach().flatten().tolist()) <= {0.0, 1.0}
    (sample * torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])).sum().backward()
    assert logits.grad is not None and torch.all(torch.isfinite(logits.grad))
    assert float(logits.grad.abs().sum()) > 0


def test_gumbel_samples_follow_the_distribution() -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1]])
    gen = torch.Generator().manual_seed(1)
    counts = torch.zeros(3)
    for _ in range(2000):
        counts += gumbel_softmax_hard(probs.log(), tau=1.0, generator=gen).detach()[0]
    torch.testing.assert_close(counts / 2000, probs[0], atol=0.04, rtol=0)


def test_row_entropy_uniform_and_vertex() -> None:
    values = row_entropy(torch.tensor([[0.25] * 4, [1.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(values, torch.tensor([math.log(4), 0.0], dtype=torch.float64))
