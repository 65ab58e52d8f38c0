"""Everything that touches Ray: trainables, searcher adapters, the comparison runner."""

from gaea_tune.tune._compare import compare

__all__ = ["compare"]
