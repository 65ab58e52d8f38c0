"""NB201's fixed splits: the shipped index lists, what a search may see, empty evaluations."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gaea_tune
from gaea_tune import data
from gaea_tune.data import (
    DATASET_INFO,
    DATASETS,
    SPLITS,
    BatchLoader,
    ImageSplits,
    TensorPair,
    dataset_info,
    load_splits,
    nb201_index_lists,
    search_signal_error,
    split_indices,
)

SPLIT_DIR = Path(gaea_tune.__file__).parent / "data" / "nb201_splits"
NB201_DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
# dataset -> (index file, size of the pool its x-valid / x-test halves split)
TEST_HALVES = {
    "cifar100": ("cifar100-test-split.txt.gz", 10_000),
    "ImageNet16-120": ("imagenet-16-120-test-split.txt.gz", 6_000),
}
POOL_ID = {"train": 0, "test": 1}


def _read(file: str) -> dict[str, np.ndarray]:
    """An index file read on its own (not through gaea_tune.data)."""
    with gzip.open(SPLIT_DIR / file, "rt") as handle:
        payload = json.load(handle)
    return {key: np.array([int(i) for i in value[1]]) for key, value in payload.items()}


# --------------------------------------------------------------------------- the index lists


def test_index_files_ship_with_the_package() -> None:
    names = {p.name for p in SPLIT_DIR.iterdir()}
    assert {
        "cifar-split.txt.gz",
        "cifar100-test-split.txt.gz",
        "imagenet-16-120-test-split.txt.gz",
        "ImageNet16-120-split.txt.gz",
        "README.md",
    } <= names
    pyproject = (Path(gaea_tune.__file__).parents[1] / "pyproject.toml").read_text()
    package_data = pyproject.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert '"data/nb201_splits/*.gz"' in package_data
    assert '"data/nb201_splits/*.md"' in package_data


def test_cifar10_valid_is_nb201s_exact_halves_of_the_training_set() -> None:
    lists = _read("cifar-split.txt.gz")
    train, valid = lists["train"], lists["valid"]
    assert len(train) == len(valid) == 25_000
    assert len(set(train.tolist())) == len(set(valid.tolist())) == 25_000
    assert not set(train.tolist()) & set(valid.tolist())
    assert sorted([*train.tolist(), *valid.tolist()]) == list(range(50_000))
    # Spot values NB201's own benchmark code checks the split file against.
    assert (train[0], train[10], train[111]) == (0, 26, 203)
    assert (valid[0], valid[10], valid[111]) == (1, 18, 242)

    for seed in (0, 7):  # fixed: the seed does not move it
        index = split_indices("cifar10-valid", seed=seed)
        np.testing.assert_array_equal(index["train"], train)
        np.testing.assert_array_equal(index["valid"], valid)
        np.testing.assert_array_equal(index["test"], np.arange(10_000))
    info = dataset_info("cifar10-valid")
    assert info.train.pool == info.valid.pool == "train" and info.test.pool == "test"


@pytest.mark.parametrize("name", sorted(TEST_HALVES))
def test_xvalid_and_xtest_halve_the_test_set(name: str) -> None:
    file, size = TEST_HALVES[name]
    lists = _read(file)
    xvalid, xtest = set(lists["xvalid"].tolist()), set(lists["xtest"].tolist())
    assert len(xvalid) == len(xtest) == size // 2
    assert not xvalid & xtest and xvalid | xtest == set(range(size))
    got = nb201_index_lists(name)
    assert set(got) == {"xvalid", "xtest"}
    for key in got:
        np.testing.assert_array_equal(got[key], lists[key])
        assert got[key].dtype == np.int64


def test_datasets_without_index_lists() -> None:
    assert nb201_index_lists("cifar10") == {}
    assert nb201_index_lists("cifar10-subset") == {}
    assert DATASETS == tuple(DATASET_INFO)


@pytest.mark.parametrize("name", sorted(TEST_HALVES))
def test_no_index_a_search_can_see_is_in_xtest(name: str) -> None:
    file, size = TEST_HALVES[name]
    lists = _read(file)
    xvalid, xtest = set(lists["xvalid"].tolist()), set(lists["xtest"].tolist())
    info = dataset_info(name)
    # train comes from the training set, which holds no x-test image at all; valid (the search
    # signal and the bilevel architecture batches) from the test set's x-valid half.
    assert (info.train.pool, info.valid.pool, info.test.pool) == ("train", "test", "test")
    for seed, caps in ((0, {}), (3, {"max_train": 100, "max_valid": 50, "max_test": 20})):
        index = split_indices(name, seed=seed, **caps)
        seen = set(index["valid"].tolist())
        assert seen <= xvalid and not seen & xtest
        assert set(index["test"].tolist()) <= xtest
    full = split_indices(name)
    assert set(full["valid"].tolist()) == xvalid
    assert set(full["test"].tolist()) == xtest
    assert len(full["train"]) == info.pool_sizes[0]


def test_cifar10_subset_keeps_its_seeded_split_with_valid_and_test_disjoint() -> None:
    info = dataset_info("cifar10-subset")
    # valid is held out of the 10,000 training images; test is the 2,000 test images: the two
    # come from different pools, so they never share an image.
    assert (info.valid.pool, info.test.pool) == ("train", "test")
    a, b = split_indices("cifar10-subset", seed=0), split_indices("cifar10-subset", seed=1)
    assert (len(a["train"]), len(a["valid"]), len(a["test"])) == (5_000, 5_000, 2_000)
    assert not set(a["train"].tolist()) & set(a["valid"].tolist())
    assert sorted([*a["train"].tolist(), *a["valid"].tolist()]) == list(range(10_000))
    assert not np.array_equal(a["valid"], b["valid"])  # seeded
    np.testing.assert_array_equal(a["test"], np.arange(2_000))
    c = split_indices("cifar10-subset", valid_fraction=0.2)
    assert (len(c["train"]), len(c["valid"])) == (8_000, 2_000)


# --------------------------------------------------------------------------- load_splits


def _tagged_pools(info: data.DatasetInfo) -> dict[str, TensorPair]:
    """Pools of 4x4 images that carry their own pool and index (no real images needed)."""
    pools = {}
    for pool, size in zip(("train", "test"), info.pool_sizes):
        index = np.arange(size)
        images = np.zeros((size, 3, 4, 4), np.uint8)
        for channel, shift in enumerate((16, 8, 0)):
            images[:, channel, 0, 0] = (index >> shift) & 255
        images[:, 0, 0, 1] = POOL_ID[pool]
        labels = torch.from_numpy(index % info.num_classes)
        pools[pool] = TensorPair(torch.from_numpy(images), labels)
    return pools


def _decode(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(pool id, index) of each tagged image."""
    px = images[:, :, 0, 0].numpy().astype(np.int64)
    return images[:, 0, 0, 1].numpy(), (px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2]


@pytest.fixture
def tagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "_load_pools", lambda info, root, download: _tagged_pools(info))


@pytest.mark.parametrize("name", NB201_DATASETS)
@pytest.mark.parametrize("caps", [{}, {"max_train": 64, "max_valid": 32, "max_test": 16}])
def test_load_splits_takes_exactly_split_indices(tagged: None, name: str, caps: dict) -> None:
    info = dataset_info(name)
    s = load_splits(name, seed=5, **caps)
    expected = split_indices(name, seed=5, **caps)
    for which in SPLITS:
        pool_ids, index = _decode(s.split(which).images)
        np.testing.assert_array_equal(index, expected[which])
        source = info.source(which)
        if source is not None:
            assert set(pool_ids.tolist()) <= {POOL_ID[source.pool]}
    assert (s.num_classes, s.mean, s.std) == (info.num_classes, info.mean, info.std)


@pytest.mark.parametrize("name", sorted(TEST_HALVES))
@pytest.mark.parametrize("formulation", ["bilevel", "erm"])
def test_a_search_never_sees_xtest(tagged: None, name: str, formulation: str) -> None:
    from gaea_tune.weight_sharing import SearchOptions, SupernetSearch

    xtest = set(_read(TEST_HALVES[name][0])["xtest"].tolist())
    s = load_splits(name, max_train=256)
    options = SearchOptions(C=4, N=1, epochs=1, batch_size=8, formulation=formulation)
    search = SupernetSearch.from_splits("nb201", "gaea-darts", options, s)
    loaders = [search.train_loader, search.valid_loader]
    if formulation == "bilevel":
        assert search.arch_loader is not None
    if search.arch_loader is not None:
        loaders.append(search.arch_loader)  # architecture batches
    for loader in loaders:
        pool_ids, index = _decode(loader.images)
        from_test_pool = set(index[pool_ids == POOL_ID["test"]].tolist())
        assert not from_test_pool & xtest


# --------------------------------------------------------------------------- no search signal


def test_search_signal_error() -> None:
    message = search_signal_error("cifar10")
    assert message is not None and "\n" not in message
    assert "cifar10-valid" in message and "25k" in message
    for name in DATASETS:
        if name != "cifar10":
            assert search_signal_error(name) is None, name
    with pytest.raises(ValueError, match="allowed"):
        search_signal_error("cifar11")


def test_cifar10_has_no_valid_split(tagged: None) -> None:
    s = load_splits("cifar10")
    assert (len(s.train), len(s.valid), len(s.test)) == (50_000, 0, 10_000)
    assert dataset_info("cifar10").valid is None


@pytest.mark.parametrize("name", NB201_DATASETS)
def test_valid_fraction_is_refused_for_nb201_splits(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="valid_fraction") as err:  # before any image is read
        load_splits(name, root=tmp_path, valid_fraction=0.5)
    assert name in str(err.value)
    assert list(tmp_path.iterdir()) == []


def _empty_valid_splits() -> ImageSplits:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8, generator=g)
    train = TensorPair(images, torch.arange(8) % 10)
    empty = TensorPair(
        torch.zeros((0, 3, 8, 8), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
    )
    info = dataset_info("cifar10")
    return ImageSplits("cifar10", train, empty, train, 10, 8, info.mean, info.std)


def test_standalone_evaluation_of_zero_images_raises() -> None:
    from gaea_tune.baselines._train import StandaloneTraining

    network = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    training = StandaloneTraining(network, _empty_valid_splits(), epochs=1, batch_size=4)
    training.train_epoch()
    with pytest.raises(ValueError, match="zero images"):
        training.evaluate()


def test_supernet_evaluation_of_zero_images_raises() -> None:
    from gaea_tune.weight_sharing import SearchOptions, SupernetSearch

    s = _empty_valid_splits()
    with pytest.raises(ValueError, match="gives a search no signal|empty valid split"):
        SupernetSearch.from_splits("nb201", "gaea-darts", SearchOptions(C=4, N=1), s)
    options = SearchOptions(C=4, N=1, epochs=1, batch_size=4)
    train, arch = (BatchLoader(*s.train, 4, train=True, seed=k) for k in (0, 1))
    empty = BatchLoader(*s.valid, 8, train=False)
    search = SupernetSearch("nb201", "gaea-darts", options, train, empty, arch, num_classes=10)
    with pytest.raises(ValueError, match="zero images"):
        search.evaluate(*search._eval_mixing())


# --------------------------------------------------------------------------- ground truth


def test_ground_truth_headline_comes_from_the_registry() -> None:
    from gaea_tune.tune._outcome import ground_truth_column, nb201_ground_truth

    assert ground_truth_column("nb201", "cifar10-valid") == "cifar10_test_200"
    assert ground_truth_column("nb201", "cifar10") == "cifar10_test_200"
    assert ground_truth_column("nb201", "cifar100") == "cifar100_test_200"
    assert ground_truth_column("nb201", "ImageNet16-120") == "imagenet16_test_200"
    assert ground_truth_column("darts", "cifar10-valid") is None
    for name, info in DATASET_INFO.items():
        assert ground_truth_column("nb201", name) == info.ground_truth[0]
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    truth = nb201_ground_truth(cell, ground_truth_column("nb201", "cifar10-valid"))
    keys = list(truth)
    assert keys[:2] == ["cifar10_test_200", "cifar10_valid_test_200"]
    assert 90.0 < truth["cifar10_test_200"] <= 94.38


def test_a_live_config_on_a_dataset_without_a_search_signal_is_refused():
    from gaea_tune.config import ConfigError, parse_config

    raw = {
        "name": "no-signal",
        "dataset": {"name": "cifar10", "download": True},
        "budget": {"device_seconds": 10},
        "methods": {"random": {}},
    }
    with pytest.raises(
        ConfigError, match="dataset.name: dataset 'cifar10' gives a search no signal"
    ):
        parse_config(raw)
    parse_config({**raw, "mode": "tabular"})  # the table has cifar10's signal
