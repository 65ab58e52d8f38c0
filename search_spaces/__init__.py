"""Search spaces for gaea-tune: NAS-Bench-201 and the DARTS CNN space (torch and numpy only)."""
