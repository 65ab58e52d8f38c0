"""BOHB under a concurrency limit: brackets halve, one trial trains at a time, and a killed
comparison resumes to its budget instead of waiting on trials that will never report."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from ray import tune

from gaea_tune.tune._budget import BudgetState, read_events
from gaea_tune.tune._searchers import BOHBScheduler

PENDING, RUNNING, PAUSED, TERMINATED = "PENDING", "RUNNING", "PAUSED", "TERMINATED"
DATASET = {"name": "cifar10-subset", "resolution": 8, "max_train": 128, "max_valid": 64}


# --- the scheduler against a small model of Tune's loop (no Ray) ------------------------------


class _Trial:
    def __init__(self, name: str, status: str = PENDING, iteration: int = 0) -> None:
        self.trial_id, self.status, self.iteration, self.is_saving = name, status, iteration, False

    def set_status(self, status: str) -> None:
        self.status = status


class _Runner:
    """What the scheduler sees of Tune's controller."""

    def __init__(self, scheduler: BOHBScheduler, trials: list[_Trial]) -> None:
        self.scheduler, self.trials = scheduler, trials
        self.search_alg = SimpleNamespace(
            searcher=SimpleNamespace(on_pause=lambda _: None, on_unpause=lambda _: None)
        )

    def get_trials(self) -> list[_Trial]:
        return self.trials

    def stop_trial(self, trial: _Trial) -> None:
        self.scheduler.on_trial_remove(self, trial)
        trial.status = TERMINATED


def _scheduler(max_t: int, eta: float, max_concurrent: int | None) -> BOHBScheduler:
    scheduler = BOHBScheduler(time_attr="training_iteration", max_t=max_t, reduction_factor=eta)
    scheduler.set_search_properties("acc", "max")
    scheduler.max_concurrent = max_concurrent
    return scheduler


def _drive(scheduler, runner, new_trials: int, max_t: int, steps: int = 2000) -> int:
    """Tune's loop, one step at a time: ask for a trial (the searcher asks the scheduler for a
    slot), start what the scheduler chooses and every pending trial, report one epoch of each
    running trial. Returns the most trials that ever ran at once."""
    quality = random.Random(0)
    acc: dict[str, float] = {}
    trials, most = runner.trials, 0
    for _ in range(steps):
        if new_trials and scheduler.may_add_trial():
            new_trials -= 1
            trial = _Trial(f"t{len(trials)}")
            acc[trial.trial_id] = quality.random()
            trials.append(trial)
            scheduler.on_trial_add(runner, trial)
        chosen = scheduler.choose_trial_to_run(runner)
        for trial in trials:
            if trial is chosen or trial.status == PENDING:
                trial.status = RUNNING
        running = [t for t in trials if t.status == RUNNING]
        most = max(most, len(running))
        for trial in running:
            trial.iteration += 1
            result = {"training_iteration": trial.iteration,
                      "acc": acc.setdefault(trial.trial_id, quality.random())}  # fmt: skip
            decision = scheduler.on_trial_result(runner, trial, result)
            if decision == "PAUSE":
                trial.status = PAUSED
            elif decision == "STOP" or trial.iteration >= max_t:
                scheduler.on_trial_complete(runner, trial, result)
                trial.status = TERMINATED
        if not new_trials and all(t.status == TERMINATED for t in trials):
            return most
    raise AssertionError(f"stuck: {[(t.trial_id, t.status, t.iteration) for t in trials]}")


def test_one_trial_at_a_time_still_halves_every_bracket():
    scheduler = _scheduler(max_t=4, eta=2, max_concurrent=1)
    runner = _Runner(scheduler, [])
    assert _drive(scheduler, runner, new_trials=30, max_t=4) == 1
    epochs = [t.iteration for t in runner.trials]
    # Per band of 10 trials (brackets of 4, 3 and 3): 2 stop at 1 epoch, 2 at 2, 6 reach 4.
    assert (epochs.count(1), epochs.count(2), epochs.count(4)) == (6, 6, 18)


@pytest.mark.parametrize("max_concurrent", [1, None])
def test_paused_trials_run_out_when_the_budget_gate_closes_mid_bracket(max_concurrent):
    # Two trials of a 4-trial bracket, then the searcher proposes nothing more (budget gate):
    # the half-filled bracket is processed anyway (both fit its next rung of 2, the better one
    # goes on to 4); nothing waits forever.
    scheduler = _scheduler(max_t=4, eta=2, max_concurrent=max_concurrent)
    runner = _Runner(scheduler, [])
    _drive(scheduler, runner, new_trials=2, max_t=4)
    assert sorted(t.iteration for t in runner.trials) == [2, 4]


def test_restored_comparison_drops_finished_trials_and_limits_resumed_ones():
    scheduler = _scheduler(max_t=4, eta=2, max_concurrent=1)
    # Tuner.restore adds every trial again: two finished, two unfinished (as PENDING).
    trials = [_Trial("a", TERMINATED, 1), _Trial("b", TERMINATED, 1),
              _Trial("c", PENDING, 2), _Trial("d", PENDING, 1)]  # fmt: skip
    runner = _Runner(scheduler, [])
    for trial in trials:
        runner.trials.append(trial)
        scheduler.on_trial_add(runner, trial)
    assert trials[0] not in scheduler._trial_info and trials[1] not in scheduler._trial_info
    assert [t.status for t in trials[2:]] == [PENDING, PAUSED]  # the second waits for the slot
    # The searcher is spent (budget): the brackets must still run out, one trial at a time.
    assert _drive(scheduler, runner, new_trials=0, max_t=4) == 1


def test_without_a_limit_trials_still_run_side_by_side():
    scheduler = _scheduler(max_t=4, eta=2, max_concurrent=None)
    runner = _Runner(scheduler, [])
    assert _drive(scheduler, runner, new_trials=10, max_t=4) > 1


# --- live runs ----------------------------------------------------------------------------------


def _max_overlap(events: list[dict]) -> float:
    """Longest time two trials trained at once, from the result events (1 device per trial):
    each result covers [time - work since the trial's previous result, time]."""
    last: dict[str, float] = {}
    spans = []
    for event in (e for e in events if e["kind"] == "result"):
        work = event["trial_device_seconds"] - last.get(event["trial_id"], 0.0)
        last[event["trial_id"]] = event["trial_device_seconds"]
        spans.append((event["time"] - work, event["time"], event["trial_id"]))
    spans.sort()
    worst = 0.0
    for i, (_, end, trial) in enumerate(spans):
        for other_start, other_end, other in spans[i + 1 :]:
            if other_start >= end:
                break
            if other != trial:
                worst = max(worst, min(end, other_end) - other_start)
    return worst


class _MostRunning(tune.Callback):
    """The most trials RUNNING at once, checked after every step of Tune's controller."""

    most = 0

    def on_step_end(self, iteration, trials, **info):
        self.most = max(self.most, sum(t.status == RUNNING for t in trials))


@pytest.mark.integration
def test_live_bohb_halves_with_max_concurrent_one(ray_local, tmp_path):
    from gaea_tune.tune._budget import BudgetCallback, BudgetedSearcher, BudgetStopper
    from gaea_tune.tune._searchers import make_tune_components
    from gaea_tune.tune._standalone_trainable import standalone_trainable
    from search_spaces import get_space

    # What compare builds for one method x seed, plus a callback that watches trial statuses.
    param_space, search_alg, scheduler = make_tune_components(
        "bohb", get_space("nb201"), {"reduction_factor": 2}, 0, 4
    )
    events = tmp_path / "events.jsonl"
    stopper = BudgetStopper(str(events), 5.0, str(events), 1.0)
    most_running = _MostRunning()
    base = {"C": 4, "N": 1, "dataset": DATASET, "epochs": 4, "batch_size": 32, "seed": 0,
            "resources": {"cpu": 1, "gpu": 0}}  # fmt: skip
    tuner = tune.Tuner(
        tune.with_resources(standalone_trainable, {"cpu": 1, "gpu": 0}),
        param_space={**base, **param_space},
        tune_config=tune.TuneConfig(
            metric="search_signal",
            mode="max",
            search_alg=BudgetedSearcher(search_alg, stopper),
            scheduler=scheduler,
            num_samples=-1,
            max_concurrent_trials=1,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="bohb",
            storage_path=str(tmp_path),
            stop=stopper,
            callbacks=[most_running, BudgetCallback(*stopper.args)],
        ),
    )
    tuner.fit()
    events_log = read_events(events)
    results = [e for e in events_log if e["kind"] == "result"]
    spent_at = min((e["time"] for e in results if e["method_device_seconds"] >= 5.0), default=1e99)
    started: dict[str, float] = {}
    reached: dict[str, int] = {}
    for event in results:
        started.setdefault(event["trial_id"], event["time"])
        reached[event["trial_id"]] = max(reached.get(event["trial_id"], 0), event["epoch"])
    first_at_max_t = min(e["time"] for e in results if e["epoch"] == 4)
    # Trials BOHB ended before the budget did, and the epochs each reached.
    ended = {e["trial_id"] for e in events_log if e["kind"] == "finish" and e["time"] < spent_at}
    assert {1, 2, 4} <= {reached[t] for t in ended}, reached
    # Halving goes on after a trial reached max_t (Ray's backfill sent all later ones there).
    assert [t for t in ended if reached[t] < 4 and started[t] > first_at_max_t], reached
    assert most_running.most == 1
    assert _max_overlap(results) < 0.05


def _experiment_state(workdir: Path) -> list[str]:
    """Trial statuses in the newest Tune experiment snapshot of the BOHB run."""
    files = sorted(workdir.glob("ray/*/bohb-seed0/experiment_state-*.json"))
    if not files:
        return []
    try:
        data = json.loads(files[-1].read_text())
    except (OSError, ValueError):
        return []  # being written
    return [json.loads(state)["status"] for state, _ in data["trial_data"]]


@pytest.mark.integration
def test_killed_bohb_comparison_resumes_to_its_budget(tmp_path):
    from gaea_tune.tracking import Tracker, default_tracking

    budget = 8.0
    raw = {
        "name": "bohb-resume", "space": {"name": "nb201", "C": 4, "N": 1}, "dataset": DATASET,
        "budget": {"device_seconds": budget}, "seeds": [0], "resources": {"gpu": 0, "cpu": 1},
        "progress_every_seconds": 5, "output_dir": str(tmp_path / "out"),
        "methods": {"bohb": {"epochs": 4, "reduction_factor": 2, "batch_size": 32,
                             "max_concurrent": 1}},
    }  # fmt: skip
    config_file = tmp_path / "bohb.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    workdir = Path(raw["output_dir"]).resolve()
    command = [sys.executable, "-m", "gaea_tune.cli", "compare", str(config_file)]
    env = {**os.environ, "RAY_ADDRESS": "", "TUNE_GLOBAL_CHECKPOINT_S": "1"}  # Tune snapshots
    first = subprocess.Popen(command, start_new_session=True, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    # Kill once Tune's snapshot holds finished and unfinished trials: on restore, Ray's
    # HyperBandForBOHB put the finished ones back into a bracket that then waited for them.
    deadline = time.time() + 180
    while time.time() < deadline and first.poll() is None:
        statuses = _experiment_state(workdir)
        if TERMINATED in statuses and {PAUSED, RUNNING, PENDING} & set(statuses):
            break
        time.sleep(0.2)
    if first.poll() is None:
        os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    killed_at = time.time()
    assert TERMINATED in statuses and {PAUSED, RUNNING, PENDING} & set(statuses), statuses
    time.sleep(2)
    resumed = subprocess.Popen([*command, "--resume"], start_new_session=True, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        output, _ = resumed.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(resumed.pid, signal.SIGKILL)
        output, _ = resumed.communicate()
        pytest.fail("the resumed comparison did not finish: " + output[-2000:])
    assert resumed.returncode == 0, output[-3000:]
    (events_file,) = workdir.glob("runs/*/events/bohb-seed0.jsonl")
    events = read_events(events_file)
    assert [e for e in events if e["kind"] == "result" and e["time"] > killed_at]
    assert _max_overlap(events) < 0.05
    summary = json.loads((workdir / "report" / "summary.json").read_text())
    spent = summary["methods"]["bohb"]["seeds"][0]["spent_device_seconds"]  # lost work included
    if spent < budget:  # then the searcher ended because one more trial would not have fit
        ends = [k for k, e in enumerate(events) if e["kind"] == "search_end"]
        assert ends, f"the search ended at {spent} of {budget} s without saying why"
        end = events[ends[-1]]
        assert end["reason"] == "the next trial is not expected to fit in the budget left", end
        replay = tmp_path / "replay.jsonl"  # the ledger as the log stood when the search ended
        replay.write_text("".join(json.dumps(e) + "\n" for e in events[: ends[-1]]))
        ledger = BudgetState("replay", budget, str(replay), 1.0).ledger
        assert end["spent"] == pytest.approx(ledger.spent, abs=1e-5)
        assert end["expected_trial_cost"] == pytest.approx(ledger.expected_trial_cost(), abs=1e-5)
        assert budget - spent < end["expected_trial_cost"], (spent, end)  # none left idle
    uri, artifacts = default_tracking(workdir)
    tracker = Tracker(uri, raw["name"], artifacts)
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=5000)
    assert runs and not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
