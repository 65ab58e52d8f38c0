"""Progress of long work: a tqdm bar on a terminal, plain lines otherwise, nothing global."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys

from gaea_tune._progress import Progress, is_terminal


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    with Progress(total=4, desc="tabular", unit="search", stream=stream) as progress:
        progress.advance(2, "random cifar10")
        progress.set(4, "rea cifar10")
        progress("a status block")
    assert stream.getvalue().splitlines() == [
        "tabular: 2/4 search (50%)  random cifar10",
        "tabular: 4/4 search (100%)  rea cifar10",
        "a status block",
    ]
    assert progress.bar is None


def test_plain_lines_are_rate_limited_but_the_last_is_kept():
    stream = io.StringIO()
    progress = Progress(total=3, desc="x", stream=stream, min_interval=3600)
    for _ in range(3):
        progress.advance()
    assert stream.getvalue().splitlines() == ["x: 1/3 it (33%)", "x: 3/3 it (100%)"]
    quiet = Progress(total=3, stream=stream, plain_updates=False)
    quiet.advance(3)
    assert stream.getvalue().count("\n") == 2  # callers that print their own status blocks


def test_a_tqdm_bar_on_a_terminal():
    stream = _Terminal()
    assert is_terminal(stream) and not is_terminal(io.StringIO())
    progress = Progress(total=10, desc="compare", unit="device-s", stream=stream)
    assert type(progress.bar).__name__ == "tqdm"
    progress.set(5, "half")
    progress("above the bar")
    progress.close()
    text = stream.getvalue()
    assert "compare:  50%" in text and "above the bar" in text and "\r" in text


def test_disabled_progress_writes_nothing():
    stream = _Terminal()
    progress = Progress(total=2, stream=stream, enabled=False)
    progress.advance(2)
    progress("nothing")
    assert stream.getvalue() == "" and progress.bar is None


def test_the_tune_callback_pickles_without_its_bar():
    from gaea_tune.tune._progress import EpochProgress

    stream = io.StringIO()
    callback = EpochProgress(Progress(total=3, desc="search", unit="epoch", stream=stream))
    callback.on_trial_result(0, [], None, {"epoch": 2, "search_signal": 51.25})
    assert stream.getvalue() == "search: 2/3 epoch (67%)  signal 51.25\n"
    clone = pickle.loads(pickle.dumps(callback))
    assert clone.progress is None
    clone.on_trial_result(0, [], None, {"epoch": 3})  # a copy elsewhere reports nowhere


def test_importing_the_progress_view_changes_no_global_state():
    code = (
        "import logging, os, sys; env = dict(os.environ); root = logging.getLogger(); "
        "level, handlers = root.level, list(root.handlers); "
        "import gaea_tune._progress, gaea_tune.commands.tabular, gaea_tune.commands.search; "
        "assert 'tqdm' not in sys.modules, 'tqdm imported at import'; "
        "assert dict(os.environ) == env, 'environment changed'; "
        "assert (root.level, root.handlers) == (level, handlers), 'root logger changed'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
