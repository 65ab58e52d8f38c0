"""One charging rule for both families (gaea_tune.budget.DeviceClock)."""

from __future__ import annotations

import time

import pytest

from gaea_tune.budget import DeviceClock


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_trials_are_charged_their_own_cpu_time_not_waiting():
    clock = DeviceClock(gpus=0, cpus=1)
    time.sleep(0.3)  # waiting for a core (or anything else) costs the trial nothing
    _busy(0.2)
    spent = clock.spent()
    assert 0.18 <= spent <= 0.3, spent
    assert clock.kind == "cpu"


def test_gpu_trials_are_charged_wall_seconds_times_their_share():
    clock = DeviceClock(gpus=0.5, cpus=2)
    time.sleep(0.4)
    assert clock.kind == "gpu" and 0.19 <= clock.spent() <= 0.3


def test_the_hand_over_to_tune_is_not_charged_and_resume_continues():
    clock = DeviceClock(gpus=0, cpus=1, spent=5.0)
    _busy(0.1)
    with clock.paused():
        _busy(0.3)
    assert 5.08 <= clock.spent() <= 5.2
    clock.resume_from(10.0)
    assert 10.08 <= clock.spent() <= 10.2


@pytest.fixture()
def captured(monkeypatch):
    """Run a trainable outside Tune: results are captured; each hand-over takes 0.4 s."""
    from ray import tune

    results = []

    def report(metrics, checkpoint=None):
        results.append((time.perf_counter(), dict(metrics)))
        time.sleep(0.4)

    class _Context:
        def get_node_id(self):
            return "node"

    monkeypatch.setattr(tune, "report", report)
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr("ray.get_runtime_context", lambda: _Context())
    return results


DATASET = {"name": "cifar10-subset", "resolution": 8, "max_train": 64, "max_valid": 32}


@pytest.mark.parametrize("family", ["standalone", "weight-sharing"])
def test_both_trainables_charge_by_the_same_rule(family, captured):
    """A GPU-kind clock (wall x share) makes the rule visible on a CPU machine: the 0.4 s of each
    hand-over to Tune is excluded, everything else between reports is charged."""
    resources = {"gpu": 1, "cpu": 1}
    if family == "standalone":
        from gaea_tune.tune._standalone_trainable import standalone_trainable as trainable

        config = {"space": "nb201", "C": 4, "N": 1, "dataset": DATASET, "epochs": 3,
                  "batch_size": 32, "seed": 0, "resources": resources,
                  "genotype": "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+"
                              "|skip_connect~0|none~1|avg_pool_3x3~2|"}  # fmt: skip
    else:
        from gaea_tune.tune._supernet_trainable import supernet_trainable as trainable

        config = {"space": "nb201", "method": "gaea-darts", "C": 4, "N": 1, "dataset": DATASET,
                  "epochs": 3, "batch_size": 32, "seed": 0, "resources": resources}  # fmt: skip
    trainable(config)
    assert len(captured) == 3
    for (t0, r0), (t1, r1) in zip(captured, captured[1:]):
        charged = r1["device_seconds"] - r0["device_seconds"]
        wall = t1 - t0
        assert charged <= wall - 0.35, (charged, wall)  # the hand-over was not charged
        assert charged >= 0.5 * (wall - 0.4), (charged, wall)  # the epoch's work was
        assert r1["images"] > r0["images"] > 0
