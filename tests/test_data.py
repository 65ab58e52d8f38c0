"""Tests for gaea_tune.data: bundled subset, cache, splits, ImageNet16 format, BatchLoader."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from gaea_tune import data
from gaea_tune.data import (
    CIFAR10_CLASSES,
    DATASETS,
    BatchLoader,
    ImageSplits,
    TensorPair,
    cache_dir,
    load_splits,
    subset_path,
)


@pytest.fixture(scope="module")
def subset_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder in which the bundled subset has been decoded once."""
    cache = tmp_path_factory.mktemp("gaea-cache")
    load_splits("cifar10-subset", root=cache)
    return cache


def _row_keys(images: torch.Tensor) -> set[bytes]:
    flat = images.reshape(images.shape[0], -1).numpy()
    return {row.tobytes() for row in flat}


# --------------------------------------------------------------------------- bundled subset


def test_subset_shapes_labels_and_balance(subset_cache: Path) -> None:
    s = load_splits("cifar10-subset", root=subset_cache)
    assert isinstance(s, ImageSplits)
    assert (s.name, s.num_classes, s.image_size) == ("cifar10-subset", 10, 32)
    assert s.train.images.shape == (5000, 3, 32, 32)
    assert s.valid.images.shape == (5000, 3, 32, 32)
    assert s.test.images.shape == (2000, 3, 32, 32)
    for pair in (s.train, s.valid, s.test):
        assert pair.images.dtype == torch.uint8
        assert pair.labels.dtype == torch.int64
    all_train = torch.cat([s.train.labels, s.valid.labels])
    assert torch.bincount(all_train, minlength=10).tolist() == [1000] * 10
    assert torch.bincount(s.test.labels, minlength=10).tolist() == [200] * 10
    # The channel means of CIFAR-10's training images (README: 0.491/0.482/0.447).
    train_mean = torch.cat([s.train.images, s.valid.images]).float().mean((0, 2, 3)) / 255
    assert torch.allclose(train_mean, torch.tensor([0.491, 0.482, 0.447]), atol=0.01)
    assert s.mean == pytest.approx((125.3 / 255, 123.0 / 255, 113.9 / 255))


def test_subset_labels_follow_cifar10_class_names(subset_cache: Path) -> None:
    s = load_splits("cifar10-subset", root=subset_cache)
    assert CIFAR10_CLASSES[:3] == ("airplane", "automobile", "bird")
    # Ships and airplanes are blue-ish; frogs are green/brown: a label mix-up would break this.
    blue_minus_red = {}
    for name in ("airplane", "ship", "frog"):
        imgs = s.test.images[s.test.labels == CIFAR10_CLASSES.index(name)].float()
        blue_minus_red[name] = (imgs[:, 2] - imgs[:, 0]).mean().item()
    assert blue_minus_red["airplane"] > blue_minus_red["frog"]
    assert blue_minus_red["ship"] > blue_minus_red["frog"]


def test_subset_cache_is_reused(subset_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    npz = subset_path(subset_cache)
    assert npz.is_file()
    assert (subset_cache / "cifar10-subset" / "train" / "airplane").is_dir()
    before = npz.stat().st_mtime_ns

    def fail(_cache: Path) -> None:
        raise AssertionError("the subset was decoded again although the npz exists")

    monkeypatch.setattr(data, "_decode_subset", fail)
    s = load_splits("cifar10-subset", root=subset_cache)
    assert len(s.test) == 2000
    assert npz.stat().st_mtime_ns == before
    # No temporary files are left behind next to the cache.
    assert not [p for p in subset_cache.iterdir() if p.name.startswith(".")]


def test_cache_dir_from_env_and_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAEA_TUNE_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert subset_path() == tmp_path / "env" / "cifar10-subset.npz"
    monkeypatch.delenv("GAEA_TUNE_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "gaea-tune"


def test_stale_npz_is_rebuilt(subset_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = data._load_subset

    def fake_decode(cache: Path) -> dict[str, np.ndarray]:
        calls.append(cache)
        x = np.zeros((4, 3, 32, 32), np.uint8)
        y = np.arange(4, dtype=np.int64)
        return {"train_x": x, "train_y": y, "test_x": x, "test_y": y}

    stale = subset_cache.parent / "stale-cache"
    stale.mkdir()
    np.savez(subset_path(stale), format=np.asarray(-1), zip_size=np.asarray(0))
    monkeypatch.setattr(data, "_decode_subset", fake_decode)
    train, test = real(stale)
    assert calls == [stale]
    assert len(train) == len(test) == 4


# --------------------------------------------------------------------------- splits


def test_subset_splits_disjoint_reproducible_and_seeded(subset_cache: Path) -> None:
    a = load_splits("cifar10-subset", root=subset_cache, seed=0)
    b = load_splits("cifar10-subset", root=subset_cache, seed=0)
    c = load_splits("cifar10-subset", root=subset_cache, seed=1)
    assert torch.equal(a.train.images, b.train.images)
    assert torch.equal(a.valid.labels, b.valid.labels)
    assert not torch.equal(a.train.images, c.train.images)
    train_keys, valid_keys = _row_keys(a.train.images), _row_keys(a.valid.images)
    assert not train_keys & valid_keys
    assert _row_keys(c.train.images) | _row_keys(c.valid.images) == train_keys | valid_keys


def test_valid_fraction_and_caps(subset_cache: Path) -> None:
    s = load_splits("cifar10-subset", root=subset_cache, valid_fraction=0.2)
    assert (len(s.train), len(s.valid), len(s.test)) == (8000, 2000, 2000)
    capped = load_splits(
        "cifar10-subset", root=subset_cache, seed=3, max_train=64, max_valid=32, max_test=16
    )
    assert (len(capped.train), len(capped.valid), len(capped.test)) == (64, 32, 16)
    again = load_splits(
        "cifar10-subset", root=subset_cache, seed=3, max_train=64, max_valid=32, max_test=16
    )
    assert torch.equal(capped.train.images, again.train.images)
    assert torch.equal(capped.test.labels, again.test.labels)
    # Caps draw from the uncapped split: capped train stays disjoint from the full valid split.
    full = load_splits("cifar10-subset", root=subset_cache, seed=3)
    assert _row_keys(capped.train.images) <= _row_keys(full.train.images)
    # A cap above the split size keeps the whole split.
    big = load_splits("cifar10-subset", root=subset_cache, max_test=10**6)
    assert len(big.test) == 2000


def test_resolution_16(subset_cache: Path) -> None:
    s = load_splits("cifar10-subset", root=subset_cache, resolution=16, max_train=40)
    assert s.image_size == 16
    assert s.train.images.shape == (40, 3, 16, 16)
    assert s.test.images.shape == (2000, 3, 16, 16)
    assert s.train.images.dtype == torch.uint8
    full = load_splits("cifar10-subset", root=subset_cache, max_train=40)
    expected = full.train.images.float().reshape(40, 3, 16, 2, 16, 2).mean((3, 5))
    assert (s.train.images.float() - expected).abs().max() <= 0.5
    x, y = next(iter(s.loader("train", 8, seed=0)))
    assert x.shape == (8, 3, 16, 16) and y.shape == (8,)


# --------------------------------------------------------------------------- ImageNet16-120


def _write_imagenet16(folder: Path, per_file: int = 13, val_kept: int = 6000) -> None:
    """NB201's format: pickled dicts with 'data' (N x 3072 uint8, CHW) and 1-based 'labels'.

    ``val_data`` holds ``val_kept`` images of classes 1..120 (NB201's 6,000, which its x-valid /
    x-test lists halve) with 40 images of classes 121..130 mixed in.
    """
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]
    for k, name in enumerate(names):
        if name == "val_data":
            labels = np.concatenate([rng.integers(1, 121, val_kept), rng.integers(121, 131, 40)])
            rng.shuffle(labels)
        else:
            labels = rng.integers(1, 131, size=per_file)  # 130 classes; only 1..120 are kept
        n = len(labels)
        data_ = np.zeros((n, 3, 16, 16), np.uint8)
        data_[:, 0] = labels[:, None, None]  # red channel = label
        data_[:, 1] = k  # green channel = file number
        data_[:, 2, 0, 0] = np.arange(n) // 256  # blue top-left pixels = row in file
        data_[:, 2, 0, 1] = np.arange(n) % 256
        data_[:, 2, 1:, :] = 200  # blue elsewhere: distinguishes channels after reshape
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data_.reshape(n, -1), "labels": labels.tolist()}, fh)


def _file_rows(images: torch.Tensor) -> np.ndarray:
    return images[:, 2, 0, 0].long().numpy() * 256 + images[:, 2, 0, 1].long().numpy()


def test_imagenet16_120_format(tmp_path: Path) -> None:
    root = tmp_path / "ImageNet16"
    _write_imagenet16(root)
    s = load_splits("ImageNet16-120", root=root, seed=0)
    assert (s.num_classes, s.image_size) == (120, 16)
    assert s.mean == pytest.approx((122.68 / 255, 116.66 / 255, 104.01 / 255))
    for pair in (s.train, s.valid, s.test):
        assert pair.images.shape[1:] == (3, 16, 16)
        assert pair.labels.min() >= 0 and pair.labels.max() <= 119
        # label stored 1-based in the red channel -> 0-based label
        assert torch.equal(pair.images[:, 0, 0, 0].long() - 1, pair.labels)
        assert bool((pair.images[:, 2, 1:, :] == 200).all())
    kept = []
    for i in range(1, 11):
        with open(root / f"train_data_batch_{i}", "rb") as fh:
            kept.append(np.asarray(pickle.load(fh)["labels"]))
    n_train = int((np.concatenate(kept) <= 120).sum())
    assert len(s.train) == n_train
    assert set(s.train.images[:, 1, 0, 0].tolist()) == set(range(10))  # all ten train files
    # valid / test are NB201's x-valid / x-test halves of val_data's classes-1..120 images,
    # indexed in file order after the other classes are dropped
    assert (
        set(s.valid.images[:, 1, 0, 0].tolist()) == {10} == set(s.test.images[:, 1, 0, 0].tolist())
    )
    with open(root / "val_data", "rb") as fh:
        val_labels = np.asarray(pickle.load(fh)["labels"])
    kept_rows = np.flatnonzero(val_labels <= 120)  # position among the kept -> row in file
    lists = data.nb201_index_lists("ImageNet16-120")
    np.testing.assert_array_equal(_file_rows(s.valid.images), kept_rows[lists["xvalid"]])
    np.testing.assert_array_equal(_file_rows(s.test.images), kept_rows[lists["xtest"]])
    assert len(s.valid) == len(s.test) == 3000
    other = load_splits("ImageNet16-120", root=tmp_path, seed=5)  # parent folder works too
    assert torch.equal(other.valid.images, s.valid.images)  # fixed: not seeded
    assert torch.equal(other.test.images, s.test.images)


def test_imagenet16_other_than_nb201s_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ImageNet16"
    _write_imagenet16(root, val_kept=100)
    with pytest.raises(ValueError, match="imagenet-16-120-test-split") as err:
        load_splits("ImageNet16-120", root=root)
    assert "6000" in str(err.value) and "100" in str(err.value)


def test_imagenet16_missing_names_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ImageNet16") as err:
        load_splits("ImageNet16-120", root=tmp_path)
    assert str(tmp_path) in str(err.value)


# --------------------------------------------------------------------------- torchvision CIFAR


@pytest.mark.parametrize("name", ["cifar10", "cifar10-valid", "cifar100"])
def test_missing_cifar_without_download_raises(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_splits(name, root=tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "download=True" in message and "dataset.download=true" in message
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"name": "cifar11"}, "cifar11"),
        ({"name": "cifar10-subset", "resolution": 64}, "64"),
        ({"name": "cifar10-subset", "resolution": 2}, "resolution"),
        ({"name": "cifar10-subset", "resolution": 16.0}, "16.0"),
        ({"name": "ImageNet16-120", "resolution": 32}, "32"),
        ({"name": "cifar10-subset", "max_train": 0}, "max_train"),
        ({"name": "cifar10-subset", "max_valid": -3}, "-3"),
        ({"name": "cifar10-subset", "max_test": 2.5}, "max_test"),
        ({"name": "cifar10-subset", "valid_fraction": 1.0}, "valid_fraction"),
        ({"name": "cifar10-subset", "seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match="allowed|must") as err:
        load_splits(**kwargs)
    assert needle in str(err.value)


def test_unknown_dataset_lists_allowed() -> None:
    with pytest.raises(ValueError) as err:
        load_splits("imagenet")
    for name in DATASETS:
        assert name in str(err.value)


# --------------------------------------------------------------------------- BatchLoader


def _toy(n: int = 50, size: int = 8, seed: int = 0) -> TensorPair:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return TensorPair(images, torch.arange(n) % 10)


def _collect(loader: BatchLoader, epochs: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [batch for _ in range(epochs) for batch in loader]


def test_loader_shapes_len_and_reshuffle() -> None:
    pair = _toy()
    train = BatchLoader(*pair, 16, train=True, seed=0)
    assert len(train) == 3 and train.drop_last
    batches = _collect(train, 2)
    assert len(batches) == 6
    for x, y in batches:
        assert x.shape == (16, 3, 8, 8) and x.dtype == torch.float32
        assert y.dtype == torch.int64
    # Each epoch has distinct labels-order (reshuffled).
    first = torch.cat([y for _, y in batches[:3]])
    second = torch.cat([y for _, y in batches[3:]])
    assert len(first.unique()) == 10 and not torch.equal(first, second)
    evaluation = BatchLoader(*pair, 16, train=False)
    assert len(evaluation) == 4
    assert [len(y) for _, y in evaluation] == [16, 16, 16, 2]
    tiny = BatchLoader(*_toy(n=5), 16, train=True)  # smaller than a batch: keep the ragged one
    assert len(tiny) == 1


def test_eval_loader_normalises_in_order() -> None:
    pair = _toy()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    loader = BatchLoader(*pair, 20, train=False, mean=mean, std=std)
    x = torch.cat([b for b, _ in loader])
    y = torch.cat([b for _, b in loader])
    expected = (pair.images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std
    ).view(1, 3, 1, 1)
    assert torch.allclose(x, expected, atol=1e-5)
    assert torch.equal(y, pair.labels)


def test_augmentation_is_crop_and_flip_of_the_source() -> None:
    pair = _toy(n=24)
    loader = BatchLoader(*pair, 24, train=True, seed=7, mean=(0.0,) * 3, std=(1 / 255,) * 3)
    assert loader.pad == 1  # size // 8 for 8x8 images
    order = torch.randperm(24, generator=loader._generator(0))
    x, y = next(iter(loader))
    assert torch.equal(y, pair.labels[order])
    padded = torch.nn.functional.pad(pair.images[order].float(), (1, 1, 1, 1))
    n_flipped = 0
    for i in range(24):
        matches = []
        for dy in range(3):
            for dx in range(3):
                crop = padded[i, :, dy : dy + 8, dx : dx + 8]
                for flipped in (False, True):
                    if torch.equal(x[i], crop.flip(-1) if flipped else crop):
                        matches.append(flipped)
        assert matches, f"image {i} is no crop/flip of its source"
        n_flipped += matches[0]
    assert 0 < n_flipped < 24


def test_augmentation_reproducible_from_seed() -> None:
    pair = _toy(size=16)
    a = _collect(BatchLoader(*pair, 10, train=True, seed=3), 2)
    b = _collect(BatchLoader(*pair, 10, train=True, seed=3), 2)
    c = _collect(BatchLoader(*pair, 10, train=True, seed=4), 2)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    d = _collect(BatchLoader(*pair, 10, train=True, generator=g1))
    e = _collect(BatchLoader(*pair, 10, train=True, generator=g2))
    assert all(torch.equal(xd, xe) for (xd, _), (xe, _) in zip(d, e))
    assert a[0][0].shape == (10, 3, 16, 16) and a[0][0].dtype == torch.float32


def test_loader_state_dict_resumes_mid_epoch() -> None:
    pair = _toy()
    reference = _collect(BatchLoader(*pair, 8, train=True, seed=1), 3)  # 6 batches per epoch

    loader = BatchLoader(*pair, 8, train=True, seed=1)
    seen = _collect(loader)  # epoch 0
    for i, batch in enumerate(loader):  # first 2 batches of epoch 1, then stop
        seen.append(batch)
        if i == 1:
            break
    state = loader.state_dict()
    assert state == {"seed": 1, "epoch": 1, "next_batch": 2}

    resumed = BatchLoader(*pair, 8, train=True, seed=99)
    resumed.load_state_dict(state)
    seen += _collect(resumed, 2)  # rest of epoch 1, all of epoch 2
    assert len(seen) == len(reference) == 18
    assert all(
        torch.equal(x, xr) and torch.equal(y, yr) for (x, y), (xr, yr) in zip(seen, reference)
    )


def test_loader_state_after_last_batch_starts_next_epoch() -> None:
    pair = _toy()
    loader = BatchLoader(*pair, 25, train=True, seed=2)
    it = iter(loader)
    next(it), next(it)  # both batches of epoch 0, generator not yet exhausted
    state = loader.state_dict()
    resumed = BatchLoader(*pair, 25, train=True, seed=2)
    resumed.load_state_dict(state)
    reference = BatchLoader(*pair, 25, train=True, seed=2)
    _collect(reference)
    got, expected = _collect(resumed), _collect(reference)  # both: epoch 1
    assert len(got) == len(expected) == 2
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(got, expected))
    assert resumed.epoch == reference.epoch == 2


def test_loader_device_and_split_helper(subset_cache: Path) -> None:
    s = load_splits("cifar10-subset", root=subset_cache, max_valid=30)
    loader = s.loader("valid", 16, device="cpu")
    assert not loader.shuffle and not loader.augment
    x, y = next(iter(loader))
    assert x.device.type == "cpu" and y.device.type == "cpu"
    cpu = BatchLoader(*s.valid, 16, train=True, seed=0, mean=s.mean, std=s.std)
    assert torch.equal(next(iter(cpu))[0], next(iter(s.loader("valid", 16, train=True)))[0])
    with pytest.raises(ValueError, match="split"):
        s.split("holdout")


def test_loader_bad_arguments() -> None:
    pair = _toy()
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(*pair, 0, train=True)
    with pytest.raises(ValueError, match="uint8"):
        BatchLoader(pair.images.float(), pair.labels, 4, train=True)
    with pytest.raises(ValueError, match="labels"):
        BatchLoader(pair.images, pair.labels[:3], 4, train=True)
    with pytest.raises(ValueError, match="seed or generator"):
        BatchLoader(*pair, 4, train=True, seed=1, generator=torch.Generator())
