"""A tiny budget-matched comparison through the Python API (what a notebook cell would do).

Runs GAEA-DARTS against random search on the bundled CIFAR-10 subset with a few CPU-seconds
each, then prints the results table and saves the incumbent plot:

    .venv/bin/python examples/tiny_comparison.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gaea_tune as g

ROOT = Path(__file__).resolve().parents[1]


def main(output_dir: str) -> None:
    config = g.load_config(
        ROOT / "tune_configs" / "quickstart.yaml",
        overrides={
            "name": "tiny-api",
            "output_dir": output_dir,
            "budget": {"device_seconds": 8},
            "space.C": 4,
            "dataset": {"name": "cifar10-subset", "resolution": 8, "max_train": 256,
                        "max_valid": 128},
            "methods": {
                "gaea-darts": {"epochs": 2, "batch_size": 64, "arch_lr": 0.3},
                "random": {"epochs": 1, "batch_size": 64, "max_concurrent": 1},
            },
        },
    )  # fmt: skip
    result = g.compare(config, progress=None)
    print(result.results[["rank", "method", "family", "mean", "trials"]].to_string(index=False))
    figure = result.plot_incumbents()
    figure.savefig(Path(output_dir) / "api_incumbents.png", dpi=80)
    print(f"gaea-tune {g.__version__}; report in {result.files['summary.json']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="gaea-api-"))
