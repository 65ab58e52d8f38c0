"""One candidate-op set per comparison: every method, of both families, searches the same space."""

from __future__ import annotations

import pytest

from gaea_tune.config import ConfigError, parse_config
from gaea_tune.report import markdown_table

BASE = {
    "name": "ops",
    "budget": {"device_seconds": 10},
    "dataset": {"name": "cifar10-subset", "resolution": 16},
    "methods": {"gaea-darts": {}, "darts": {}, "random": {}, "rea": {}, "bohb": {}, "tpe": {}},
}


@pytest.mark.parametrize("exclude_none", [False, True])
def test_every_method_gets_the_comparisons_op_set(exclude_none):
    from gaea_tune.tune._compare import method_options

    raw = {**BASE, "space": {"name": "nb201", "C": 8, "N": 1, "exclude_none": exclude_none}}
    config = parse_config(raw)
    for method in config.methods:
        assert method_options(config, method)["exclude_none"] is exclude_none, method.label


def test_default_op_set_keeps_none_for_both_families():
    from gaea_tune.tune._compare import method_options

    config = parse_config({**BASE, "space": {"name": "nb201", "C": 8, "N": 1}})
    assert config.space["exclude_none"] is False
    assert {method_options(config, m)["exclude_none"] for m in config.methods} == {False}


def test_a_method_level_op_set_is_refused():
    raw = {**BASE, "methods": {"gaea-darts": {"exclude_none": True}, "random": {}}}
    with pytest.raises(
        ConfigError,
        match="methods.gaea-darts.exclude_none: True is not a per-method option: the candidate-op set",
    ):
        parse_config(raw)


def test_the_report_states_the_op_set():
    from gaea_tune.report import _space_summary

    space = _space_summary({"space": {"name": "nb201", "C": 8, "N": 1, "exclude_none": True}})
    assert space["candidate_ops"] == [
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
    ]
    summary = {"space": space, "mode": "live", "device_kind": "cpu", "methods": {},
               "ground_truth_column": "cifar10_test_200"}  # fmt: skip
    assert markdown_table(summary).startswith(
        "Search space (the same for every method): nb201, candidate ops: skip_connect, "
        "nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"
    )
