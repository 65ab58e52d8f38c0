"""What both trainables do when a trial fails for a reason that a retry cannot fix.

A non-finite loss, a bad option or an impossible shape fails the same way every time, so the
trial is not handed back to Ray Tune as an error (which would retry it from its checkpoint up to
``max_failures`` times and charge every retry): the trainable reports one last result carrying
``failure`` (the one-line reason), ``search_signal`` NaN and the device-seconds spent so far, and
returns. The budget charges that work once, the MLflow trial run ends FAILED with the reason, the
searcher is told NaN (a failed evaluation) and the method keeps searching.
A worker that dies (killed process, lost node) is still retried from its last checkpoint.
"""

from __future__ import annotations

import math
from typing import Any

# Exceptions whose cause is in the trial's own inputs or numerics: retrying cannot help.
DETERMINISTIC_ERRORS: tuple[type[BaseException], ...] = (
    ArithmeticError,  # FloatingPointError (non-finite loss), ZeroDivisionError, ...
    ValueError,  # bad option values, impossible shapes reported by our own checks
    TypeError,
    KeyError,
)


def failure_reason(error: BaseException) -> str:
    """``"TypeName: first line of the message"``, at most 500 characters."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()[:500]


def failure_result(
    error: BaseException, device_seconds: float, device_kind: str, **extra: Any
) -> dict[str, Any]:
    """The last result a trainable reports for a deterministic failure."""
    return {
        **extra,
        "search_signal": math.nan,
        "failure": failure_reason(error),
        "device_seconds": float(device_seconds),
        "device_kind": device_kind,
    }
