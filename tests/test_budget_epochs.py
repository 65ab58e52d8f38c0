"""A weight-sharing search given a budget and no epoch count plans its length from the budget."""

from __future__ import annotations

import math

import pytest

from gaea_tune.weight_sharing import SearchOptions, SupernetSearch


def _search(method: str = "darts", epochs: int = 25) -> SupernetSearch:
    from gaea_tune.data import load_splits

    splits = load_splits("cifar10-subset", resolution=8, max_train=32, max_valid=16)
    options = SearchOptions(C=4, N=1, epochs=epochs, batch_size=16, eval_batch_size=16,
                            formulation="erm")  # fmt: skip
    return SupernetSearch.from_splits("nb201", method, options, splits, seed=0)


def test_set_epochs_replans_the_cosine_from_where_it_stands():
    search = _search(epochs=25)
    search.run_epoch()
    search.set_epochs(4)
    lr0, low = 0.025, float(search.scheduler.eta_min)
    expected = low + (lr0 - low) * (1 + math.cos(math.pi * 1 / 4)) / 2
    assert search.weight_opt.param_groups[0]["lr"] == pytest.approx(expected)
    search.run_epoch()
    expected = low + (lr0 - low) * (1 + math.cos(math.pi * 2 / 4)) / 2
    assert search.weight_opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-6)
    assert search.options.epochs == 4
    state = search.state_dict()
    again = _search(epochs=25)
    again.load_state_dict(state)
    assert again.options.epochs == 4 and again.scheduler.T_max == 4
    with pytest.raises(ValueError, match="epochs already run"):
        search.set_epochs(1)


def test_the_budget_sets_the_epoch_count():
    from gaea_tune.tune._supernet_trainable import _fit_epochs_to_budget

    search = _search(epochs=25)
    search.run_epoch()
    _fit_epochs_to_budget(search, epoch_cost=2.0, budget=10.0, spent=3.0)
    assert search.options.epochs == 1 + 4  # 7 s left at 2 s an epoch: 3.5, nearest is 4
    nearer = _search(epochs=25)
    nearer.run_epoch()
    _fit_epochs_to_budget(nearer, epoch_cost=32.0, budget=120.0, spent=32.0)
    assert nearer.options.epochs == 1 + 3  # 88 s left: 2.75 epochs; 2 would leave 24 s unspent
    fewer = _search(epochs=25)
    fewer.run_epoch()
    _fit_epochs_to_budget(fewer, epoch_cost=30.0, budget=120.0, spent=30.0)
    assert fewer.options.epochs == 1 + 3  # exactly 3 more
    gdas = _search("gaea-gdas", epochs=60)
    gdas.run_epoch()
    _fit_epochs_to_budget(gdas, epoch_cost=2.0, budget=10.0, spent=3.0)
    assert gdas.options.epochs == gdas.arch_warmup + 1  # at least one architecture epoch


def test_resolved_settings_say_where_the_epochs_come_from():
    from gaea_tune.config import parse_config
    from gaea_tune.resolve import resolved_settings

    config = parse_config({"name": "b", "budget": {"device_seconds": 30},
                           "methods": {"darts": {}, "gaea-darts": {"epochs": 7}}})  # fmt: skip
    methods = resolved_settings(config)["methods"]
    assert methods["darts"]["epochs"].startswith("from the budget")
    assert methods["gaea-darts"]["epochs"] == 7
