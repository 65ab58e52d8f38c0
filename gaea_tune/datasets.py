"""The dataset registry: one entry per dataset with every fact the rest derives from (classes,
native image size, normalisation, where each split comes from, NB201 index file, ground-truth
columns). Plain Python: configuration validation reads it without loading torch; data loading
lives in :mod:`gaea_tune.data`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

SPLITS: tuple[str, ...] = ("train", "valid", "test")

_RGB = tuple[float, float, float]


def _stats(mean: _RGB, std: _RGB) -> tuple[_RGB, _RGB]:
    """Channel mean / std given in 0..255 units, as pixel values in [0, 1]."""
    return (mean[0] / 255, mean[1] / 255, mean[2] / 255), (std[0] / 255, std[1] / 255, std[2] / 255)


# Channel mean / std as NB201 normalises each dataset.
CIFAR10_STATS = _stats((125.3, 123.0, 113.9), (63.0, 62.1, 66.7))
_CIFAR100_STATS = _stats((129.3, 124.1, 112.4), (68.2, 65.4, 70.4))
_IMAGENET16_STATS = _stats((122.68, 116.66, 104.01), (63.22, 61.26, 65.09))


# --------------------------------------------------------------------------- dataset registry


class SplitSource(NamedTuple):
    """Where the images of one split come from.

    ``pool``: ``"train"`` (the dataset's training set) or ``"test"`` (its test set; for
    ImageNet16-120 its validation set). ``index_key``: the key in the dataset's NB201 index file
    that lists the split's images. ``holdout``: for a split seeded by ``seed``, True for the part
    of ``pool`` held out (``valid_fraction`` of it) and False for the rest. Neither: all of
    ``pool``.
    """

    pool: str
    index_key: str | None = None
    holdout: bool | None = None

    def describe(self) -> str:
        pool = f"the {self.pool} set"
        if self.index_key is not None:
            return f"NB201's {self.index_key!r} part of {pool}"
        if self.holdout is not None:
            return f"the seeded {'held-out part' if self.holdout else 'rest'} of {pool}"
        return f"all of {pool}"


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset's facts: everything :func:`load_splits` and the ground truth derive from.

    ``files``: which image files are read (``"cifar10-subset"``, ``"cifar10"``, ``"cifar100"``
    or ``"imagenet16"``). ``pool_sizes``: images in the full (train, test) pools. ``valid`` is
    None where the dataset has no validation split; ``no_signal`` then says why and what to use
    instead. ``index_file``: NB201's index file under ``gaea_tune/data/nb201_splits/``.
    ``ground_truth``: the NB201 table columns that hold a cell's ground truth on this dataset,
    the headline first (empty: the table has none). ``default_valid_fraction``: set only for a
    dataset whose train/valid split is seeded (then ``valid_fraction`` may change it).
    ``table_signals``: the NB201 table's validation columns at 12 and 200 epochs that a tabular
    search on this dataset reads as its signal (empty: no tabular search), ``table_epoch_cost``
    the cost of one of its epochs relative to cifar10-valid as NB201 records it, and
    ``tabular``: whether ``mode: tabular`` (and table-backed trials) offer it by this name.
    """

    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    files: str
    pool_sizes: tuple[int, int]
    train: SplitSource
    valid: SplitSource | None
    test: SplitSource
    index_file: str | None = None
    ground_truth: tuple[str, ...] = ()
    default_valid_fraction: float | None = None
    no_signal: str | None = None
    table_signals: tuple[str, ...] = ()
    table_epoch_cost: float | None = None
    tabular: bool = False

    def source(self, which: str) -> SplitSource | None:
        """The :class:`SplitSource` of split ``which`` (None: the dataset has no such split)."""
        if which not in SPLITS:
            raise ValueError(f"split must be one of {'/'.join(SPLITS)}, got {which!r}")
        return getattr(self, which)

    def describe(self) -> str:
        """One line: where train / valid / test come from."""
        parts = []
        for which in SPLITS:
            source = self.source(which)
            parts.append(f"{which} = {source.describe() if source else 'none'}")
        return "; ".join(parts)


_REGISTRY = (
    DatasetInfo(
        name="cifar10-subset",
        num_classes=10,
        image_size=32,
        mean=CIFAR10_STATS[0],
        std=CIFAR10_STATS[1],
        files="cifar10-subset",
        pool_sizes=(10_000, 2_000),
        train=SplitSource("train", holdout=False),
        valid=SplitSource("train", holdout=True),
        test=SplitSource("test"),
        ground_truth=("cifar10_test_200",),
        default_valid_fraction=0.5,
    ),
    DatasetInfo(
        name="cifar10-valid",
        num_classes=10,
        image_size=32,
        mean=CIFAR10_STATS[0],
        std=CIFAR10_STATS[1],
        files="cifar10",
        pool_sizes=(50_000, 10_000),
        train=SplitSource("train", index_key="train"),
        valid=SplitSource("train", index_key="valid"),
        test=SplitSource("test"),
        index_file="cifar-split.txt.gz",
        # Headline: the cell trained on all 50k and tested on the test set, the number the
        # papers report; beside it the same cell trained on the 25k train half only.
        ground_truth=("cifar10_test_200", "cifar10_valid_test_200"),
        table_signals=("cifar10_valid_val_12", "cifar10_valid_val_200"),
        table_epoch_cost=1.0,
    ),
    DatasetInfo(
        name="cifar10",
        num_classes=10,
        image_size=32,
        mean=CIFAR10_STATS[0],
        std=CIFAR10_STATS[1],
        files="cifar10",
        pool_sizes=(50_000, 10_000),
        train=SplitSource("train"),
        valid=None,
        test=SplitSource("test"),
        ground_truth=("cifar10_test_200",),
        no_signal=(
            "NB201 trains 'cifar10' on all 50,000 training images and tests on the test set, "
            "so it has no validation split; search on 'cifar10-valid' (NB201's fixed 25k/25k "
            "split of the training set) instead"
        ),
        # a tabular search "on cifar10" ranks by cifar10-valid's validation accuracy, as in NB201
        table_signals=("cifar10_valid_val_12", "cifar10_valid_val_200"),
        table_epoch_cost=1.0,
        tabular=True,
    ),
    DatasetInfo(
        name="cifar100",
        num_classes=100,
        image_size=32,
        mean=_CIFAR100_STATS[0],
        std=_CIFAR100_STATS[1],
        files="cifar100",
        pool_sizes=(50_000, 10_000),
        train=SplitSource("train"),
        valid=SplitSource("test", index_key="xvalid"),
        test=SplitSource("test", index_key="xtest"),
        index_file="cifar100-test-split.txt.gz",
        ground_truth=("cifar100_test_200",),
        table_signals=("cifar100_val_12", "cifar100_val_200"),
        table_epoch_cost=2.0,
        tabular=True,
    ),
    DatasetInfo(
        name="ImageNet16-120",
        num_classes=120,
        image_size=16,
        mean=_IMAGENET16_STATS[0],
        std=_IMAGENET16_STATS[1],
        files="imagenet16",
        pool_sizes=(151_700, 6_000),
        train=SplitSource("train"),
        valid=SplitSource("test", index_key="xvalid"),
        test=SplitSource("test", index_key="xtest"),
        index_file="imagenet-16-120-test-split.txt.gz",
        ground_truth=("imagenet16_test_200",),
        table_signals=("imagenet16_val_12", "imagenet16_val_200"),
        table_epoch_cost=6.068,
        tabular=True,
    ),
)

DATASET_INFO: Mapping[str, DatasetInfo] = MappingProxyType({i.name: i for i in _REGISTRY})

DATASETS: tuple[str, ...] = tuple(DATASET_INFO)
# The training lengths (epochs) the NB201 table records for every cell: a tabular search's
# fidelities.
TABLE_FIDELITIES: tuple[int, ...] = (12, 200)
# Datasets a tabular search (``mode: tabular``, ``dataset.simulate: table``) may name.
TABULAR_DATASETS: tuple[str, ...] = tuple(i.name for i in _REGISTRY if i.tabular)


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of dataset ``name``; a ValueError listing the allowed names if unknown."""
    try:
        return DATASET_INFO[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}") from None


def ground_truth_column(space: str, dataset: str) -> str | None:
    """The NB201 table column that is the headline ground truth of a search of ``space`` on
    ``dataset`` (cifar10-valid: ``cifar10_test_200``, the number the papers report), or None
    where no table gives one (off the NB201 space, or a dataset without table columns)."""
    info = DATASET_INFO.get(dataset)
    return info.ground_truth[0] if space == "nb201" and info and info.ground_truth else None


def search_signal_error(dataset_name: str) -> str | None:
    """Why dataset ``dataset_name`` cannot give a search its signal (one line), or None if it can.

    A search ranks candidates by their accuracy on the valid split; a dataset without one (live
    ``cifar10``) has nothing to rank by.
    """
    info = dataset_info(dataset_name)
    if info.valid is not None:
        return None
    return f"dataset {dataset_name!r} gives a search no signal: {info.no_signal}"
