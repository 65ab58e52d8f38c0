"""Everything that touches Ray: trainables, searcher adapters, the comparison runner.

``compare`` loads on first use, so a Ray worker that imports one trainable module of this
package does not import the comparison driver (MLflow, every backend) with it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compare"]


def __getattr__(name: str) -> Any:
    if name == "compare":
        from gaea_tune.tune._compare import compare

        return compare
    raise AttributeError(f"module 'gaea_tune.tune' has no attribute {name!r}")
