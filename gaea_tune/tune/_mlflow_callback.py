"""A Ray Tune callback that records every trial as a nested MLflow run."""

from __future__ import annotations

import math
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from gaea_tune.tracking import Tracker

# Result keys Ray adds itself; not worth a metric each.
_RAY_KEYS = {
    "timestamp", "time_this_iter_s", "time_total_s", "pid", "time_since_restore",
    "iterations_since_restore", "timesteps_since_restore", "done", "checkpoint_dir_name",
    "should_checkpoint", "date", "hostname", "node_ip", "trial_id", "experiment_tag",
}  # fmt: skip


def failure_reason(trial: Trial) -> str:
    """A one-line reason why a trial failed."""
    error = trial.get_error()
    text = str(error) if error is not None else "unknown error"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "unknown error"


class MLflowTrialLogger(Callback):
    """Log each trial as a child run of ``parent_run_id``: per-epoch metrics, genotype, history."""

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        artifact_location: str | None,
        parent_run_id: str,
        key_prefix: str,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.tracking = (tracking_uri, experiment_name, artifact_location)
        self.parent_run_id = parent_run_id
        self.key_prefix = key_prefix
        self.tags = dict(tags or {})
        self._tracker: Tracker | None = None
        self._runs: dict[str, str] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}

    def __getstate__(self) -> dict[str, Any]:  # the MLflow client does not pickle
        state = self.__dict__.copy()
        state["_tracker"] = None
        return state

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            self._tracker = Tracker(*self.tracking)
        return self._tracker

    def run_id(self, trial: Trial) -> str:
        if trial.trial_id not in self._runs:
            run_id = self.tracker.start_run(
                name=f"{self.tags.get('gaea.method', 'trial')}-{trial.trial_id}",
                key=f"{self.key_prefix}/trial/{trial.trial_id}",
                parent_run_id=self.parent_run_id,
                tags={**self.tags, "gaea.level": "trial", "gaea.trial_id": trial.trial_id},
            )
            self.tracker.log_params(run_id, _loggable_config(trial.config))
            self._runs[trial.trial_id] = run_id
        return self._runs[trial.trial_id]

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.run_id(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ) -> None:
        run_id = self.run_id(trial)
        step = int(result.get("training_iteration", 0))
        scalars = {k: v for k, v in result.items() if k not in _RAY_KEYS}
        self.tracker.log_metrics(run_id, scalars, step=step)
        extras = {
            k: v for k, v in result.items() if isinstance(v, (str, list)) and k not in _RAY_KEYS
        }
        if "genotype" in extras:
            self.tracker.set_tags(run_id, {"genotype": extras["genotype"]})
        if extras:
            history = self._history.setdefault(trial.trial_id, [])
            history.append({"step": step, **extras})
            self.tracker.log_json(run_id, history, "history.json")

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        run_id = self.run_id(trial)
        failure = (trial.last_result or {}).get("failure")
        if failure:  # a deterministic failure the trainable reported (not retried)
            self.tracker.set_tags(run_id, {"gaea.failure": str(failure)[:500]})
        self.tracker.end_run(run_id, "FAILED" if failure else "FINISHED")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        run_id = self.run_id(trial)
        self.tracker.set_tags(run_id, {"gaea.failure": failure_reason(trial)})
        self.tracker.end_run(run_id, "FAILED")


def _loggable_config(config: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in config.items()
        if not (isinstance(v, float) and not math.isfinite(v)) and k != "arch_weights"
    }
