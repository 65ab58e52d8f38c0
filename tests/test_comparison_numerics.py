"""Precision, memory format and cuDNN settings are comparison-level: both families get them."""

from __future__ import annotations

import pytest
import torch

from gaea_tune.config import ConfigError, parse_config
from gaea_tune.resolve import resolved_settings

BASE = {
    "name": "n",
    "space": {"name": "nb201", "C": 4, "N": 1},
    "budget": {"device_seconds": 10},
    "methods": {"gaea-darts": {"epochs": 2}, "random": {"epochs": 1}},
}


@pytest.mark.parametrize("gpu", [0.0, 0.5])
@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_both_families_resolve_to_the_same_numerics(gpu, space):
    """Auto numerics: bf16 and cuDNN autotuning with CUDA only; NHWC with CUDA, and on the CPU
    for NB201 (its networks train faster in it there), not for DARTS (slower)."""
    raw = {**BASE, "space": {**BASE["space"], "name": space}}
    if space == "darts":
        raw["methods"] = {"gaea-darts": {"epochs": 2}, "random": {"epochs": 1}}
    config = parse_config({**raw, "resources": {"gpu": gpu, "cpu": 1}})
    settings = resolved_settings(config)
    methods = settings["methods"]
    ws, sa = methods["gaea-darts"], methods["random"]
    assert ws["precision"] == sa["precision"] == ("bfloat16 autocast" if gpu else "float32")
    nhwc = bool(gpu) or space == "nb201"
    assert ws["channels_last"] == sa["channels_last"] == nhwc
    assert ws["cudnn_benchmark"] == sa["cudnn_benchmark"] == bool(gpu)
    assert settings["comparison"]["numerics"] == {"amp": bool(gpu), "channels_last": nhwc,
                                                  "cudnn_benchmark": bool(gpu)}  # fmt: skip


def test_the_search_and_the_standalone_trainer_read_the_same_default():
    """SupernetSearch resolves an unset channels_last with the resolver's rule."""
    from gaea_tune.weight_sharing import SearchOptions, SupernetSearch, default_numerics

    batches = [(torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,)))]
    for space in ("nb201", "darts"):
        search = SupernetSearch(
            space, "gaea-darts", SearchOptions(C=4, N=1, epochs=1, batch_size=4),
            batches, batches, batches, num_classes=10, device=torch.device("cpu"), seed=0,
        )  # fmt: skip
        assert search.channels_last == default_numerics("cpu", space)["channels_last"]
        assert search.channels_last == (space == "nb201") and not search.amp


def test_numerics_are_set_once_for_the_comparison():
    config = parse_config({**BASE, "numerics": {"amp": True, "channels_last": False}})
    methods = resolved_settings(config)["methods"]
    assert (
        methods["gaea-darts"]["precision"]
        == methods["random"]["precision"]
        == ("bfloat16 autocast")
    )
    with pytest.raises(
        ConfigError,
        match="methods.gaea-darts.amp: True is not a per-method option: precision is one per",
    ):
        parse_config({**BASE, "methods": {"gaea-darts": {"amp": True}}})
    with pytest.raises(ConfigError, match="numerics: unknown key 'fp16'"):
        parse_config({**BASE, "numerics": {"fp16": True}})


def test_standalone_training_runs_in_bf16_and_channels_last():
    from gaea_tune.baselines._train import StandaloneTraining, seeded_network
    from gaea_tune.data import load_splits
    from search_spaces import get_space

    space = get_space("nb201")
    splits = load_splits("cifar10-subset", resolution=8, max_train=32, max_valid=16)
    genotype = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+"
                           "|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")  # fmt: skip
    net = seeded_network(space, genotype, 4, 1, 10, 0)
    training = StandaloneTraining(net, splits, epochs=1, batch_size=16, amp=True,
                                  channels_last=True)  # fmt: skip
    metrics = training.train_epoch()
    metrics.update(training.evaluate())
    assert torch.isfinite(torch.tensor(metrics["train_loss"]))
    assert 0.0 <= metrics["valid_acc"] <= 100.0
