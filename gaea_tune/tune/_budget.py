"""Budget enforcement inside one Tune run: a searcher gate, a stopper and an event log.

One :class:`BudgetLedger` per method x seed lives in the process that drives that Tune run; the
stopper (sees every result), the searcher gate (decides whether a trial may start) and the
callback (sees failures) share it through :class:`BudgetState`. Every result is also appended
to an event log on disk, from which the ledger and the incumbent curve are rebuilt on resume.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback, Stopper
from ray.tune.experiment import Trial
from ray.tune.search import Searcher

from gaea_tune.budget import BudgetLedger

_STATES: dict[str, BudgetState] = {}
# A method whose trials keep failing stops launching new ones after this many in a row.
MAX_CONSECUTIVE_FAILURES = 5
_LOCK = threading.Lock()


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a method x seed's log (``runs/<run>/events/<method>-seed<k>.jsonl``), in the
    order written. Only lines ended by their newline count: one being appended, or cut short by a
    kill mid-write, is left out. A missing file holds none."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return _whole_lines(data)


def _whole_lines(data: bytes) -> list[dict[str, Any]]:
    """The events in a log's bytes, up to its last newline."""
    complete = data[: data.rfind(b"\n") + 1].decode()
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


class BudgetState:
    """Ledger plus event log for one method x seed (one per process, found by key)."""

    def __init__(self, key: str, budget: float, events_path: str, devices: float) -> None:
        self.key = key
        self.devices = devices
        self.ledger = BudgetLedger(budget)
        self.events_path = Path(events_path)
        self.events: list[dict[str, Any]] = []
        self.last_result_time: dict[str, float] = {}
        self.failures: dict[str, str] = {}
        self.consecutive_failures = 0
        self.search_ended = False  # this process recorded why the searcher launches no more
        if self.events_path.exists():
            data = self.events_path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):  # a line cut short by a kill mid-write was never recorded
                with self.events_path.open("r+b") as handle:
                    handle.truncate(end)
            for event in _whole_lines(data):
                self._apply(event)

    @classmethod
    def get(cls, key: str, budget: float, events_path: str, devices: float) -> BudgetState:
        with _LOCK:
            if key not in _STATES:
                _STATES[key] = cls(key, budget, events_path, devices)
            return _STATES[key]

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        trial_id = event.get("trial_id")
        if kind == "result":
            self.ledger.charge(trial_id, event["trial_device_seconds"])
            self.events.append(event)
        elif kind == "finish":
            completed = event.get("completed", True)
            self.ledger.finish(trial_id, completed=completed)
            self.consecutive_failures = 0 if completed else self.consecutive_failures + 1
        elif kind == "lost":
            self.ledger.charge_lost(event["device_seconds"])
        elif kind == "failed":
            self.failures[trial_id] = event["reason"]

    def record(self, event: dict[str, Any]) -> None:
        """Apply an event and append it to the log (so a killed driver loses nothing)."""
        event = {"time": time.time(), **event}
        self._apply(event)
        if event["kind"] == "result":
            event["method_device_seconds"] = round(self.ledger.spent, 6)
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        with self.events_path.open("a") as handle:
            handle.write(json.dumps(event) + "\n")

    def on_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.last_result_time[trial_id] = time.time()
        failure = result.get("failure")
        signal = None if failure else result.get("search_signal")
        entropy = result.get("entropy")
        self.record(
            {
                "kind": "result",
                "trial_id": trial_id,
                "epoch": int(result.get("epoch", result.get("training_iteration", 0))),
                "trial_device_seconds": float(result.get("device_seconds", 0.0)),
                "search_signal": float(signal) if _finite(signal) else None,
                "genotype": result.get("genotype"),
                "node_id": result.get("node_id"),
                "entropy": float(entropy) if _finite(entropy) else None,
                "images": int(result["images"]) if _finite(result.get("images")) else None,
                "monitors": {
                    k: v for k, v in result.items() if k.startswith("nb201_") and _finite(v)
                },
            }
        )
        if failure:  # a deterministic failure: charged above, recorded once, never retried
            self.record({"kind": "failed", "trial_id": trial_id, "reason": str(failure)})


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _StateRef:
    """Picklable handle to a :class:`BudgetState` (Tune pickles stoppers, searchers, callbacks)."""

    def __init__(self, key: str, budget: float, events_path: str, devices: float) -> None:
        self.args = (key, budget, events_path, devices)

    @property
    def state(self) -> BudgetState:
        return BudgetState.get(*self.args)


class BudgetStopper(_StateRef, Stopper):
    """Charges every result; stops everything once the method's budget is spent."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.state.on_result(trial_id, result)
        return self.state.ledger.exhausted()

    def stop_all(self) -> bool:
        return self.state.ledger.exhausted()


class BudgetCallback(_StateRef, Callback):
    """Tracks trial starts and ends; charges work lost when a worker dies after its checkpoint."""

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.state.ledger.start(trial.trial_id)
        self.state.last_result_time.setdefault(trial.trial_id, time.time())

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        failed = bool((trial.last_result or {}).get("failure"))
        self.state.record({"kind": "finish", "trial_id": trial.trial_id, "completed": not failed})

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Stop counting, as committed spend, trials Tune ended without a trial callback: a
        trial whose reused actor failed to reset is set to ERROR and nothing else
        (``ray/tune/execution/tune_controller.py:_on_trial_reset``, Ray 2.60). Left in the
        ledger's running set, it would keep :class:`BudgetedSearcher` waiting forever."""
        running = self.state.ledger.running
        if running:
            running.difference_update(
                t.trial_id for t in trials if t.status in (Trial.TERMINATED, Trial.ERROR)
            )

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._charge_lost(trial)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        from gaea_tune.tune._mlflow_callback import failure_reason

        self._charge_lost(trial)
        self.state.record(
            {"kind": "failed", "trial_id": trial.trial_id, "reason": failure_reason(trial)}
        )
        self.state.record({"kind": "finish", "trial_id": trial.trial_id, "completed": False})

    def _charge_lost(self, trial: Trial) -> None:
        state = self.state
        since = state.last_result_time.get(trial.trial_id)
        if since is not None:
            lost = (time.time() - since) * state.devices
            state.record({"kind": "lost", "trial_id": trial.trial_id, "device_seconds": lost})
            state.last_result_time[trial.trial_id] = time.time()


class BudgetedSearcher(Searcher):
    """Wraps a searcher: suggests a trial only while the next one is expected to fit.

    The search ends (``Searcher.FINISHED``, which Tune never asks past) only when one more trial
    would not fit even with no other trial live (:meth:`BudgetLedger.next_fits`), or after
    :data:`MAX_CONSECUTIVE_FAILURES` failed trials in a row; the reason and the figures behind it
    go to the event log as a ``search_end`` event. While only the further spend expected of live
    trials stands in the way, it suggests nothing yet (``None``) and asks again once they end: a
    trial HyperBandForBOHB pauses and then stops at a halving never spends what was expected of
    it, and ending the search on that expectation left up to a few trials' worth of the budget
    unspent (BOHB at 95.3% of B, measured; ``tests/test_bohb_live.py``).
    """

    def __init__(self, searcher: Searcher, state: _StateRef) -> None:
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.ref = state

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        ok = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return ok

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Hand the limit to the wrapped searcher if it enforces one itself (BOHB does, counting
        only trials that hold a slot); otherwise Tune's ConcurrencyLimiter enforces it."""
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | None:
        state = self.ref.state
        ledger = state.ledger
        if state.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            return self._finish(f"{state.consecutive_failures} trials in a row failed")
        if not ledger.next_fits():
            return self._finish("the next trial is not expected to fit in the budget left")
        if not ledger.may_start():
            return None  # live trials are expected to spend what is left: ask once they end
        config = self.searcher.suggest(trial_id)
        if config is not None and config != Searcher.FINISHED:
            ledger.start(trial_id)
        return config

    def _finish(self, reason: str) -> str:
        state = self.ref.state
        if not state.search_ended:
            state.search_ended = True
            ledger = state.ledger
            state.record(
                {
                    "kind": "search_end",
                    "reason": reason,
                    "spent": round(ledger.spent, 6),
                    "expected_trial_cost": round(ledger.expected_trial_cost(), 6),
                    "budget": ledger.budget,
                    "live_trials": len(ledger.running),
                }
            )
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def on_pause(self, trial_id: str) -> None:
        if hasattr(self.searcher, "on_pause"):
            self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        if hasattr(self.searcher, "on_unpause"):
            self.searcher.on_unpause(trial_id)

    def get_state(self) -> dict:
        """This wrapper's own state; Tune saves the wrapped searcher separately."""
        return {"budget_args": self.ref.args, "metric": self._metric, "mode": self._mode}

    def set_state(self, state: dict) -> None:
        self.ref = _StateRef(*state["budget_args"])
        self._metric, self._mode = state["metric"], state["mode"]

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)
