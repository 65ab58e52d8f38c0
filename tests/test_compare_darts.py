"""A comparison on the DARTS space: no table, so incumbents are retrained from scratch."""

from __future__ import annotations

import pytest

from gaea_tune.config import parse_config
from gaea_tune.tune import compare

pytestmark = pytest.mark.integration


def test_darts_space_incumbents_are_retrained_outside_the_budget(tmp_path, ray_local):
    config = parse_config(
        {
            "name": "darts-tiny",
            "space": {"name": "darts", "C": 4, "N": 3},
            "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 128,
                        "max_valid": 64, "max_test": 64},
            "budget": {"device_seconds": 6},
            "seeds": [0],
            "final_retrain": {"epochs": 1},
            "output_dir": str(tmp_path / "out"),
            "methods": {
                "gaea-pcdarts": {"epochs": 1, "batch_size": 32, "partial_k": 2},
                "random": {"epochs": 1, "batch_size": 32, "max_concurrent": 1},
            },
        }
    )  # fmt: skip
    result = compare(config, progress=lambda t: None)
    for outcome in result["outcomes"]:
        assert outcome["genotype"].startswith("Genotype(normal=[")
        assert outcome["ground_truth_column"] == "retrain_test_acc"
        assert 0.0 <= outcome["ground_truth"]["retrain_test_acc"] <= 100.0
        assert outcome["retrain"]["retrain_epochs"] == 1
        assert outcome["retrain"]["retrain_protocol"] == "proxy"
        # the comparison's numerics on CPU: DARTS trains in float32 NCHW there
        assert outcome["retrain"]["retrain_precision"] == "float32"
        assert outcome["retrain"]["retrain_memory_format"] == "NCHW"
        assert outcome["retrain"]["retrain_device_seconds"] > 0
        # the retrain is reported apart: it is not in the search's spend
        assert outcome["spent_device_seconds"] == pytest.approx(outcome["curve"][-1][0], abs=0.01)
    from gaea_tune.report import write_report
    from gaea_tune.tracking import Tracker

    write_report(Tracker(result["tracking_uri"], config.name), tmp_path / "report",
                 result["parent_run_id"])  # fmt: skip
    assert (
        "Ground truth: each incumbent retrained from scratch with the proxy protocol in "
        "float32, NCHW (the same for every method)"
    ) in (tmp_path / "report" / "results.md").read_text()
