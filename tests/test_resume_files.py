"""What a driver killed mid-write leaves behind: a cut event line, a cut Tune snapshot."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from gaea_tune.tune._budget import BudgetState, read_events
from gaea_tune.tune._live import plan_for_budget_left, set_aside_unrestorable

EVENT = {"time": 1.0, "kind": "result", "trial_id": "t1", "epoch": 1, "trial_device_seconds": 2.5}


def _log(path: Path, *events: dict, cut: str = "") -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + cut)


def test_read_events_leaves_out_a_line_not_yet_ended(tmp_path):
    path = tmp_path / "random-seed0.jsonl"
    assert read_events(path) == []
    second = {**EVENT, "epoch": 2, "trial_device_seconds": 5.0}
    _log(path, EVENT, second, cut=json.dumps(EVENT)[:20])
    assert read_events(path) == [EVENT, second]
    _log(path, EVENT, second)
    assert read_events(path) == [EVENT, second]


def test_the_ledger_drops_a_cut_line_and_appends_after_the_last_whole_one(tmp_path):
    path = tmp_path / "events" / "random-seed0.jsonl"
    path.parent.mkdir()
    _log(path, EVENT, cut='{"time": 2.0, "kind": "res')
    state = BudgetState("cut-line", 100.0, str(path), 1.0)
    assert state.ledger.spent == 2.5
    state.record({"kind": "finish", "trial_id": "t1", "completed": True})
    events = read_events(path)
    assert [e["kind"] for e in events] == ["result", "finish"]
    assert path.read_text().count("\n") == 2


class Renamed:  # pickled by reference to its class, which the check must not import
    pass


def _snapshot(folder: Path, session: str, cut: str | None = None) -> list[Path]:
    """Files as Tune 2.60 writes them: JSON experiment state, pickles for the rest."""
    files = {
        f"experiment_state-{session}.json": json.dumps({"trial_data": [], "runner_data": {}}),
        f"search_gen_state-{session}.json": pickle.dumps({"counter": 3}),
        f"searcher-state-{session}.pkl": pickle.dumps({"observations": list(range(50))}),
        f"basic-variant-state-{session}.json": pickle.dumps({"trial_generator": Renamed()}),
        "tuner.pkl": pickle.dumps({"param_space": {"epochs": 4}}, protocol=5),
    }
    for name, data in files.items():
        data = data.encode() if isinstance(data, str) else data
        (folder / name).write_bytes(data[: len(data) // 2] if name == cut else data)
    return [folder / name for name in files]


def _run_folder(tmp_path: Path) -> Path:
    run = tmp_path / "random-seed0"
    run.mkdir()
    return run


def test_a_whole_snapshot_is_left_for_tune_to_restore(tmp_path):
    run = _run_folder(tmp_path)
    files = _snapshot(run, "2026-01-01_10-00-00")
    assert set_aside_unrestorable(str(run)) is None
    assert set_aside_unrestorable(str(tmp_path / "missing")) is None
    assert set_aside_unrestorable("s3://bucket/run") is None
    assert all(p.exists() for p in files)


@pytest.mark.parametrize(
    "cut",
    [
        "experiment_state-2026-01-01_11-00-00.json",
        "search_gen_state-2026-01-01_11-00-00.json",
        "searcher-state-2026-01-01_11-00-00.pkl",
        "basic-variant-state-2026-01-01_11-00-00.json",
        "tuner.pkl",
    ],
)
def test_a_cut_snapshot_file_moves_the_run_folder_aside(tmp_path, cut):
    run = _run_folder(tmp_path)
    _snapshot(run, "2026-01-01_10-00-00")  # an older whole session is not used instead
    _snapshot(run, "2026-01-01_11-00-00", cut=cut)
    line = set_aside_unrestorable(str(run))
    assert line == (
        f"{cut} of Tune's snapshot does not load (cut short by the kill): {run} moved to "
        "random-seed0.partial; a new Tune run goes on from the budget already spent, its "
        "searcher started afresh (a weight-sharing search from epoch 0)"
    )
    assert not run.exists()
    assert (tmp_path / "random-seed0.partial" / cut).exists()


def test_a_folder_without_a_snapshot_is_moved_aside_under_a_free_name(tmp_path):
    (tmp_path / "random-seed0.partial").mkdir()  # an earlier resume's
    run = _run_folder(tmp_path)
    (run / "tuner.pkl").write_bytes(pickle.dumps({}))
    line = set_aside_unrestorable(str(run))
    assert line.startswith("Tune wrote no snapshot before the driver was killed: ")
    assert "moved to random-seed0.partial-2;" in line
    assert (tmp_path / "random-seed0.partial-2" / "tuner.pkl").exists() and not run.exists()


def test_a_search_started_anew_plans_for_the_budget_left():
    planned = {"method": "gaea-darts", "epochs_from_budget": True, "budget_device_seconds": 100.0}
    assert plan_for_budget_left(planned, 100.0, 30.0)["budget_device_seconds"] == 70.0
    assert planned["budget_device_seconds"] == 100.0  # not changed in place
    assert plan_for_budget_left(planned, 100.0, 0.0) is planned  # a first run
    assert plan_for_budget_left(planned, 100.0, 120.0) is planned  # spent: the stopper ends it
    fixed = {"method": "gaea-darts", "epochs": 50}  # epochs given: nothing planned from B
    assert plan_for_budget_left(fixed, 100.0, 30.0) is fixed
