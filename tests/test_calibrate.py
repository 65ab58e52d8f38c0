"""``gaea-tune calibrate``: proxy fidelity statistics, refusals, and one tiny run end to end."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gaea_tune.calibrate import (
    calibrate,
    calibration_key,
    calibration_method,
    calibration_settings,
    proxy_statistics,
    random_regret,
    regret_sizes,
    sample_cells,
    selection_regret,
    trust_sentence,
)
from gaea_tune.cli import main
from gaea_tune.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "tune_configs" / "quickstart.yaml"

# Proxy ranks the cells 1 < 2 < 3 < 4; the truth swaps the last two.
PROXY = [1.0, 2.0, 3.0, 4.0]
TRUTH = [10.0, 20.0, 40.0, 30.0]


def test_selection_regret_exact_values():
    # n=2: only the pair {3, 4} goes wrong (picks 30 instead of 40): 10 / 6 pairs.
    assert selection_regret(PROXY, TRUTH, 1) == pytest.approx(0.0)
    assert selection_regret(PROXY, TRUTH, 2) == pytest.approx(10 / 6)
    # n=3: {1,3,4} and {2,3,4} each lose 10, of 4 triples.
    assert selection_regret(PROXY, TRUTH, 3) == pytest.approx(5.0)
    assert selection_regret(PROXY, TRUTH, 4) == pytest.approx(10.0)
    # A tie in the proxy is broken at random: {a, b} picks 1 or 2 (mean 1.5, best 2).
    assert selection_regret([1.0, 1.0, 2.0], [1.0, 2.0, 3.0], 2) == pytest.approx(1 / 6)
    # A random pick of 2: mean best of the 6 pairs (200 / 6) minus the mean (25).
    assert random_regret(TRUTH, 2) == pytest.approx(200 / 6 - 25)
    assert selection_regret(TRUTH, TRUTH, 3) == 0.0
    with pytest.raises(ValueError, match="n must be in"):
        selection_regret(PROXY, TRUTH, 5)


def test_selection_regret_equals_enumerating_every_subset():
    rng = np.random.default_rng(3)
    for _ in range(10):
        k = int(rng.integers(3, 8))
        proxy, truth = rng.integers(0, 3, k).astype(float), rng.integers(0, 4, k).astype(float)
        for n in range(1, k + 1):
            losses = []
            for subset in map(list, itertools.combinations(range(k), n)):
                top = proxy[subset].max()
                picked = np.mean([truth[i] for i in subset if proxy[i] == top])
                losses.append(truth[subset].max() - picked)
            assert selection_regret(proxy, truth, n) == pytest.approx(np.mean(losses))


def test_proxy_statistics_hand_made():
    stats = proxy_statistics(PROXY, TRUTH, reference=TRUTH, sizes=[1, 2, 3, 4])
    # Spearman: rank differences 0, 0, 1, 1 -> 1 - 6 * 2 / (4 * 15); Kendall: 5 of 6 pairs agree.
    assert stats["spearman"] == pytest.approx(0.8)
    assert stats["kendall"] == pytest.approx(4 / 6)
    assert stats["regret"] == pytest.approx({1: 0.0, 2: 10 / 6, 3: 5.0, 4: 10.0})
    assert stats["reference_kendall"] == pytest.approx(1.0)
    assert stats["reference_regret"] == {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}
    assert stats["kendall_ci95"] is None  # too few cells for an interval
    assert regret_sizes(3) == [2, 3] and regret_sizes(9) == [2, 5, 9]
    assert regret_sizes(10) == [2, 5, 10] and regret_sizes(20) == [2, 5, 10, 20]


def test_trust_sentence_thresholds():
    base = {
        "spearman": 0.5,
        "cells": 20,
        "regret": {1: 0.0, 5: 1.0},
        "random_regret": {1: 0.0, 5: 2.0},
    }
    words = {0.1: "barely tells cells apart", 0.4: "only weakly", 0.6: "usefully",
             -0.25: "barely tells cells apart", -0.6: "largely in reverse"}  # fmt: skip
    for tau, expected in words.items():
        assert expected in trust_sentence({**base, "kendall": tau}, "cifar10_test_200", None)
    constant = trust_sentence({**base, "kendall": float("nan")}, "cifar10_test_200", None)
    assert "cannot tell" in constant
    # the regret of the largest subset: an average over subsets, or the whole draw's one pick
    assert "on average over all 5-cell subsets (a random pick 2.00)" in trust_sentence(
        {**base, "kendall": 0.6}, "cifar10_test_200", None
    )
    whole = {**base, "kendall": 0.6, "regret": {2: 0.5, 20: 0.0}, "random_regret": {2: 1, 20: 6}}
    assert (
        "its pick among all 20 cells is 0.00 points of cifar10_test_200 below the best of "
        "them (a random pick 6.00)" in trust_sentence(whole, "cifar10_test_200", None)
    )
    # a handful of cells gets numbers, not a verdict
    few = trust_sentence({**base, "cells": 3, "kendall": 1.0}, "cifar10_test_200", None)
    assert "over 3 cells: too few cells for a verdict (8+ needed)" in few
    assert "usefully" not in few


def test_settings_are_the_standalone_trial_settings():
    config = load_config(QUICKSTART)
    settings = calibration_settings(config, calibration_method(config), seed=2)
    assert settings["method"] == "random"  # the first standalone method
    assert (settings["epochs"], settings["batch_size"], settings["lr"]) == (3, 64, 0.1)
    assert (settings["C"], settings["N"], settings["threads"]) == (8, 1, 1)
    assert settings["dataset"]["resolution"] == 16 and settings["dataset"]["seed"] == 2
    rea = calibration_settings(config, calibration_method(config, "rea"), seed=0)
    assert rea["weight_decay"] == 5e-4
    # the trials' comparison-level numerics: NB201 on the CPU trains in channels_last
    assert (settings["amp"], settings["channels_last"]) == (False, True)
    nchw = load_config(QUICKSTART, overrides={"numerics.channels_last": False})
    nchw_settings = calibration_settings(nchw, calibration_method(nchw), seed=2)
    assert nchw_settings["channels_last"] is False
    assert calibration_key(nchw_settings) != calibration_key(settings)  # another proxy
    cells = sample_cells(50, seed=0, exclude_none=True)
    assert len({c.index for c in cells}) == 50
    assert all("none" not in str(c) for c in cells)
    assert [c.index for c in sample_cells(5, 0, False)] == [
        c.index for c in sample_cells(5, 0, False)
    ]


@pytest.mark.parametrize(
    ("overrides", "method", "message"),
    [
        (
            {"space": {"name": "darts", "C": 8, "N": 1}},
            None,
            "space.name: calibrate needs the NB201",
        ),
        ({"methods": {"gaea-darts": {"formulation": "erm"}}}, None, "needs a standalone method"),
        ({}, "gaea-darts", "is a weight-sharing method"),
        ({}, "nope", "no method labelled 'nope'"),
    ],
)
def test_refusals(tmp_path, overrides, method, message):
    config = load_config(QUICKSTART, overrides={**overrides, "output_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match=message):
        calibrate(config, cells=3, method=method, progress=False)
    assert not (tmp_path / "calibration").exists() and not (tmp_path / "mlflow.db").exists()


def test_tabular_and_too_few_cells_are_refused(tmp_path):
    tabular = load_config(ROOT / "tune_configs" / "nb201_tabular_compare.yaml")
    with pytest.raises(ConfigError, match="mode: calibrate trains networks"):
        calibrate(tabular, cells=3, progress=False)
    config = load_config(QUICKSTART, overrides={"output_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="cells: 2 is out of range"):
        calibrate(config, cells=2, progress=False)


def test_cli_refusal_is_one_line_exit_2(tmp_path, capsys):
    code = main(
        ["calibrate", str(QUICKSTART), "--method", "darts", "--set", f"output_dir={tmp_path}"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("gaea-tune: error: --method:")
    assert not list(tmp_path.iterdir())


@pytest.mark.integration
def test_calibrate_cli_end_to_end(tmp_path):
    tiny = ["space.C=4", "dataset.max_train=256", "dataset.max_valid=128",
            "dataset.resolution=8", "methods.random.epochs=1", f"output_dir={tmp_path}"]  # fmt: skip
    command = [sys.executable, "-m", "gaea_tune.cli", "calibrate", str(QUICKSTART), "--cells", "3"]
    for item in tiny:
        command += ["--set", item]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Kendall tau" in done.stdout and "regret@2" in done.stdout

    report = json.loads((tmp_path / "calibration" / "calibration.json").read_text())
    assert report["cells"] == 3 and len(report["per_cell"]) == 3
    assert report["settings"]["epochs"] == 1 and report["settings"]["C"] == 4
    assert report["ground_truth_column"] == "cifar10_test_200"
    assert report["reference_column"] == "cifar10_valid_val_12"
    for row in report["per_cell"]:
        assert 0 <= row["proxy_signal"] <= 100 and 40 < row["ground_truth"] < 100
    assert set(report["statistics"]["regret"]) == {"2", "3"}
    assert report["wall_seconds"] > 0 and report["cpu_seconds"] > 0
    png = tmp_path / "calibration" / "calibration.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from gaea_tune.tracking import Tracker

    tracker = Tracker(report["mlflow"]["tracking_uri"], "quickstart")
    runs = tracker.client.search_runs(
        [tracker.experiment_id], filter_string="tags.`gaea.level` = 'calibration'"
    )
    assert len(runs) == 1 and runs[0].info.run_id == report["mlflow"]["run_id"]
    run = runs[0]
    assert run.info.status == "FINISHED"
    for key in ("spearman", "kendall", "table_val_12_spearman", "table_val_12_kendall",
                "regret_at_2", "wall_seconds", "cpu_seconds"):  # fmt: skip
        assert key in run.data.metrics, key
    assert run.data.params["cells"] == "3" and run.data.params["settings.epochs"] == "1"
    assert {"calibration.json", "calibration.png"} <= tracker.artifact_names(run.info.run_id)


def test_workers_default_and_refusal(tmp_path):
    from gaea_tune.calibrate import calibration_workers

    cpu = {"device": "cpu", "threads": 1}
    assert calibration_workers(cpu) == len(os.sched_getaffinity(0))
    assert calibration_workers({"device": "cpu", "threads": 64}) == 1
    assert calibration_workers({"device": "cuda", "threads": 1}) == 1
    assert calibration_workers(cpu, 3) == 3
    config = load_config(QUICKSTART, overrides={"output_dir": str(tmp_path)})
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match=f"workers: expected an integer >= 1, got {bad!r}"):
            calibrate(config, cells=3, progress=False, workers=bad)
    assert not list(tmp_path.iterdir())


@pytest.mark.integration
def test_cells_trained_in_worker_processes_match_this_process(tmp_path):
    tiny = {"space": {"name": "nb201", "C": 4, "N": 1},
            "dataset": {"name": "cifar10-subset", "max_train": 128, "max_valid": 64,
                        "resolution": 8},
            "methods": {"random": {"epochs": 1, "batch_size": 32}}}  # fmt: skip
    reports = {}
    for workers in (1, 2, 50):  # 50: capped at the 3 cells
        config = load_config(
            QUICKSTART, overrides={**tiny, "output_dir": str(tmp_path / str(workers))}
        )
        reports[workers] = calibrate(config, cells=3, progress=False, track=False,
                                     workers=workers)  # fmt: skip
    assert reports[1]["workers"] == 1 and reports[2]["workers"] == 2
    assert reports[50]["workers"] == 3
    keys = ("genotype", "proxy_signal", "valid_curve", "ground_truth")
    alone = [[row[k] for k in keys] for row in reports[1]["per_cell"]]
    for workers in (2, 50):
        assert [[row[k] for k in keys] for row in reports[workers]["per_cell"]] == alone
    assert reports[2]["cpu_seconds"] >= sum(r["cpu_seconds"] for r in reports[2]["per_cell"])


@pytest.mark.parametrize(
    ("config", "argv", "message"),
    [
        (QUICKSTART, ["--calibrate", "nope"], "--calibrate: no method labelled 'nope'"),
        (QUICKSTART, ["--calibrate", "darts"], "--calibrate: 'darts' is a weight-sharing method"),
        (QUICKSTART, ["--calibrate", "--calibrate-cells", "2"],
         "--calibrate-cells: 2 is out of range; allowed: 3 <= cells"),
        (ROOT / "tune_configs" / "nb201_tabular_live.yaml", ["--calibrate"],
         "--calibrate: this comparison trains no networks"),
        (QUICKSTART, ["--calibrate-cells", "5"], "--calibrate-cells 5: only with --calibrate"),
        (QUICKSTART, ["--calibrate", "--address", "127.0.0.1:1"],
         "--address 127.0.0.1:1: nothing answers at 127.0.0.1:1"),
    ],
)  # fmt: skip
def test_compare_calibrate_refusals_are_one_line_before_anything(tmp_path, capsys, config, argv,
                                                                 message):  # fmt: skip
    code = main(["compare", str(config), *argv, "--set", f"output_dir={tmp_path}"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"gaea-tune: error: {message}"), err
    assert not list(tmp_path.iterdir())


def test_cells_train_in_the_trials_numerics(monkeypatch):
    """Each calibration cell is built with the comparison's precision and memory format."""
    from gaea_tune import calibrate as calibrate_module
    from gaea_tune.baselines import _train

    seen = {}

    class Stop(Exception):
        pass

    def spy(network, splits, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(_train, "StandaloneTraining", spy)
    config = load_config(QUICKSTART)
    settings = calibration_settings(config, calibration_method(config), seed=0)
    genotype = sample_cells(3, seed=0, exclude_none=True)[0]
    splits = type("Splits", (), {"num_classes": 10})()
    with pytest.raises(Stop):
        calibrate_module._train_cell(genotype, splits, settings, seed=0)
    assert seen["channels_last"] is True and seen["amp"] is False
