"""Ray Tune's side of the progress view: a callback that advances a
:class:`gaea_tune._progress.Progress` with every epoch a trial reports."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from gaea_tune._progress import Progress


class EpochProgress(Callback):
    """Moves ``progress`` to each result's ``epoch`` (a supernet search: one trial)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def __getstate__(self) -> dict[str, Any]:  # a bar (its stream) does not pickle
        return {"progress": None}

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        epoch = result.get("epoch")
        if epoch is None or self.progress is None:
            return
        signal = result.get("search_signal")
        text = f"signal {signal:.2f}" if isinstance(signal, (int, float)) else None
        self.progress.set(float(epoch), text)
