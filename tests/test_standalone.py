"""Standalone training (pause/resume exactness, NaN handling), Tune components, live searches."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn

from gaea_tune.baselines import encode, make_searcher
from gaea_tune.baselines._train import NonFiniteLossError, StandaloneTraining, seeded_network
from gaea_tune.data import load_splits
from search_spaces.nb201 import NB201Space

DATASET = {
    "name": "cifar10-subset",
    "seed": 0,
    "resolution": 16,
    "max_train": 128,
    "max_valid": 128,
    "max_test": 32,
}
CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|"
    "+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
)


@pytest.fixture(scope="module")
def splits():
    return load_splits(**DATASET)


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Two OpenMP threads on two busy cores can be 100x slower than one for these tiny networks.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _training(splits, epochs=2):
    network = seeded_network(NB201Space(), NB201Space().parse(CELL), 4, 1, splits.num_classes, 3)
    return StandaloneTraining(network, splits, epochs=epochs, batch_size=32, seed=3)


def test_paused_and_resumed_training_matches_uninterrupted_training(splits):
    straight = _training(splits)
    straight.train_epoch()
    straight.train_epoch()

    first = _training(splits)
    first.train_epoch()
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = _training(splits)
    resumed.load_state_dict(state)
    resumed.train_epoch()
    assert resumed.epoch == straight.epoch == 2
    for a, b in zip(resumed.network.state_dict().values(), straight.network.state_dict().values()):
        assert torch.equal(a, b)
    metrics = resumed.evaluate()
    assert 0.0 <= metrics["valid_acc"] <= 100.0 and math.isfinite(metrics["valid_loss"])


def test_initial_weights_come_from_the_seed_not_the_global_rng(splits):
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = seeded_network(NB201Space(), CELL, 4, 1, 10, seed=5)
    assert torch.equal(torch.rand(1), before)
    b = seeded_network(NB201Space(), CELL, 4, 1, 10, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


class _NaNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=(2, 3))) * float("nan")


def test_nan_training_loss_raises_a_clear_error(splits):
    training = StandaloneTraining(_NaNNet(), splits, epochs=1, batch_size=32, label="the NaN cell")
    with pytest.raises(NonFiniteLossError, match="non-finite training loss nan at epoch 1, batch 0 "
                                                 "of the NaN cell"):  # fmt: skip
        training.train_epoch()


def test_trial_genotype_from_text_or_searcher_parameters():
    from gaea_tune.tune._standalone_trainable import trial_genotype

    space = NB201Space()
    genotype = space.parse(CELL)
    assert trial_genotype({"space": "nb201", "genotype": CELL}) == genotype
    assert trial_genotype({"space": "nb201", **encode(space, genotype)}) == genotype
    with pytest.raises(ValueError, match="needs 'genotype' or the nb201 parameters"):
        trial_genotype({"space": "nb201", "edge_1_0": "none"})


def test_make_tune_components_for_every_method():
    from ray.tune.schedulers import HyperBandForBOHB
    from ray.tune.search.bohb import TuneBOHB
    from ray.tune.search.optuna import OptunaSearch

    from gaea_tune.tune._searchers import AskTellSearcher, make_tune_components

    space = NB201Space()
    for method in ("random", "rea"):
        param_space, search_alg, scheduler = make_tune_components(
            method, space, {"epochs": 3}, seed=0, max_epochs=3
        )
        assert param_space == {"space": "nb201"}
        assert isinstance(search_alg, AskTellSearcher) and scheduler is None
    param_space, search_alg, scheduler = make_tune_components(
        "bohb", space, {"reduction_factor": 2, "exclude_none": True}, seed=0, max_epochs=4
    )
    assert isinstance(search_alg, TuneBOHB) and isinstance(scheduler, HyperBandForBOHB)
    assert scheduler._max_t_attr == 4 and scheduler._eta == 2
    assert set(param_space) == {"space", *encode(space, CELL)}
    assert "none" not in param_space["edge_1_0"].categories
    param_space, search_alg, scheduler = make_tune_components("tpe", space, {}, 0, 3)
    assert isinstance(search_alg, OptunaSearch) and len(param_space) == 7
    with pytest.raises(ValueError, match="unknown live method 'gdas'"):
        make_tune_components("gdas", space, {}, 0, 3)
    with pytest.raises(ValueError, match="bohb: unknown key 'eta'; allowed: epochs"):
        make_tune_components("bohb", space, {"eta": 3}, 0, 3)
    with pytest.raises(ValueError, match="max_epochs must be a positive integer, got 0"):
        make_tune_components("random", space, {}, 0, 0)


def test_ask_tell_adapter_tells_results_and_survives_save_restore(tmp_path):
    from gaea_tune.tune._searchers import AskTellSearcher

    space = NB201Space()
    adapter = AskTellSearcher(make_searcher("rea", space, 0, population_size=3, sample_size=2))
    adapter.set_search_properties("search_signal", "max", {})
    for i in range(4):
        config = adapter.suggest(f"t{i}")
        space.parse(config["genotype"])
        adapter.on_trial_complete(f"t{i}", {"search_signal": float(i)})
    adapter.suggest("t4")  # in flight while saved
    adapter.on_trial_complete("t5", error=True)  # unknown trial: ignored
    adapter.save(str(tmp_path / "s.pkl"))
    restored = AskTellSearcher(make_searcher("rea", space, 9, population_size=3, sample_size=2))
    restored.restore(str(tmp_path / "s.pkl"))
    for searcher in (adapter, restored):
        searcher.on_trial_complete("t4", {"search_signal": math.nan})
    assert [adapter.suggest(f"u{i}") for i in range(5)] == [
        restored.suggest(f"u{i}") for i in range(5)
    ]
    # The last three told results, oldest first; the NaN one entered as -inf.
    assert [s for _, s in adapter.ask_tell.population] == [2.0, 3.0, -math.inf]


@pytest.fixture(scope="module")
def ray_two_cpus():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _live(method, tmp_path, budget, epochs, **options):
    from gaea_tune.tune._standalone_trainable import run_live_baseline

    return run_live_baseline(
        method, "nb201", options, DATASET, 0, budget, str(tmp_path.absolute()), C=4, N=1,
        epochs=epochs, batch_size=64,
    )  # fmt: skip


def _check_outcome(outcome, budget):
    from gaea_tune.nb201_table import load_table

    done = [t for t in outcome["trials"] if "genotype" in t]
    assert len(done) >= 2
    assert outcome["spent_device_seconds"] >= budget
    best = outcome["incumbent"]
    top = max(t["epochs"] for t in done)
    assert best["epochs"] == top
    assert best["search_signal"] == max(t["search_signal"] for t in done if t["epochs"] == top)
    assert best["nb201_cifar10_test_200"] == load_table().lookup(
        best["genotype"], "cifar10_test_200"
    )
    return done


@pytest.mark.integration
@pytest.mark.parametrize("method", ["random", "rea"])
def test_live_search_trains_real_networks_until_the_budget(ray_two_cpus, tmp_path, method):
    options = {"population_size": 3, "sample_size": 2} if method == "rea" else {}
    done = _check_outcome(_live(method, tmp_path, 8.0, 2, **options), 8.0)
    assert {t["epochs"] for t in done} <= {1, 2}
    assert len({t["genotype"] for t in done}) >= 2


@pytest.mark.integration
def test_live_bohb_pauses_and_continues_trials(ray_two_cpus, tmp_path):
    done = _check_outcome(_live("bohb", tmp_path, 12.0, 3), 12.0)
    # HyperBandForBOHB (eta 3, max_t 3) pauses trials after 1 epoch and continues the best.
    assert {t["epochs"] for t in done} >= {1, 3}
    continued = [t for t in done if t["resumes"] >= 1]
    assert continued and all(t["epochs"] > 1 for t in continued)
