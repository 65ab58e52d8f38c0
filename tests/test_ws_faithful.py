"""Weight-sharing methods run as their reference code does by default.

Each test pins one default or behaviour to the code it follows (cited in the implementation's
docstrings): GDAS's straight-through forward on NB201, GAEA-GDAS's and PC-DARTS's settings,
RS-WS's ranking, GAEA's weight-lr schedule and bilevel genotype choice, the per-method
formulation, and GAEA's single-level architecture batches.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.nn import functional as F

from gaea_tune._constraints import OptionError
from gaea_tune.data import BatchLoader
from gaea_tune.weight_sharing import SearchOptions, SupernetSearch
from gaea_tune.weight_sharing._arch_optim import GAEAOptimizer, gumbel_tau
from gaea_tune.weight_sharing._options import default_formulation, default_lr_min
from search_spaces import get_space
from search_spaces.nb201._networks import _SearchCell

SIZE = 8


def _loader(
    n: int, train: bool, seed: int, batch: int = 8, value: int | None = None
) -> BatchLoader:
    g = torch.Generator().manual_seed(1000 + n + seed)
    images = torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    if value is not None:
        images.fill_(value)
    labels = torch.randint(0, 10, (n,), generator=g)
    return BatchLoader(images, labels, batch, train=train, seed=seed)


def _search(method: str, space: str = "nb201", arch_loader: Any = "default", **options: Any):
    opts = SearchOptions(**{"C": 4, "N": 1, "epochs": 2, "batch_size": 8, **options})
    arch = _loader(16, True, 1) if arch_loader == "default" else arch_loader
    return SupernetSearch(
        space, method, opts, _loader(16, True, 0), _loader(8, False, 0), arch,
        num_classes=10, seed=3,
    )  # fmt: skip


class CountingLoader:
    """A loader that counts the batches it yields."""

    def __init__(self, inner: BatchLoader) -> None:
        self.inner, self.batches = inner, 0

    def __iter__(self):
        for batch in self.inner:
            self.batches += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.inner.load_state_dict(state)


# --- 1. GDAS's straight-through estimator on NB201 ------------------------------------------


def test_nb201_gdas_gradient_reaches_every_op_weight_as_forward_gdas() -> None:
    """Each edge outputs ``h[a] * op_a(x) + sum(h[i], i != a)``: the chosen weight's gradient
    is ``<dL/dout, op_a(x)>``, every other weight's ``sum(dL/dout)``, summed over cells; the
    logits get them through the tempered softmax."""
    torch.manual_seed(0)
    net = get_space("nb201").build_supernet(4, 1, 5, True).double()  # ops: skip, 1x1, 3x3, pool
    logits = torch.randn(6, 4, dtype=torch.float64)
    chosen = torch.tensor([2, 1, 3, 2, 3, 1])  # no skip_connect: its output is its input
    logits[torch.arange(6), chosen] += 4.0
    logits.requires_grad_(True)
    tau = 2.0
    p = torch.softmax(logits / tau, dim=1)
    hard = F.one_hot(p.argmax(dim=1), 4).to(p.dtype) - p.detach() + p
    assert torch.equal(p.argmax(dim=1), chosen)

    records: list[tuple[int, torch.Tensor, list[torch.Tensor]]] = []
    for cell in (c for c in net.cells if isinstance(c, _SearchCell)):
        for e, edge in enumerate(cell.edges):
            for op in edge.candidates:

                def hook(module, inputs, output, e=e) -> None:
                    grads: list[torch.Tensor] = []
                    output.register_hook(grads.append)
                    records.append((e, output.detach(), grads))

                op.register_forward_hook(hook)

    x = torch.randn(3, 3, SIZE, SIZE, dtype=torch.float64)
    y = torch.tensor([0, 3, 4])
    loss = F.cross_entropy(net(x, {"cell": hard}, mode="hard"), y)
    loss.backward()  # every gradient, so the op outputs' hooks fire too
    got = logits.grad

    assert len(records) == 3 * 6  # one op per edge in each of the 3 cells
    h = hard.detach()
    grad_h = torch.zeros(6, 4, dtype=torch.float64)
    for e, out, (grad_op,) in records:
        a = int(chosen[e])
        d_edge = grad_op / h[e, a]  # the op's output is scaled by h[e, a]
        grad_h[e, a] += (d_edge * out).sum()
        others = [i for i in range(4) if i != a]
        grad_h[e, others] += d_edge.sum()
    assert (grad_h != 0).all()  # every op's weight gets a gradient
    p = p.detach()
    expected = p * (grad_h - (p * grad_h).sum(dim=1, keepdim=True)) / tau
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-10)


# --- 2. GAEA-GDAS and GDAS settings -----------------------------------------------------------


def test_gaea_gdas_and_gdas_defaults_follow_their_released_configs() -> None:
    gaea = SearchOptions(epochs=250).resolve("gaea-gdas", "nb201")
    assert gaea["arch_lr"] == 0.01 and gaea["entropic_reg"] == 0.01
    assert gaea["arch_warmup_epochs"] == 50
    assert (gaea["tau_max"], gaea["tau_min"]) == (10.0, 0.1)
    gdas = SearchOptions(epochs=250).resolve("gdas", "nb201")
    assert gdas["arch_lr"] == 3e-4 and gdas["arch_weight_decay"] == 1e-3
    assert gdas["arch_warmup_epochs"] == 0 and gdas["entropic_reg"] is None
    # GDAS: 10 at the first epoch, 0.1 at the last, linear in between
    assert gumbel_tau(0, 250) == 10.0 and gumbel_tau(249, 250) == pytest.approx(0.1)
    # GAEA-GDAS: 10 through the warm-up, then the same slope from there
    assert gumbel_tau(50, 250, warmup=50) == 10.0
    assert gumbel_tau(150, 250, warmup=50) == pytest.approx(10 - 9.9 * 100 / 249)
    # a default warm-up that leaves no architecture step is refused, naming its origin
    with pytest.raises(OptionError, match="arch_warmup_epochs: 50 .gaea-gdas's default"):
        SearchOptions.validate_params("search", {"epochs": 25}, space="nb201", method="gaea-gdas")


def test_gaea_gdas_waits_out_its_warmup_then_anneals_tau_from_there() -> None:
    search = _search("gaea-gdas", formulation="erm", epochs=3, arch_warmup_epochs=1, arch_lr=1.0)
    theta0 = search.arch.ops["cell"].detach().clone()  # type: ignore[union-attr]
    taus = []
    m = search.run_epoch()
    taus.append(m["tau"])
    torch.testing.assert_close(search.arch.ops["cell"].detach(), theta0)  # type: ignore[union-attr]
    taus += [search.run_epoch()["tau"] for _ in range(2)]
    assert not torch.equal(search.arch.ops["cell"].detach(), theta0)  # type: ignore[union-attr]
    assert taus == pytest.approx([10.0, 10.0, 10.0 - 9.9 / 2])


def test_entropic_regulariser_adds_its_gradient_to_the_architecture_step() -> None:
    theta = torch.softmax(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    grads = {}
    for reg in (0.0, 0.5):
        search = _search("gaea-darts", formulation="erm", entropic_reg=reg)
        with torch.no_grad():
            search.arch.ops["cell"].copy_(theta)  # type: ignore[union-attr]
        search.arch_opt.step = lambda: None  # type: ignore[method-assign, union-attr]
        x, y = next(iter(_loader(8, False, 5)))
        search._arch_step(*search._prep(x, y), None)
        grads[reg] = search.arch.ops["cell"].grad.clone()  # type: ignore[union-attr]
    expected = grads[0.0] + 0.5 * (torch.log(4 * theta) + 1)
    torch.testing.assert_close(grads[0.5], expected, rtol=1e-5, atol=1e-6)


def test_gaea_clamps_at_its_floor_of_1e_5() -> None:
    theta = torch.full((1, 2), 0.5, requires_grad=True)
    opt = GAEAOptimizer([theta], lr=1.0)
    theta.grad = torch.tensor([[0.0, 100.0]])
    opt.step()
    assert float(theta.detach()[0, 1]) == pytest.approx(1e-5 / (1 + 1e-5))


# --- 3. PC-DARTS: warm-up and lr floor --------------------------------------------------------


def test_pcdarts_defaults_warm_up_15_epochs_and_anneal_to_zero_on_darts() -> None:
    pc = SearchOptions(epochs=50).resolve("pcdarts", "darts")
    assert pc["arch_warmup_epochs"] == 15 and pc["lr_min"] == 0.0
    assert pc["lr_cosine_epochs"] == 50
    gaea_pc = SearchOptions(epochs=50).resolve("gaea-pcdarts", "darts")
    assert gaea_pc["arch_warmup_epochs"] == 0 and gaea_pc["lr_min"] == 0.0
    assert default_lr_min("pcdarts", "nb201") == 0.001
    assert default_lr_min("gaea-darts", "nb201") == 0.001
    with pytest.raises(OptionError, match="arch_warmup_epochs: 15"):
        SearchOptions.validate_params("search", {"epochs": 10}, space="darts", method="pcdarts")


def test_pcdarts_takes_no_architecture_step_during_its_warmup() -> None:
    search = _search("pcdarts", space="darts", arch_warmup_epochs=1, arch_lr=0.1)
    before = [p.detach().clone() for p in search.arch.parameters()]  # type: ignore[union-attr]
    search.run_epoch()
    after = [p.detach() for p in search.arch.parameters()]  # type: ignore[union-attr]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert search.scheduler.eta_min == 0.0
    search.run_epoch()
    moved = [p.detach() for p in search.arch.parameters()]  # type: ignore[union-attr]
    assert not all(torch.equal(a, b) for a, b in zip(before, moved))


# --- 4. RS-WS ---------------------------------------------------------------------------------


def test_rsws_scores_each_candidate_on_its_own_validation_batches() -> None:
    assert SearchOptions().rsws_candidates == 100 and SearchOptions().rsws_candidate_batches == 1
    for per_candidate in (1, 2):
        opts = SearchOptions(
            C=4, N=1, epochs=1, batch_size=8, rsws_candidates=7,
            rsws_candidate_batches=per_candidate,
        )  # fmt: skip
        valid = CountingLoader(_loader(16, False, 0, batch=4))
        search = SupernetSearch(
            "nb201", "rsws", opts, _loader(16, True, 0), valid, num_classes=10, seed=0
        )
        search.run_epoch()
        assert valid.batches == 7 * per_candidate


def test_rsws_keeps_the_first_best_candidate_of_the_latest_ranking() -> None:
    search = _search("rsws", arch_loader=None, epochs=1, rsws_candidates=4)
    scored: list[torch.Tensor] = []
    scores = iter([10.0, 30.0, 30.0, 20.0])

    def score(weights, edges) -> float:
        scored.append(weights["cell"].cpu())
        return next(scores)

    search._candidate_accuracy = score  # type: ignore[method-assign]
    metrics = search.run_epoch()
    assert metrics["search_signal"] == 30.0
    assert search.genotype() == search.space.discretize({"cell": scored[1]}, search.ops)


def test_rsws_samples_none_on_nb201_when_the_space_has_it() -> None:
    search = _search("rsws", arch_loader=None, exclude_none=False)
    none = search.ops.index("none")
    picks = torch.cat([search._sample_single()[0]["cell"].argmax(dim=1) for _ in range(40)])
    assert (picks == none).any()


# --- 5. GAEA's weight-lr schedule and bilevel genotype ----------------------------------------


def test_gaea_weight_lr_follows_a_50_epoch_cosine() -> None:
    search = _search("gaea-darts", formulation="erm")  # epochs=2
    assert search.settings["lr_cosine_epochs"] == 50
    search.run_epoch()
    lr = search.weight_opt.param_groups[0]["lr"]
    assert lr == pytest.approx(0.001 + 0.024 * (1 + math.cos(math.pi / 50)) / 2)
    assert _search("darts").settings["lr_cosine_epochs"] == 2  # DARTS: over its own epochs
    assert SearchOptions(epochs=80).resolve("gaea-darts", "nb201")["lr_cosine_epochs"] == 80


def test_bilevel_gaea_keeps_the_genotype_of_its_best_validation_epoch() -> None:
    assert SearchOptions().resolve("gaea-darts", "darts")["genotype_from"] == "best_valid"
    assert SearchOptions().resolve("gaea-darts", "nb201")["genotype_from"] == "current"
    assert SearchOptions().resolve("darts", "nb201")["genotype_from"] == "current"
    search = _search("gaea-darts", formulation="bilevel", arch_lr=1e-8)
    accuracies = iter([50.0, 40.0])
    search.evaluate = lambda w, e=None: next(accuracies)  # type: ignore[method-assign]

    def favour(column: int) -> None:
        theta = torch.full((6, 4), 0.01)
        theta[:, column] = 0.97
        with torch.no_grad():
            search.arch.ops["cell"].copy_(theta)  # type: ignore[union-attr]

    favour(1)
    first = search.run_epoch()
    favour(2)
    second = search.run_epoch()
    assert second["genotype"] == first["genotype"] == str(search.genotype())
    assert search.genotype("current") != search.genotype()
    assert second["search_signal"] == 50.0 and second["valid_acc"] == 40.0


# --- 6. Bilevel wherever the method's own code is bilevel -------------------------------------


def test_formulation_defaults_per_method_and_space() -> None:
    for space in ("nb201", "darts"):
        for method in ("darts", "gdas", "pcdarts"):
            assert default_formulation(method, space) == "bilevel"
    for method in ("gaea-darts", "gaea-gdas", "gaea-pcdarts"):
        assert default_formulation(method, "nb201") == "erm"
        assert default_formulation(method, "darts") == "bilevel"
    opts = SearchOptions(C=4, N=1, epochs=2)
    assert opts.formulation is None
    with pytest.raises(ValueError, match="bilevel formulation needs an arch_loader"):
        SupernetSearch("nb201", "darts", opts, _loader(8, True, 0), _loader(8, False, 0),
                       num_classes=10)  # fmt: skip


# --- 7. GAEA single level: the architecture step draws its own batch --------------------------


def test_erm_architecture_step_takes_its_own_batch_of_training_data() -> None:
    arch_loader = _loader(16, True, 7, value=255)  # distinguishable from the training images
    search = _search("gaea-darts", arch_loader=arch_loader, epochs=1)
    assert search.formulation == "erm" and search.settings["erm_arch_batch"] == "own"
    seen: list[torch.Tensor] = []
    step = search._arch_step

    def recording(x, y, tau):
        seen.append(x.detach().clone())
        return step(x, y, tau)

    search._arch_step = recording  # type: ignore[method-assign]
    search.run_epoch()
    assert len(seen) == 2  # one per training batch
    expected = torch.cat([x for x, _ in _loader(16, True, 7, value=255)])
    torch.testing.assert_close(torch.cat(seen), expected)
    with pytest.raises(ValueError, match="erm_arch_batch='shared'"):
        _search("gaea-darts", arch_loader=None)
    _search("gaea-darts", arch_loader=None, erm_arch_batch="shared")  # the old behaviour


def test_from_splits_gives_erm_an_arch_loader_over_the_training_split() -> None:
    from gaea_tune.data import load_splits

    splits = load_splits("cifar10-subset", resolution=8, max_train=16, max_valid=16, max_test=16)
    opts = SearchOptions(C=4, N=1, epochs=1, batch_size=8)
    erm = SupernetSearch.from_splits("nb201", "gaea-darts", opts, splits, seed=4)
    assert erm.formulation == "erm"
    assert torch.equal(erm.arch_loader.images, erm.train_loader.images)
    assert erm.arch_loader.seed != erm.train_loader.seed
    bilevel = SupernetSearch.from_splits("nb201", "darts", opts, splits, seed=4)
    assert bilevel.formulation == "bilevel"
    assert torch.equal(bilevel.arch_loader.images, bilevel.valid_loader.images)
