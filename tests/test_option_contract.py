"""The YAML validator accepts exactly what the runtime accepts.

For every method and mode, every option key known anywhere (plus an unknown one) with valid and
invalid example values is given to both the registry (what ``gaea-tune validate`` uses) and the
runtime consumer that will actually read it (searcher construction plus a first suggestion, the
standalone training loop, the supernet trainable's config check, the supernet itself). Any
disagreement fails the test, listing every mismatch.
"""

from __future__ import annotations

import pytest
import torch

from gaea_tune.baselines import make_searcher, tabular_options
from gaea_tune.baselines._options import TRAINING_CONSTRAINTS, live_search_constraints
from gaea_tune.baselines._train import StandaloneTraining, seeded_network
from gaea_tune.config import ConfigError, parse_config
from gaea_tune.registry import METHODS, STANDALONE_METHODS, WEIGHT_SHARING_METHODS
from gaea_tune.weight_sharing import DEFAULT_PARTIAL_K, get_method
from search_spaces import get_space
from search_spaces.nb201 import NB201Space


def _all_constraints() -> dict[str, object]:
    """Every option key of every table, with one constraint each (for example values)."""
    merged: dict[str, object] = {}
    for entry in METHODS.values():
        for mode in ("live", "tabular"):
            if entry.family == "weight-sharing" and mode == "tabular":
                continue
            merged.update(entry.constraints(mode))
    return merged


ALL = _all_constraints()


def _cases(method: str, mode: str) -> list[tuple[str, object]]:
    own = METHODS[method].constraints(mode)
    cases: list[tuple[str, object]] = [("no_such_option", 1)]
    for key, constraint in ALL.items():
        valid, invalid = (own.get(key) or constraint).examples()
        values = valid + invalid if key in own else valid[:1]
        cases.extend((key, value) for value in values)
    return cases


def _registry_accepts(method: str, mode: str, options: dict, C: int = 8) -> bool:
    try:
        METHODS[method].validate("m", mode, options, space="nb201", C=C)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def tiny_splits():
    from gaea_tune.data import load_splits

    return load_splits("cifar10-subset", resolution=8, max_train=16, max_valid=16, max_test=16)


def _live_runtime_accepts(method: str, options: dict, splits) -> bool:
    from gaea_tune.tune._searchers import make_tune_components

    space = get_space("nb201")
    try:
        options = dict(options)
        options.pop("max_concurrent", None)  # read by the runner; checked as an int below
        param_space, search_alg, _ = make_tune_components(method, space, options, 0, 4)
        search_alg.set_search_properties("search_signal", "max", param_space)
        if search_alg.suggest("trial-0") is None:
            return False
        training = {k: v for k, v in options.items() if k in TRAINING_CONSTRAINTS}
        network = seeded_network(space, space.sample(__import__("numpy").random.default_rng(0)),
                                 4, 1, splits.num_classes, 0)  # fmt: skip
        StandaloneTraining(network, splits, **{"epochs": 1, **training})
    except (ValueError, TypeError):
        return False
    return True


def _tabular_runtime_accepts(method: str, options: dict) -> bool:
    try:
        searcher = make_searcher(method, NB201Space(), 0, **tabular_options(method, options))
        proposal = searcher.ask()
        searcher.tell(proposal, 90.0)
    except (ValueError, TypeError):
        return False
    return True


@pytest.mark.parametrize("method", STANDALONE_METHODS)
def test_live_baseline_options_agree_with_the_runtime(method, tiny_splits):
    mismatches = []
    for key, value in _cases(method, "live"):
        options = {key: value}
        if key == "max_concurrent":
            continue  # consumed by the runner (TuneConfig), covered in test_runner_keys
        registry = _registry_accepts(method, "live", options)
        runtime = _live_runtime_accepts(method, options, tiny_splits)
        if registry != runtime:
            mismatches.append(f"{key}={value!r}: validator {registry}, runtime {runtime}")
    assert not mismatches, f"live {method}: " + "; ".join(mismatches)


@pytest.mark.parametrize("method", STANDALONE_METHODS)
def test_tabular_options_agree_with_the_runtime(method):
    mismatches = []
    for key, value in _cases(method, "tabular"):
        registry = _registry_accepts(method, "tabular", {key: value})
        runtime = _tabular_runtime_accepts(method, {key: value})
        if registry != runtime:
            mismatches.append(f"{key}={value!r}: validator {registry}, runtime {runtime}")
    assert not mismatches, f"tabular {method}: " + "; ".join(mismatches)


@pytest.mark.parametrize("method", WEIGHT_SHARING_METHODS)
def test_weight_sharing_options_agree_with_the_trainable(method):
    from gaea_tune.tune._supernet_trainable import split_config

    mismatches = []
    for key, value in _cases(method, "live"):
        registry = _registry_accepts(method, "live", {key: value})
        try:
            split_config({"space": "nb201", "method": method, "C": 8, "N": 1, key: value})
            runtime = True
        except ValueError:
            runtime = False
        if registry != runtime:
            mismatches.append(f"{key}={value!r}: validator {registry}, runtime {runtime}")
    assert not mismatches, f"{method}: " + "; ".join(mismatches)


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
@pytest.mark.parametrize("method", ["pcdarts", "gaea-pcdarts"])
def test_partial_channel_width_agrees_with_the_supernet(space_name, method):
    """PC-DARTS's partial_k against the supernet that is actually built and run."""
    space = get_space(space_name)
    mismatches = []
    for C in (4, 6):
        for k in (None, 1, 3, 4):
            options = {} if k is None else {"partial_k": k}
            try:
                METHODS[method].validate("m", "live", options, space=space_name, C=C)
                registry = True
            except ValueError:
                registry = False
            effective = k or DEFAULT_PARTIAL_K[space_name]
            try:
                net = space.build_supernet(C, 1, 10, False, partial_k=effective)
                shapes = dict(space.arch_shapes(False))
                weights = {c: torch.full(s, 1.0 / s[1]) for c, s in shapes.items()}
                net(torch.randn(2, 3, 8, 8), weights, mode=get_method(method).mode)
                runtime = True
            except (ValueError, RuntimeError):
                runtime = False
            if registry != runtime:
                mismatches.append(f"C={C} partial_k={k}: validator {registry}, runtime {runtime}")
    assert not mismatches, "; ".join(mismatches)


def test_runner_keys_and_cross_option_rules_reach_the_config():
    base = {
        "name": "t",
        "space": {"name": "nb201", "C": 8, "N": 1},
        "budget": {"device_seconds": 10},
    }
    with pytest.raises(ConfigError, match="methods.pcdarts.partial_k: 3 does not divide C=8"):
        parse_config({**base, "methods": {"pcdarts": {"partial_k": 3}}})
    with pytest.raises(ConfigError, match="methods.tpe: unknown key 'population_size'"):
        parse_config({**base, "methods": {"tpe": {"population_size": 5}}})
    with pytest.raises(ConfigError, match="methods.random: unknown key 'reduction_factor'"):
        parse_config({**base, "methods": {"random": {"reduction_factor": 3}}})
    with pytest.raises(ConfigError, match="methods.darts.partial_k: method 'darts' does not use"):
        parse_config({**base, "methods": {"darts": {"partial_k": 2}}})
    with pytest.raises(ConfigError, match="max_concurrent: 0 is out of range"):
        parse_config({**base, "methods": {"rea": {"max_concurrent": 0}}})
    config = parse_config({**base, "methods": {"bohb": {"num_samples": 8}, "rea": {}}})
    assert config.methods[0].options == {"num_samples": 8}
    assert "num_samples" in live_search_constraints("bohb")
