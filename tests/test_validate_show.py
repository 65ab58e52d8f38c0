"""``gaea-tune validate FILE --show``: every setting that will run, defaults filled in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]


def _show(name: str, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "gaea_tune.cli", "validate", str(ROOT / "tune_configs" / name),
         "--show", *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout.split("# resolved settings (every default filled in)\n", 1)[1]
    return YAML(typ="safe", pure=True).load(text)


def test_nb201_cifar10_protocol_defaults():
    shown = _show("nb201_cifar10.yaml")
    comparison, methods = shown["comparison"], shown["methods"]
    assert comparison["space"]["candidate_ops"] == [
        "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
    ]  # fmt: skip
    assert "NB201's 'valid' part of the train set" in comparison["dataset"]["splits"]
    assert comparison["dataset"]["ground_truth"][0] == "cifar10_test_200"
    gaea = methods["gaea-darts"]
    assert (gaea["formulation"], gaea["arch_lr"], gaea["lr"], gaea["lr_min"]) == (
        "erm", 0.1, 0.025, 0.001,
    )  # fmt: skip
    assert gaea["erm_arch_batch"] == "own" and gaea["data"]["weights"] == "train+valid"
    assert gaea["precision"] == "bfloat16 autocast"  # a GPU config: resources.gpu = 1
    assert methods["gaea-darts-bilevel"]["genotype_from"] == "best_valid"
    assert methods["gaea-darts-bilevel"]["data"]["architecture"] == "valid"
    assert methods["darts"]["formulation"] == "bilevel" and methods["darts"]["arch_lr"] == 3e-4
    assert methods["gdas"]["formulation"] == "bilevel"
    assert (methods["gdas"]["tau_max"], methods["gdas"]["tau_min"]) == (10.0, 0.1)
    assert methods["pcdarts"]["arch_warmup_epochs"] == 15 and methods["pcdarts"]["partial_k"] == 2
    assert methods["rsws"]["rsws_candidates"] == 100 and methods["rsws"]["arch_lr"] is None
    assert methods["gaea-gdas"]["arch_lr"] == 0.01 and methods["gaea-gdas"]["entropic_reg"] == 0.01
    assert methods["darts"]["tau_max"] is None  # not a Gumbel method: nothing shown as if read
    rea = methods["rea"]
    assert rea["search"] == {"population_size": 10, "sample_size": 3, "exclude_none": True,
                             "tournament_replacement": True}  # fmt: skip
    assert rea["training"]["epochs"] == 12 and rea["training"]["batch_size"] == 256
    assert methods["bohb"]["search"]["reduction_factor"] == 3


def test_tabular_and_retrain_settings_are_shown():
    shown = _show("nb201_tabular_compare.yaml")
    assert (
        shown["methods"]["bohb"]["search"]["style"] is None
        or "eta" in shown["methods"]["bohb"]["search"]
    )
    darts = _show("darts_cifar10.yaml", "--set", "final_retrain.preset=darts-paper")
    retrain = darts["comparison"]["final_retrain"]
    assert (retrain["name"], retrain["C"], retrain["N"], retrain["epochs"]) == (
        "darts-paper", 36, 20, 50,
    )  # fmt: skip
    assert retrain["cutout"] == 16 and retrain["drop_path"] == 0.2
    # the comparison's numerics (on a GPU config: bf16 autocast, channels_last), and when
    numerics = darts["comparison"]["numerics"]
    assert retrain["precision"] == ("bfloat16 autocast" if numerics["amp"] else "float32")
    assert retrain["channels_last"] == numerics["channels_last"]
    assert retrain["runs"].startswith("for each incumbent")
    nb201 = _show("quickstart.yaml", "--set", "final_retrain.epochs=2")
    assert nb201["comparison"]["final_retrain"]["runs"] == (
        "never here: the NB201 table gives the ground truth (cifar10_test_200)"
    )
    assert _show("quickstart.yaml")["comparison"]["final_retrain"] is None
