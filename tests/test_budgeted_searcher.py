"""The budget gate around a Tune searcher: wait while live trials hold the budget left, end
only when one more trial would not fit, and say why in the event log."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.experiment import Trial
from ray.tune.search import Searcher

from gaea_tune.tune._budget import (
    MAX_CONSECUTIVE_FAILURES,
    BudgetCallback,
    BudgetedSearcher,
    BudgetState,
    _StateRef,
    read_events,
)


class _Counting(Searcher):
    def __init__(self) -> None:
        super().__init__(metric="search_signal", mode="max")
        self.asked: list[str] = []

    def suggest(self, trial_id: str) -> dict:
        self.asked.append(trial_id)
        return {"x": len(self.asked)}


def _gate(tmp_path, budget: float) -> tuple[BudgetedSearcher, _Counting, BudgetState]:
    inner = _Counting()
    ref = _StateRef(f"gate-{tmp_path.name}", budget, str(tmp_path / "events.jsonl"), 1.0)
    return BudgetedSearcher(inner, ref), inner, ref.state


def _run(state: BudgetState, trial: str, cost: float) -> None:
    state.on_result(trial, {"epoch": 1, "device_seconds": cost, "search_signal": 50.0})
    state.record({"kind": "finish", "trial_id": trial, "completed": True})


def test_a_live_trial_holding_the_budget_left_defers_the_next_but_does_not_end_the_search(
    tmp_path,
):
    gate, inner, state = _gate(tmp_path, 10.0)
    assert gate.suggest("t1") == {"x": 1}
    _run(state, "t1", 4.0)  # expected cost 4
    assert gate.suggest("t2") == {"x": 2}
    state.on_result("t2", {"epoch": 1, "device_seconds": 1.0, "search_signal": 40.0})
    # 5 spent + 3 more expected of t2 + 4 for a new one > 10: not now, but not FINISHED
    assert gate.suggest("t3") is None
    assert inner.asked == ["t1", "t2"]  # the wrapped searcher was not asked (no config wasted)
    state.record({"kind": "finish", "trial_id": "t2", "completed": True})  # halved at 1
    assert gate.suggest("t3") == {"x": 3}  # 5 spent + 2.5 expected fits
    assert not [e for e in read_events(tmp_path / "events.jsonl") if e["kind"] == "search_end"]


def test_the_search_ends_when_one_more_trial_would_not_fit_and_the_log_says_why(tmp_path):
    gate, inner, state = _gate(tmp_path, 10.0)
    gate.suggest("t1")
    _run(state, "t1", 4.0)
    gate.suggest("t2")
    _run(state, "t2", 4.0)
    assert gate.suggest("t3") == Searcher.FINISHED  # 8 spent + 4 expected > 10
    assert gate.suggest("t4") == Searcher.FINISHED
    assert inner.asked == ["t1", "t2"]
    (end,) = [e for e in read_events(tmp_path / "events.jsonl") if e["kind"] == "search_end"]
    assert end["reason"] == "the next trial is not expected to fit in the budget left"
    assert (end["spent"], end["expected_trial_cost"], end["budget"]) == (8.0, 4.0, 10.0)
    assert end["live_trials"] == 0
    # the ledger rebuilt from this log on resume ignores the event and keeps the spend
    assert BudgetState("again", 10.0, str(tmp_path / "events.jsonl"), 1.0).ledger.spent == 8.0


def test_consecutive_failures_end_the_search_with_their_reason(tmp_path):
    gate, _, state = _gate(tmp_path, 100.0)
    for k in range(MAX_CONSECUTIVE_FAILURES):
        gate.suggest(f"t{k}")
        state.record({"kind": "finish", "trial_id": f"t{k}", "completed": False})
    assert gate.suggest("last") == Searcher.FINISHED
    (end,) = [e for e in read_events(tmp_path / "events.jsonl") if e["kind"] == "search_end"]
    assert end["reason"] == f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed"


def test_a_trial_tune_ended_without_a_callback_stops_holding_the_budget(tmp_path):
    # Tune sets a trial whose reused actor failed to reset to ERROR and calls no trial callback.
    gate, inner, state = _gate(tmp_path, 10.0)
    gate.suggest("t1")
    _run(state, "t1", 4.0)
    gate.suggest("t2")  # never reports: its actor's reset failed
    assert gate.suggest("t3") is None  # 4 spent + 4 expected of t2 + 4 > 10
    callback = BudgetCallback(*gate.ref.args)
    trials = [SimpleNamespace(trial_id="t1", status=Trial.TERMINATED),
              SimpleNamespace(trial_id="t2", status=Trial.RUNNING)]  # fmt: skip
    callback.on_step_end(iteration=1, trials=trials)
    assert gate.suggest("t3") is None  # t2 still live: still committed
    trials[1].status = Trial.ERROR
    callback.on_step_end(iteration=2, trials=trials)
    assert gate.suggest("t3") == {"x": 3}
    assert state.ledger.finished_costs == [4.0]  # t2 informs no estimate
