"""The Ray Tune supernet trainable: config validation, required report keys, exact resume."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import torch

from gaea_tune.tune._supernet_trainable import NB201_MONITORS, split_config

CONFIG: dict[str, Any] = {
    "space": "nb201",
    "method": "gaea-darts",
    "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 256, "max_valid": 64,
                "max_test": 16},
    "seed": 0,
    "C": 4,
    "N": 1,
    "epochs": 3,
    "batch_size": 32,
    "arch_lr": 0.5,
    "resources": {"gpu": 0, "cpu": 1},
}  # fmt: skip

REQUIRED = {"epoch", "search_signal", "device_seconds", "device_kind", "train_loss", "train_acc",
            "valid_acc", "entropy", "genotype", "arch_weights",
            *(f"nb201_{c}" for c in NB201_MONITORS)}  # fmt: skip


def test_split_config_validates_with_clear_errors() -> None:
    base, options = split_config(CONFIG)
    assert base["space"] == "nb201" and options.C == 4 and options.arch_lr == 0.5
    with pytest.raises(ValueError, match="search: unknown key 'learning_rate'"):
        split_config({**CONFIG, "learning_rate": 0.1})
    with pytest.raises(ValueError, match="space must be"):
        split_config({**CONFIG, "space": "nb301"})
    with pytest.raises(ValueError, match="unknown search method"):
        split_config({**CONFIG, "method": "enas"})
    with pytest.raises(ValueError, match="resources"):
        split_config({**CONFIG, "resources": {"tpu": 1}})
    with pytest.raises(ValueError, match="at least one GPU or CPU"):
        split_config({**CONFIG, "resources": {"gpu": 0, "cpu": 0}})


def _reference_run() -> list[dict[str, Any]]:
    """The same search, uninterrupted, in this process (one thread, as the trial uses)."""
    from gaea_tune.data import load_splits
    from gaea_tune.weight_sharing import SupernetSearch

    base, options = split_config(CONFIG)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        search = SupernetSearch.from_splits(
            "nb201", "gaea-darts", options, load_splits(**base["dataset"]), seed=base["seed"]
        )
        return [search.run_epoch() for _ in range(options.epochs)]
    finally:
        torch.set_num_threads(threads)


@pytest.mark.integration
def test_trainable_reports_required_keys_and_resumes_exactly_after_a_killed_worker(
    tmp_path, ray_local
) -> None:
    from ray import tune

    from gaea_tune.tune._supernet_trainable import supernet_trainable

    class KillOnce(tune.Callback):
        def __init__(self) -> None:
            self.results: list[dict[str, Any]] = []
            self.killed = False

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            self.results.append(dict(result))
            if not self.killed:
                self.killed = True
                os.kill(result["pid"], signal.SIGKILL)

    callback = KillOnce()
    tuner = tune.Tuner(
        tune.with_resources(supernet_trainable, {"cpu": 1, "gpu": 0}),
        param_space=CONFIG,
        run_config=tune.RunConfig(
            name="resume",
            storage_path=str(tmp_path),
            callbacks=[callback],
            failure_config=tune.FailureConfig(max_failures=1),
            verbose=0,
        ),
    )
    grid = tuner.fit()
    assert grid[0].error is None
    results = callback.results
    assert len({r["pid"] for r in results}) == 2  # the trial ran in a second worker
    for result in results:
        assert REQUIRED <= set(result), REQUIRED - set(result)
        assert result["device_kind"] == "cpu"
    by_epoch = {r["epoch"]: r for r in results}
    assert sorted(by_epoch) == [1, 2, 3]
    spent = [by_epoch[e]["device_seconds"] for e in (1, 2, 3)]
    assert spent == sorted(spent) and spent[0] > 0  # cumulative across the restart

    reference = _reference_run()
    for expected in reference:
        got = by_epoch[expected["epoch"]]
        for key in ("train_loss", "train_acc", "valid_acc", "entropy", "genotype", "arch_weights"):
            assert got[key] == expected[key], (expected["epoch"], key)
