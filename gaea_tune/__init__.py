"""gaea-tune: budget-matched NAS on Ray Tune."""
