"""The NAS-Bench-201 results table shipped with the package (see data/NB201_README.md)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from gaea_tune.datasets import DATASET_INFO
from search_spaces.nb201 import NB201Genotype

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
# Cost of one training epoch relative to cifar10-valid, as NB201 records it.
EPOCH_COST_FACTOR = {"cifar10-valid": 1.0, "cifar10": 1.0, "cifar100": 2.0, "ImageNet16-120": 6.068}
# (search signal column at 12 epochs, ground-truth column at 200 epochs) per dataset.
# Dataset of a tabular search -> (12-epoch signal, 200-epoch signal, ground truth); the ground
# truth is the dataset registry's headline column (gaea_tune.datasets).
SEARCH_COLUMNS = {
    name: (*signals, DATASET_INFO[name].ground_truth[0])
    for name, signals in {
        "cifar10-valid": ("cifar10_valid_val_12", "cifar10_valid_val_200"),
        "cifar10": ("cifar10_valid_val_12", "cifar10_valid_val_200"),
        "cifar100": ("cifar100_val_12", "cifar100_val_200"),
        "ImageNet16-120": ("imagenet16_val_12", "imagenet16_val_200"),
    }.items()
}


class NB201Table:
    """Look-ups in the 15,625-row NAS-Bench-201 table, by genotype, arch string or index."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.columns = tuple(c for c in frame.columns if c not in ("index", "arch"))
        self._values = {c: frame[c].to_numpy(dtype=np.float64) for c in self.columns}

    def __len__(self) -> int:
        return len(self.frame)

    def column(self, name: str) -> np.ndarray:
        """All 15,625 values of one column, in index order."""
        if name not in self._values:
            raise ValueError(f"unknown NB201 column {name!r}; allowed: {', '.join(self.columns)}")
        return self._values[name]

    def lookup(self, cell: NB201Genotype | str | int, column: str) -> float:
        """One column's value for a cell given as genotype, arch string or index."""
        return float(self.column(column)[self.index_of(cell)])

    def row(self, cell: NB201Genotype | str | int) -> dict[str, float]:
        """Every recorded value of one cell."""
        index = self.index_of(cell)
        return {c: float(self._values[c][index]) for c in self.columns}

    @staticmethod
    def index_of(cell: NB201Genotype | str | int) -> int:
        if isinstance(cell, (int, np.integer)):
            return NB201Genotype.from_index(int(cell)).index
        if isinstance(cell, str):
            cell = NB201Genotype.from_string(cell)
        return cell.index

    def best(self, column: str) -> tuple[NB201Genotype, float]:
        """The cell with the highest value of ``column`` and that value."""
        index = int(np.argmax(self.column(column)))
        return NB201Genotype.from_index(index), float(self.column(column)[index])

    def training_cost(self, cell: NB201Genotype | str | int, epochs: int, dataset: str) -> float:
        """Recorded seconds to train ``cell`` for ``epochs`` epochs on ``dataset``."""
        if dataset not in EPOCH_COST_FACTOR:
            raise ValueError(f"unknown NB201 dataset {dataset!r}; allowed: {', '.join(DATASETS)}")
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        seconds = self.lookup(cell, "cifar10_valid_epoch_seconds")
        return float(epochs * seconds * EPOCH_COST_FACTOR[dataset])


@lru_cache(maxsize=1)
def load_table() -> NB201Table:
    """The bundled table (read once per process)."""
    with resources.files("gaea_tune").joinpath("data/nb201.csv.gz").open("rb") as handle:
        frame = pd.read_csv(handle, compression="gzip")
    return NB201Table(frame)
