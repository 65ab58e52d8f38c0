"""What a driver killed mid-write leaves behind: a cut event line, a cut Tune snapshot."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from gaea_tune.tune._budget import BudgetState, read_events
from gaea_tune.tune._live import set_aside_partial_snapshots

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


def _snapshot(folder: Path, session: str, cut: str | None = None) -> list[Path]:
    files = {
        f"experiment_state-{session}.json": json.dumps({"trial_data": [], "runner_data": {}}),
        f"search_gen_state-{session}.json": pickle.dumps({"counter": 3}),
        f"searcher-state-{session}.pkl": pickle.dumps({"observations": list(range(50))}),
    }
    for name, data in files.items():
        data = data.encode() if isinstance(data, str) else data
        (folder / name).write_bytes(data[: len(data) // 2] if name == cut else data)
    return [folder / name for name in files]


def test_a_cut_snapshot_is_set_aside_and_the_session_before_restored(tmp_path):
    older = _snapshot(tmp_path, "2026-01-01_10-00-00")
    newer = _snapshot(
        tmp_path, "2026-01-01_11-00-00", cut="experiment_state-2026-01-01_11-00-00.json"
    )
    lines = set_aside_partial_snapshots(str(tmp_path))
    assert lines == [
        "Tune's snapshot of session 2026-01-01_11-00-00 was cut short "
        "(experiment_state-2026-01-01_11-00-00.json); set aside as *.partial; "
        "Tune restores session 2026-01-01_10-00-00"
    ]
    assert all(p.exists() for p in older)
    assert not any(p.exists() for p in newer)
    assert all(p.with_name(p.name + ".partial").exists() for p in newer)
    assert set_aside_partial_snapshots(str(tmp_path)) == []  # what is left is whole


def test_with_no_whole_snapshot_left_the_run_folder_is_moved_aside(tmp_path):
    run = tmp_path / "random-seed0"
    run.mkdir()
    _snapshot(run, "2026-01-01_10-00-00", cut="searcher-state-2026-01-01_10-00-00.pkl")
    (line,) = set_aside_partial_snapshots(str(run))
    assert "(searcher-state-2026-01-01_10-00-00.pkl); set aside as *.partial" in line
    assert "no whole one is left: the Tune run's folder is now random-seed0.partial" in line
    assert not run.exists()
    assert (
        tmp_path / "random-seed0.partial" / "searcher-state-2026-01-01_10-00-00.pkl.partial"
    ).exists()
    # a driver killed before Tune's first snapshot: a folder with none
    run.mkdir()
    (run / "tuner.pkl").write_bytes(pickle.dumps({}))
    (line,) = set_aside_partial_snapshots(str(run))
    assert line.startswith("no Tune snapshot was written before the kill: ")
    assert "folder is now random-seed0.partial-2, and a new Tune run goes on" in line
    assert (tmp_path / "random-seed0.partial-2" / "tuner.pkl").exists() and not run.exists()


def test_a_whole_snapshot_is_left_alone(tmp_path):
    files = _snapshot(tmp_path, "2026-01-01_10-00-00")
    assert set_aside_partial_snapshots(str(tmp_path)) == []
    assert set_aside_partial_snapshots(str(tmp_path / "missing")) == []
    assert set_aside_partial_snapshots("s3://bucket/run") == []
    assert all(p.exists() for p in files)
