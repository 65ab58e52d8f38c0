"""In-memory image-classification data for architecture search, on CPU and GPU.

Every dataset is held as one ``uint8`` NCHW tensor per split plus ``int64`` labels; augmentation
(pad-and-random-crop, horizontal flip) and normalisation run batch-wise on tensors inside
:class:`BatchLoader`, driven by an explicit seed, so runs are reproducible and resumable.

The facts about each dataset (classes, image size, normalisation, where each split comes from,
which NAS-Bench-201 (NB201) table columns are its ground truth) live in one registry,
:data:`DATASET_INFO`; :func:`split_indices` and :func:`load_splits` derive everything from it.
Each dataset has two image pools, its training set and its test set (ImageNet16-120: its
validation set), and each split is a set of indices into one of them:

``cifar10-subset``
    The bundled ``gaea_tune/data/cifar10-subset.zip`` (10,000 train / 2,000 test CIFAR-10 JPEGs)
    for offline runs and tests; NB201 has no index lists for it. train/valid = a split of the
    10,000 training images seeded by ``seed`` (``valid_fraction``, default 0.5 -> 5k/5k); test =
    the 2,000 test images, so valid and test never share an image. The zip is extracted once
    into the cache folder and decoded once into ``cifar10-subset.npz`` next to it; later loads
    read that file.
``cifar10-valid``
    NB201's fixed split of CIFAR-10's 50k training set: train = its 25k ``train`` half, valid =
    its 25k ``valid`` half; test = the official 10k test set. Not seeded.
``cifar10``
    NB201's "train on all 50k, report on the test set": train = 50k, test = 10k and no valid
    split, so it gives a search no signal (:func:`search_signal_error`); search on
    ``cifar10-valid`` instead.
``cifar100`` / ``ImageNet16-120``
    train = the full training set; valid = NB201's ``xvalid`` half of the official test
    (CIFAR-100) / validation (ImageNet16-120) set, test = its ``xtest`` half. Everything a search
    sees (training batches, architecture batches, its search signal) comes from train and valid,
    so no ``xtest`` image, on which the ground truth is measured, ever steers one. Not seeded.

NB201's index lists ship in ``gaea_tune/data/nb201_splits/`` (see its README.md).
``max_train`` / ``max_valid`` / ``max_test`` cap a split to a subset of it seeded by ``seed``.

CIFAR comes through torchvision and is downloaded only with ``download=True``. ImageNet16-120
is read from NB201's pickled batches (``train_data_batch_1`` ... ``train_data_batch_10`` and
``val_data``; labels 1-based, classes 1..120 kept in file order and shifted to 0-based); it
cannot be downloaded automatically.

The cache folder is ``$GAEA_TUNE_CACHE`` if set, else ``~/.cache/gaea-tune``.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from gaea_tune.datasets import (  # noqa: F401  (the registry, re-exported)
    CIFAR10_STATS,
    DATASET_INFO,
    DATASETS,
    SPLITS,
    DatasetInfo,
    SplitSource,
    dataset_info,
    search_signal_error,
)

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "DATASET_INFO",
    "SPLITS",
    "BatchLoader",
    "DatasetInfo",
    "ImageSplits",
    "SplitSource",
    "TensorPair",
    "cache_dir",
    "dataset_info",
    "load_splits",
    "nb201_index_lists",
    "search_signal_error",
    "split_indices",
    "subset_path",
]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

_SUBSET_ZIP = Path(__file__).resolve().parent / "data" / "cifar10-subset.zip"
_SUBSET_NAME = "cifar10-subset"
_SUBSET_FORMAT = 1  # bump when the npz layout changes
_IMAGENET16_TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
_IMAGENET16_VAL_FILE = "val_data"
_SPLITS_FOLDER = "data/nb201_splits"

# Independent random streams derived from the seed, so caps never change the split.
_STREAM_SPLIT = 0
_STREAM_CAP = {"train": 1, "valid": 2, "test": 3}


class TensorPair(NamedTuple):
    """One split: ``images`` uint8 [N, 3, H, W] and ``labels`` int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class ImageSplits:
    """train / valid / test splits of one dataset plus what a network and loader need."""

    name: str
    train: TensorPair
    valid: TensorPair
    test: TensorPair
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def split(self, which: str) -> TensorPair:
        """The split named ``which`` ('train', 'valid' or 'test')."""
        if which not in ("train", "valid", "test"):
            raise ValueError(f"split must be one of train/valid/test, got {which!r}")
        return getattr(self, which)

    def loader(
        self,
        which: str,
        batch_size: int,
        *,
        train: bool | None = None,
        seed: int = 0,
        drop_last: bool | None = None,
        device: torch.device | str | None = None,
        cutout: int = 0,
    ) -> BatchLoader:
        """A :class:`BatchLoader` over split ``which``; ``train`` defaults to ``which=='train'``;
        ``cutout`` > 0 adds Cutout of that side to the training augmentation."""
        pair = self.split(which)
        return BatchLoader(
            pair.images,
            pair.labels,
            batch_size,
            train=(which == "train") if train is None else train,
            mean=self.mean,
            std=self.std,
            seed=seed,
            drop_last=drop_last,
            device=device,
            cutout=cutout,
        )


# --------------------------------------------------------------------------- cache / subset


def cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``path``, else ``$GAEA_TUNE_CACHE``, else ``~/.cache/gaea-tune``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("GAEA_TUNE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gaea-tune"


def subset_path(cache: str | os.PathLike[str] | None = None) -> Path:
    """The decoded subset file (``<cache>/cifar10-subset.npz``); created by :func:`load_splits`."""
    return cache_dir(cache) / f"{_SUBSET_NAME}.npz"


def _extract_subset(cache: Path) -> Path:
    """Extract the bundled zip into ``cache`` once; returns the ImageFolder root."""
    target = cache / _SUBSET_NAME
    if target.is_dir():
        return target
    if not _SUBSET_ZIP.is_file():
        raise FileNotFoundError(f"the bundled subset is missing: {_SUBSET_ZIP}")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_SUBSET_NAME}-", dir=cache))
    try:
        with zipfile.ZipFile(_SUBSET_ZIP) as zf:
            zf.extractall(tmp)
        try:
            os.rename(tmp / _SUBSET_NAME, target)
        except OSError:
            if not target.is_dir():  # a concurrent extraction did not win either
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _decode_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``folder/<class>/*.jpg`` into uint8 [N, 3, 32, 32] and CIFAR-10 labels."""
    from PIL import Image

    label_of = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
    images: list[np.ndarray] = []
    labels: list[int] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if class_dir.name not in label_of:
            raise ValueError(
                f"unexpected class folder {class_dir.name!r} in {folder}; "
                f"allowed: {', '.join(CIFAR10_CLASSES)}"
            )
        for file in sorted(class_dir.glob("*.jpg")):
            with Image.open(file) as img:
                images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            labels.append(label_of[class_dir.name])
    if not images:
        raise FileNotFoundError(f"no JPEG images found under {folder}")
    return (
        np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)),
        np.asarray(labels, dtype=np.int64),
    )


def _subset_is_current(npz: Any) -> bool:
    try:
        return (
            int(npz["format"]) == _SUBSET_FORMAT
            and int(npz["zip_size"]) == _SUBSET_ZIP.stat().st_size
        )
    except (KeyError, OSError, ValueError):
        return False


def _decode_subset(cache: Path) -> dict[str, np.ndarray]:
    """Extract (if needed) and decode the bundled subset; write the npz atomically."""
    folder = _extract_subset(cache)
    train_x, train_y = _decode_folder(folder / "train")
    test_x, test_y = _decode_folder(folder / "test")
    arrays = {
        "train_x": train_x,
        "train_y": train_y,
        "test_x": test_x,
        "test_y": test_y,
        "format": np.asarray(_SUBSET_FORMAT),
        "zip_size": np.asarray(_SUBSET_ZIP.stat().st_size),
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f".{_SUBSET_NAME}-", suffix=".npz.tmp", dir=cache)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; the cache may be shared
        os.replace(tmp_name, subset_path(cache))
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return arrays


def _load_subset(cache: Path) -> tuple[TensorPair, TensorPair]:
    path = subset_path(cache)
    arrays: dict[str, np.ndarray] | None = None
    if path.is_file():
        try:
            with np.load(path) as npz:
                if _subset_is_current(npz):
                    arrays = {k: npz[k] for k in ("train_x", "train_y", "test_x", "test_y")}
        except (OSError, ValueError, zipfile.BadZipFile):
            arrays = None  # unreadable (e.g. truncated by a crash): rebuild below
    if arrays is None:
        arrays = _decode_subset(cache)
    return (
        TensorPair(torch.from_numpy(arrays["train_x"]), torch.from_numpy(arrays["train_y"])),
        TensorPair(torch.from_numpy(arrays["test_x"]), torch.from_numpy(arrays["test_y"])),
    )


# --------------------------------------------------------------------------- torchvision / NB201


def _load_torchvision(name: str, root: Path, download: bool) -> tuple[TensorPair, TensorPair]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = root / cls.base_folder
    hint = (
        f"{cls.__name__} was not found under {str(root)!r} (looked for {str(folder)!r}); "
        "pass download=True (CLI: `--set dataset.download=true`) to download it, "
        "or point root at a folder that holds it"
    )
    if not download and not folder.is_dir():
        raise FileNotFoundError(hint)
    pairs = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=download)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise FileNotFoundError(f"{hint} ({err})") from err
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        pairs.append(TensorPair(images, torch.as_tensor(ds.targets, dtype=torch.int64)))
    return pairs[0], pairs[1]


def _imagenet16_folder(root: Path) -> Path:
    for candidate in (root, root / "ImageNet16"):
        if (candidate / _IMAGENET16_VAL_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"ImageNet16 was not found under {str(root)!r} (looked for "
        f"{_IMAGENET16_VAL_FILE!r} and {', '.join(_IMAGENET16_TRAIN_FILES)} there and in "
        f"{str(root / 'ImageNet16')!r}); it cannot be downloaded automatically: get NB201's "
        "ImageNet16 files and pass their folder as root"
    )


def _read_imagenet16(files: list[Path], num_classes: int) -> TensorPair:
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"ImageNet16 file missing: {str(file)!r}")
        with open(file, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        target = np.asarray(entry["labels"], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 16 * 16 or data.shape[0] != target.shape[0]:
            raise ValueError(
                f"{str(file)!r}: expected 'data' of shape (N, 768) matching 'labels', "
                f"got {data.shape} and {target.shape}"
            )
        keep = (target >= 1) & (target <= num_classes)
        images.append(data[keep].reshape(-1, 3, 16, 16))
        labels.append(target[keep] - 1)
    return TensorPair(
        torch.from_numpy(np.ascontiguousarray(np.concatenate(images))),
        torch.from_numpy(np.concatenate(labels)),
    )


def _load_imagenet16(root: Path, num_classes: int) -> tuple[TensorPair, TensorPair]:
    folder = _imagenet16_folder(root)
    train = _read_imagenet16([folder / f for f in _IMAGENET16_TRAIN_FILES], num_classes)
    val = _read_imagenet16([folder / _IMAGENET16_VAL_FILE], num_classes)
    return train, val


def _load_pools(
    info: DatasetInfo, root: str | os.PathLike[str] | None, download: bool
) -> dict[str, TensorPair]:
    """The dataset's full training and test pools, keyed ``"train"`` / ``"test"``."""
    if info.files == "cifar10-subset":
        train, test = _load_subset(cache_dir(root))
    else:
        data_root = Path(root).expanduser() if root is not None else cache_dir() / "datasets"
        if info.files == "imagenet16":
            train, test = _load_imagenet16(data_root, info.num_classes)
        else:
            train, test = _load_torchvision(info.files, data_root, download)
    return {"train": train, "test": test}


# --------------------------------------------------------------------------- splits


@cache
def _read_index_file(file: str) -> dict[str, np.ndarray]:
    """One shipped NB201 index file: key -> read-only int64 indices (cached per process)."""
    path = resources.files("gaea_tune").joinpath(f"{_SPLITS_FOLDER}/{file}")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        payload = json.load(handle)
    lists: dict[str, np.ndarray] = {}
    for key, value in payload.items():
        if not (isinstance(value, list) and len(value) == 2 and value[0] == "int"):
            raise ValueError(f"{file}: entry {key!r} is not ['int', [indices]]")
        index = np.asarray(value[1], dtype=str).astype(np.int64)
        index.flags.writeable = False
        lists[key] = index
    return lists


def nb201_index_lists(name: str) -> dict[str, np.ndarray]:
    """NB201's index lists of dataset ``name``: key -> int64 indices into the pool they split.

    ``{"train", "valid"}`` (both into the CIFAR-10 training set) for ``cifar10-valid``;
    ``{"xvalid", "xtest"}`` (into the test / validation set) for ``cifar100`` and
    ``ImageNet16-120``; empty for datasets NB201 gives no index lists (``cifar10``,
    ``cifar10-subset``).
    """
    info = dataset_info(name)
    if info.index_file is None:
        return {}
    return {key: index.copy() for key, index in _read_index_file(info.index_file).items()}


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _check_cap(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")


def _check_split_args(
    info: DatasetInfo, seed: Any, caps: Mapping[str, Any], valid_fraction: Any
) -> float | None:
    """Validate the arguments that choose the splits; returns the valid fraction in effect."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    for which, cap in caps.items():
        _check_cap(f"max_{which}", cap)
    if info.default_valid_fraction is None:
        if valid_fraction is not None:
            hint = f" ({info.no_signal})" if info.no_signal else ""
            raise ValueError(
                f"valid_fraction applies only to a dataset with a seeded split (cifar10-subset); "
                f"{info.name!r} has NB201's fixed splits ({info.describe()}){hint}; "
                f"got valid_fraction={valid_fraction!r}, leave it unset"
            )
        return None
    if valid_fraction is None:
        return info.default_valid_fraction
    if (
        isinstance(valid_fraction, bool)
        or not isinstance(valid_fraction, float | int)
        or not 0.0 <= valid_fraction < 1.0
    ):
        raise ValueError(f"valid_fraction must be a float in [0, 1), got {valid_fraction!r}")
    return float(valid_fraction)


def _check_indexed_pool(info: DatasetInfo, pool: str, size: int) -> None:
    """The index file must partition a pool of exactly ``size`` images, or it means nothing."""
    assert info.index_file is not None
    lists = _read_index_file(info.index_file)
    covered = sum(len(index) for index in lists.values())
    if covered != size or any(len(i) and (i.min() < 0 or i.max() >= size) for i in lists.values()):
        raise ValueError(
            f"dataset {info.name!r}: NB201's index file {info.index_file} splits a {pool} set of "
            f"{covered} images, but the {pool} set loaded has {size}; its splits need NB201's "
            f"own {info.name} images"
        )


def split_indices(
    name: str,
    *,
    seed: int = 0,
    max_train: int | None = None,
    max_valid: int | None = None,
    max_test: int | None = None,
    valid_fraction: float | None = None,
    pool_sizes: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Which images each split of dataset ``name`` holds, without touching an image.

    Returns ``{"train", "valid", "test"}`` -> int64 indices into the pool that split draws from
    (``dataset_info(name).source(split).pool``: the dataset's training set or its test set; see
    the module docstring); :func:`load_splits` takes exactly these rows. NB201's datasets get its
    fixed index lists and ignore ``seed`` (bar the caps); ``cifar10-subset`` gets a train/valid
    split of its training set seeded by ``seed``; a dataset without a valid split (``cifar10``)
    gets an empty one. ``max_*`` keep a subset of a split, seeded by ``seed`` and drawn from a
    stream of its own, so a cap never changes which images the other splits hold.
    ``pool_sizes``: images in the ``"train"`` / ``"test"`` pools actually loaded (default: the
    full dataset's, from the registry); a pool that NB201's index file splits must match it.
    """
    info = dataset_info(name)
    caps = {"train": max_train, "valid": max_valid, "test": max_test}
    fraction = _check_split_args(info, seed, caps, valid_fraction)
    sizes = dict(zip(("train", "test"), info.pool_sizes))
    if pool_sizes is not None:
        sizes.update({pool: int(n) for pool, n in pool_sizes.items()})
    indices: dict[str, np.ndarray] = {}
    for which in SPLITS:
        source = info.source(which)
        if source is None:
            indices[which] = np.empty(0, dtype=np.int64)
            continue
        size = sizes[source.pool]
        if source.index_key is not None:
            _check_indexed_pool(info, source.pool, size)
            index = _read_index_file(str(info.index_file))[source.index_key].copy()
        elif source.holdout is not None:
            assert fraction is not None
            order = _rng(seed, _STREAM_SPLIT).permutation(size)
            n_held = int(round(fraction * size))
            index = order[:n_held] if source.holdout else order[n_held:]
        else:
            index = np.arange(size, dtype=np.int64)
        cap = caps[which]
        if cap is not None and cap < len(index):
            index = index[_rng(seed, _STREAM_CAP[which]).permutation(len(index))[:cap]]
        indices[which] = index.astype(np.int64, copy=False)
    return indices


def _take(pair: TensorPair, index: np.ndarray) -> TensorPair:
    """Rows ``index`` of ``pair``, in that order."""
    idx = torch.from_numpy(np.ascontiguousarray(index, dtype=np.int64))
    return TensorPair(pair.images[idx], pair.labels[idx])


def _resize(pair: TensorPair, size: int) -> TensorPair:
    out = torch.empty((len(pair), pair.images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(pair), 4096):  # bounded float memory
        chunk = pair.images[start : start + 4096].float()
        small = F.interpolate(chunk, size=(size, size), mode="area")
        out[start : start + 4096] = small.round_().clamp_(0, 255).to(torch.uint8)
    return TensorPair(out, pair.labels)


def load_splits(
    name: str,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    resolution: int | None = None,
    max_train: int | None = None,
    max_valid: int | None = None,
    max_test: int | None = None,
    valid_fraction: float | None = None,
) -> ImageSplits:
    """Load dataset ``name`` (one of :data:`DATASETS`) as its train/valid/test splits.

    The splits are the rows :func:`split_indices` selects (NB201's fixed splits for its
    datasets; see the module docstring). ``root``: for ``cifar10-subset`` the cache folder it is
    extracted/decoded into (default :func:`cache_dir`); otherwise the folder holding the
    torchvision / ImageNet16 files (default ``<cache>/datasets``). ``seed`` fixes the caps (and
    the seeded split of ``cifar10-subset``). ``resolution`` downsamples all images once (area
    interpolation) to ``resolution`` x ``resolution``. ``max_*`` cap each split to a seeded
    random subset of at most that many images. ``valid_fraction`` (``cifar10-subset`` only,
    default 0.5) is the part of its training images held out as valid; NB201's datasets refuse it.
    """
    info = dataset_info(name)
    native = info.image_size
    if resolution is not None and (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | np.integer)
        or not 4 <= resolution <= native
    ):
        raise ValueError(
            f"resolution must be None or an int in [4, {native}] for {name!r}, got {resolution!r}"
        )
    split_args = {
        "seed": seed,
        "max_train": max_train,
        "max_valid": max_valid,
        "max_test": max_test,
        "valid_fraction": valid_fraction,
    }
    split_indices(name, **split_args)  # refuse bad arguments before reading any image
    pools = _load_pools(info, root, download)
    index = split_indices(name, **split_args, pool_sizes={k: len(p) for k, p in pools.items()})
    parts = {}
    for which in SPLITS:
        source = info.source(which) or SplitSource("train")  # no such split: empty, from train
        parts[which] = _take(pools[source.pool], index[which])
    size = native
    if resolution is not None and resolution != native:
        size = int(resolution)
        parts = {which: _resize(pair, size) for which, pair in parts.items()}
    return ImageSplits(
        name=name,
        train=parts["train"],
        valid=parts["valid"],
        test=parts["test"],
        num_classes=info.num_classes,
        image_size=size,
        mean=info.mean,
        std=info.std,
    )


# --------------------------------------------------------------------------- loader


class BatchLoader:
    """Batches of (normalised float NCHW images, int64 labels) from in-memory uint8 images.

    With ``train=True`` it reshuffles every epoch and augments each batch (zero-pad by ``pad``
    pixels, random crop back to size, horizontal flip with p=0.5); otherwise it walks the data in
    order and only normalises. ``shuffle`` / ``augment`` override those two separately.
    All randomness comes from ``seed`` (or one draw from ``generator``) and the epoch/batch
    position, on the CPU, so the batches do not depend on ``device``, and ``state_dict()`` taken
    between batches resumes the exact sequence. ``device``: the images are moved there once and
    batches are assembled there. One iteration at a time per loader.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        mean: tuple[float, ...] | torch.Tensor = CIFAR10_STATS[0],
        std: tuple[float, ...] | torch.Tensor = CIFAR10_STATS[1],
        seed: int | None = None,
        generator: torch.Generator | None = None,
        drop_last: bool | None = None,
        device: torch.device | str | None = None,
        pad: int | None = None,
        shuffle: bool | None = None,
        augment: bool | None = None,
        cutout: int = 0,
    ) -> None:
        if isinstance(cutout, bool) or not isinstance(cutout, int) or cutout < 0:
            raise ValueError(f"cutout must be an int >= 0 (square side in pixels), got {cutout!r}")
        self.cutout = cutout
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                "images must be a uint8 [N, C, H, W] tensor, "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"labels must be 1-D with {images.shape[0]} entries, got {tuple(labels.shape)}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if seed is not None and generator is not None:
            raise ValueError("pass seed or generator, not both")
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self.seed = int(seed or 0)
        self.batch_size = batch_size
        self.train = bool(train)
        self.shuffle = self.train if shuffle is None else bool(shuffle)
        self.augment = self.train if augment is None else bool(augment)
        if drop_last is None:  # drop a ragged last batch in training, unless that leaves none
            drop_last = self.train and images.shape[0] >= batch_size
        self.drop_last = bool(drop_last)
        self.device = torch.device(device) if device is not None else images.device
        size = images.shape[-1]
        self.pad = max(1, size // 8) if pad is None else int(pad)
        if self.pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad!r}")
        self.images = images.to(self.device)
        self.labels = labels.to(device=self.device, dtype=torch.int64)
        channels = images.shape[1]
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if mean_t.shape[1] != channels or std_t.shape[1] != channels:
            raise ValueError(f"mean/std need {channels} entries, got {mean!r} / {std!r}")
        # x_norm = x_uint8 * scale + shift
        self._scale = (1.0 / (255.0 * std_t)).to(self.device)
        self._shift = (-mean_t / std_t).to(self.device)
        self.epoch = 0
        self._next_batch = 0

    def __len__(self) -> int:
        n = int(self.labels.shape[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict[str, int]:
        """Position in the batch sequence (seed, epoch, next batch); enough to resume exactly."""
        return {"seed": self.seed, "epoch": self.epoch, "next_batch": self._next_batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume from :meth:`state_dict`; the next iteration continues where that one stopped."""
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._next_batch = int(state["next_batch"])

    def _generator(self, *key: int) -> torch.Generator:
        mixed = np.random.SeedSequence([self.seed, *key]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed(int(mixed[0]) << 31 ^ int(mixed[1]))

    def _epoch_order(self) -> torch.Tensor | None:
        if not self.shuffle:
            return None
        return torch.randperm(int(self.labels.shape[0]), generator=self._generator(self.epoch))

    def _cutout(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Zero one ``cutout`` x ``cutout`` square per image (clipped at the border), centred on
        a uniform pixel, after normalisation: DeVries & Taylor's Cutout as quark0/darts applies
        it (``cnn/utils.py`` ``Cutout``)."""
        b, _, h, w = x.shape
        g = self._generator(self.epoch, batch, 2)
        cy = torch.randint(0, h, (b,), generator=g)[:, None]
        cx = torch.randint(0, w, (b,), generator=g)[:, None]
        half = self.cutout // 2
        rows = torch.arange(h)[None, :]
        cols = torch.arange(w)[None, :]
        inside_r = (rows >= cy - half) & (rows < cy + self.cutout - half)  # [B, H]
        inside_c = (cols >= cx - half) & (cols < cx + self.cutout - half)  # [B, W]
        mask = ~(inside_r[:, :, None] & inside_c[:, None, :])  # [B, H, W]
        return x * mask[:, None].to(device=x.device, dtype=x.dtype)

    def _augment(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self._generator(self.epoch, batch, 1)
        p = self.pad
        offsets = torch.randint(0, 2 * p + 1, (2, b), generator=g)
        flip = torch.rand(b, generator=g) < 0.5
        rows = offsets[0, :, None] + torch.arange(h)  # [B, H] into the padded image
        cols_fwd = offsets[1, :, None] + torch.arange(w)
        cols = torch.where(flip[:, None], cols_fwd.flip(1), cols_fwd)  # [B, W]
        padded = F.pad(x, (p, p, p, p)) if p > 0 else x
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        ri = rows.to(x.device)[:, None, :, None]
        wi = cols.to(x.device)[:, None, None, :]
        return padded[bi, ci, ri, wi]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n_batches = len(self)
        if n_batches and self._next_batch >= n_batches:  # state saved after an epoch's last batch
            self.epoch += 1
            self._next_batch = 0
        order = self._epoch_order()
        n = int(self.labels.shape[0])
        while self._next_batch < n_batches:
            batch = self._next_batch
            start, stop = batch * self.batch_size, min(n, (batch + 1) * self.batch_size)
            if order is None:
                x, y = self.images[start:stop], self.labels[start:stop]
            else:
                idx = order[start:stop].to(self.device)
                x, y = self.images[idx], self.labels[idx]
            if self.augment:
                x = self._augment(x, batch)
            out = x.to(torch.float32).mul_(self._scale).add_(self._shift)
            if self.augment and self.cutout:
                out = self._cutout(out, batch)
            self._next_batch = batch + 1
            yield out, y
        self.epoch += 1
        self._next_batch = 0
