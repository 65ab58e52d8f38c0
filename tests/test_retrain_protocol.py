"""One retrain protocol per comparison, whatever family found the incumbent; DARTS's evaluation
protocol as a named preset; Cutout as quark0/darts applies it."""

from __future__ import annotations

import pytest
import torch

from gaea_tune.config import ConfigError, parse_config
from gaea_tune.protocols import PRESETS, resolve_retrain


@pytest.fixture(autouse=True)
def _torch_threads_kept():
    """A retrain sets the process's torch threads to its CPU slots, as in its Ray worker; the
    test process gets its own count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def test_darts_paper_preset_is_the_papers_evaluation():
    p = PRESETS["darts-paper"]
    assert (p.C, p.N, p.epochs, p.batch_size, p.lr, p.weight_decay) == (
        36,
        20,
        600,
        96,
        0.025,
        3e-4,
    )
    assert (p.cutout, p.auxiliary_weight, p.drop_path, p.grad_clip) == (16, 0.4, 0.2, 5.0)


def test_the_protocol_is_comparison_level_and_validated():
    base = {"name": "r", "space": {"name": "darts", "C": 8, "N": 2},
            "budget": {"device_seconds": 10}, "methods": {"darts": {}, "random": {}}}  # fmt: skip
    config = parse_config({**base, "final_retrain": {"preset": "darts-paper", "epochs": 3}})
    assert config.final_retrain["name"] == "darts-paper" and config.final_retrain_epochs == 3
    assert config.final_retrain["C"] == 36 and config.final_retrain["cutout"] == 16
    assert parse_config(base).final_retrain_epochs == 0  # no retrain unless asked
    with pytest.raises(ConfigError, match="final_retrain.preset: 'darts-paper' is a darts-space"):
        parse_config(
            {**base, "space": {"name": "nb201"}, "final_retrain": {"preset": "darts-paper"}}
        )
    with pytest.raises(ConfigError, match="final_retrain: unknown key 'epoch'"):
        parse_config({**base, "final_retrain": {"epoch": 3}})
    with pytest.raises(ConfigError, match="final_retrain.drop_path: 1.5 is out of range"):
        parse_config({**base, "final_retrain": {"drop_path": 1.5}})
    assert resolve_retrain({"epochs": 2}, "nb201").to_dict()["name"] == "proxy"


def test_the_retrain_ignores_the_finding_methods_training_options():
    from gaea_tune.tune import _compare

    config = parse_config({
        "name": "r", "space": {"name": "darts", "C": 8, "N": 2}, "budget": {"device_seconds": 10},
        "methods": {"random": {"lr": 0.5, "batch_size": 7}}, "final_retrain": {"epochs": 2},
    })  # fmt: skip
    jobs = []

    class _Task:
        def remote(self, job):
            jobs.append(job)
            return job

    original_remote, original_get = _compare.ray.remote, _compare.ray.get
    _compare.ray.remote = lambda **kw: lambda fn: _Task()
    _compare.ray.get = lambda x: x
    try:
        _compare._final_retrain(config, config.methods[0], 0, DARTS_V2)
    finally:
        _compare.ray.remote, _compare.ray.get = original_remote, original_get
    protocol = jobs[0]["protocol"]
    assert protocol["lr"] == 0.025 and protocol["batch_size"] == 96 and protocol["epochs"] == 2
    assert "lr" not in jobs[0] and "batch_size" not in jobs[0]
    assert jobs[0]["numerics"] == config.numerics  # the comparison's, as every trainable's


@pytest.mark.parametrize(
    ("space", "numerics", "expected"),
    [
        ("nb201", None, (False, True)),  # the auto rule on CPU: NB201 in channels_last
        ("darts", {"amp": None, "channels_last": None}, (False, False)),  # DARTS: NCHW on CPU
        ("darts", {"channels_last": True}, (False, True)),
        ("nb201", {"amp": True, "channels_last": False}, (True, False)),
    ],
)
def test_the_retrain_trains_in_the_comparisons_numerics(monkeypatch, space, numerics, expected):
    from gaea_tune.baselines import _train
    from gaea_tune.tune._retrain import retrain

    seen = []

    class Recording(_train.StandaloneTraining):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append((self.amp, self.channels_last))

    monkeypatch.setattr(_train, "StandaloneTraining", Recording)
    genotype = (
        DARTS_V2
        if space == "darts"
        else "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|"
    )
    protocol = {**resolve_retrain({"epochs": 1}, space).to_dict(), "C": 4, "N": 1, "batch_size": 32}
    job = {
        "space": space, "C": 4, "N": 1, "seed": 0, "genotype": genotype,
        "resources": {"gpu": 0, "cpu": 1}, "protocol": protocol,
        "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 32,
                    "max_valid": 16, "max_test": 16},
    }  # fmt: skip
    if numerics is not None:
        job["numerics"] = numerics
    out = retrain(job)
    assert seen == [expected]
    assert out["retrain_precision"] == ("bfloat16 autocast" if expected[0] else "float32")
    assert out["retrain_memory_format"] == ("channels_last" if expected[1] else "NCHW")
    assert 0.0 <= out["retrain_test_acc"] <= 100.0


def test_a_darts_paper_style_retrain_runs_with_aux_head_drop_path_and_cutout():
    from gaea_tune.tune._retrain import retrain

    protocol = {**PRESETS["darts-paper"].to_dict(), "epochs": 1, "C": 4, "N": 3, "batch_size": 32}
    job = {
        "space": "darts", "C": 4, "N": 3, "seed": 0, "genotype": DARTS_V2,
        "resources": {"gpu": 0, "cpu": 1}, "protocol": protocol,
        "dataset": {"name": "cifar10-subset", "resolution": 16, "max_train": 64,
                    "max_valid": 32, "max_test": 32},
    }  # fmt: skip
    out = retrain(job)
    assert out["retrain_protocol"] == "darts-paper" and out["retrain_epochs"] == 1
    assert out["retrain_train_images"] == 64 + 32  # train and the held-out valid part
    assert 0.0 <= out["retrain_test_acc"] <= 100.0


def test_cutout_zeroes_one_square_per_image_after_normalisation():
    from gaea_tune.data import BatchLoader

    images = torch.full((8, 3, 16, 16), 200, dtype=torch.uint8)
    labels = torch.zeros(8, dtype=torch.int64)
    loader = BatchLoader(images, labels, 8, train=True, seed=0, pad=0, cutout=4)
    x, _ = next(iter(loader))
    zero = (x == 0).all(dim=1)  # [B, H, W]
    counts = zero.flatten(1).sum(1)
    assert bool((counts > 0).all()) and bool((counts <= 16).all())
    plain = BatchLoader(images, labels, 8, train=True, seed=0, pad=0)
    assert not bool((next(iter(plain))[0] == 0).any())
