"""The NAS-Bench-201 results table shipped with the package (see data/NB201_README.md)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from gaea_tune.datasets import DATASET_INFO
from search_spaces.nb201 import NB201Genotype

# Datasets the table has search signals for (gaea_tune.datasets: table_signals), each with the
# cost of one epoch relative to cifar10-valid and (12-epoch signal, 200-epoch signal, ground
# truth) columns; the ground truth is the dataset's headline column.
DATASETS = tuple(name for name, info in DATASET_INFO.items() if info.table_signals)
EPOCH_COST_FACTOR = {name: float(DATASET_INFO[name].table_epoch_cost) for name in DATASETS}
SEARCH_COLUMNS = {
    name: (*DATASET_INFO[name].table_signals, DATASET_INFO[name].ground_truth[0])
    for name in DATASETS
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
