"""SupernetSearch: every method on both spaces, exact resume, options and failure modes."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from gaea_tune.data import BatchLoader
from gaea_tune.weight_sharing import METHODS, SearchOptions, SupernetSearch, get_method

SIZE = 16


def _loader(n: int, train: bool, seed: int, batch: int = 8, size: int = SIZE) -> BatchLoader:
    g = torch.Generator().manual_seed(1000 + n + seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return BatchLoader(images, labels, batch, train=train, seed=seed)


def _search(
    method: str, space: str = "nb201", n_train: int = 24, size: int = SIZE, **options: Any
) -> SupernetSearch:
    defaults: dict[str, Any] = {"C": 4, "N": 1, "epochs": 3, "batch_size": 8}
    if get_method(method).has_arch:  # architecture steps from the first epoch in these short runs
        defaults["arch_warmup_epochs"] = 0
    defaults.update(options)
    opts = SearchOptions(**defaults)
    return SupernetSearch(
        space,
        method,
        opts,
        _loader(n_train, True, 0, size=size),
        _loader(8, False, 0, size=size),
        _loader(12, True, 1, size=size),  # 12 images: the arch loader wraps mid-epoch
        num_classes=10,
        seed=3,
    )


REQUIRED = {"epoch", "train_loss", "train_acc", "valid_acc", "search_signal", "entropy",
            "genotype", "arch_weights"}  # fmt: skip


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_runs_an_epoch_on_nb201(method: str) -> None:
    search = _search(method, formulation="bilevel" if method.startswith("gaea") else "erm")
    metrics = search.run_epoch()
    assert REQUIRED <= set(metrics)
    assert metrics["epoch"] == 1
    genotype = search.space.parse(metrics["genotype"])
    assert "none" not in genotype.ops  # excluded on NB201 by default
    (weights,) = metrics["arch_weights"]
    assert len(weights) == 6 and all(len(row) == 4 for row in weights)
    assert all(abs(sum(row) - 1) < 1e-5 for row in weights)
    assert 0 <= metrics["valid_acc"] <= 100 and torch.isfinite(torch.tensor(metrics["train_loss"]))


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_runs_an_epoch_on_darts(method: str) -> None:
    search = _search(method, space="darts", n_train=8, size=8, N=1)
    metrics = search.run_epoch()
    assert REQUIRED <= set(metrics)
    assert [len(w) for w in metrics["arch_weights"]] == [14, 14]  # normal, reduce
    assert search.space.parse(metrics["genotype"]) == search.genotype()


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("gaea-darts", {"formulation": "bilevel", "genotype_from": "epoch_mean"}),
        ("darts", {"formulation": "erm", "erm_joint": True}),
        ("gaea-gdas", {"formulation": "erm"}),
        ("pcdarts", {"formulation": "bilevel"}),
        ("rsws", {}),
    ],
)
def test_resume_from_state_dict_reproduces_the_uninterrupted_run(method: str, options) -> None:
    reference = _search(method, **options)
    expected = [reference.run_epoch() for _ in range(3)]

    first = _search(method, **options)
    got = [first.run_epoch()]
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    del first
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed = _search(method, **options)
    resumed.load_state_dict(state)
    got += [resumed.run_epoch() for _ in range(2)]
    for a, b in zip(expected, got):
        a.pop("epoch_seconds"), b.pop("epoch_seconds")
        assert a == b


def test_gaea_weights_stay_on_simplices_and_sharpen_with_a_large_arch_lr() -> None:
    search = _search("gaea-darts", arch_lr=3.0, epochs=4)
    start = search.entropy()
    for _ in range(4):
        metrics = search.run_epoch()
    assert metrics["entropy"] < start
    theta = search.arch.ops["cell"]  # type: ignore[union-attr]
    torch.testing.assert_close(theta.detach().sum(dim=1), torch.ones(6))
    assert float(theta.detach().min()) >= 0


def test_pcdarts_edge_betas_are_simplices_per_node() -> None:
    search = _search("gaea-pcdarts", arch_lr=1.0)
    search.run_epoch()
    edges = search.edge_weights()
    assert edges is not None
    (betas,) = edges
    groups = search.space.edge_groups()["cell"]
    for group in groups:
        assert abs(sum(betas[e] for e in group) - 1) < 1e-5


def test_non_finite_loss_raises_a_clear_error() -> None:
    class NaNLoader:
        def __iter__(self):
            yield torch.full((4, 3, 8, 8), float("nan")), torch.zeros(4, dtype=torch.int64)

        def state_dict(self) -> dict[str, int]:
            return {}

        def load_state_dict(self, state: dict[str, int]) -> None:
            pass

    opts = SearchOptions(C=4, N=1, epochs=1, batch_size=4)
    search = SupernetSearch(
        "nb201", "gaea-darts", opts, NaNLoader(), NaNLoader(), NaNLoader(), num_classes=10, seed=0
    )
    with pytest.raises(FloatingPointError, match="non-finite"):
        search.run_epoch()


def test_options_reject_bad_values_and_unknown_keys() -> None:
    with pytest.raises(ValueError, match="formulation"):
        SearchOptions(formulation="trilevel")
    with pytest.raises(ValueError, match="search: unknown key 'arch_learning_rate'"):
        SearchOptions.from_dict({"arch_learning_rate": 0.1})
    with pytest.raises(ValueError, match="batch_size"):
        SearchOptions(batch_size=0)
    assert SearchOptions.from_dict({"lr": 1}).lr == 1.0
    with pytest.raises(ValueError, match="unknown search method"):
        get_method("enas")


def test_bilevel_needs_an_arch_loader() -> None:
    opts = SearchOptions(C=4, N=1, formulation="bilevel")
    with pytest.raises(ValueError, match="arch_loader"):
        SupernetSearch(
            "nb201", "darts", opts, _loader(8, True, 0), _loader(8, False, 0), num_classes=10
        )


def test_resume_rejects_a_checkpoint_of_another_method() -> None:
    state = _search("darts").state_dict()
    with pytest.raises(ValueError, match="checkpoint is for method"):
        _search("gaea-darts").load_state_dict(state)
