"""MLflow calls are retried while the tracking server cannot be reached, never on a deterministic
error, and for a bounded time."""

from __future__ import annotations

import types

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from gaea_tune import tracking
from gaea_tune.tracking import Tracker, TrackingError, is_transient


def _connection_error(url: str = "http://10.0.0.1:5000/api/2.0/mlflow/runs/log-batch"):
    """What MlflowClient raises when the server is down: MLflow wraps the requests error."""
    try:
        raise requests.exceptions.ConnectionError(
            f"HTTPConnectionPool: Max retries exceeded with url: {url} "
            "(Caused by NewConnectionError: [Errno 111] Connection refused)"
        )
    except requests.exceptions.ConnectionError as error:
        try:
            raise MlflowException(f"API request to {url} failed with exception {error}")
        except MlflowException as wrapped:
            return wrapped


class FakeClient:
    """Stands in for MlflowClient: records calls and fails as told."""

    instances: list[FakeClient] = []

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.calls: list[str] = []
        self.fail: dict[str, list[BaseException]] = {}
        self.runs: dict[str, dict] = {}
        self.batches: list[dict] = []
        FakeClient.instances.append(self)

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        queue = self.fail.get(name)
        if queue:
            raise queue.pop(0)

    def get_experiment_by_name(self, name):
        self._maybe_fail("get_experiment_by_name")
        return types.SimpleNamespace(experiment_id="7", lifecycle_stage="active")

    def search_runs(self, experiment_ids, filter_string="", run_view_type=None, max_results=1):
        self._maybe_fail("search_runs")
        key = filter_string.split("= '")[-1].rstrip("'")
        return [types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id))
                for run_id, tags in self.runs.items() if tags.get(tracking.KEY_TAG) == key]  # fmt: skip

    def create_run(self, experiment_id, tags=None, run_name=None):
        run_id = f"run{len(self.runs)}"
        self.runs[run_id] = dict(tags or {})  # created on the server ...
        self._maybe_fail("create_run")  # ... but the answer may be lost
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id))

    def update_run(self, run_id, status=None):
        self._maybe_fail("update_run")

    def log_batch(self, run_id, metrics=(), params=(), tags=()):
        self._maybe_fail("log_batch")
        self.batches.append({"run_id": run_id, "metrics": list(metrics)})


@pytest.fixture
def fake(monkeypatch):
    FakeClient.instances.clear()
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(tracking, "MlflowClient", FakeClient)
    monkeypatch.setattr(tracking, "_sleep", sleep)
    monkeypatch.setattr(tracking, "_clock", lambda: now[0])
    monkeypatch.delenv(tracking.RETRY_ENV, raising=False)
    tracker = Tracker("sqlite:///not-used.db", "exp")
    return tracker, FakeClient.instances[-1], slept


def test_connection_errors_are_retried_until_the_call_succeeds(fake):
    tracker, client, slept = fake
    client.fail["log_batch"] = [_connection_error() for _ in range(4)]
    tracker.log_metrics("run0", {"loss": 1.5}, step=3)
    assert client.calls.count("log_batch") == 5
    assert len(client.batches) == 1 and client.batches[0]["metrics"][0].value == 1.5
    assert len(slept) == 4 and slept == sorted(slept) and sum(slept) < 10  # backoff, bounded


def test_a_deterministic_error_is_raised_at_once(fake):
    tracker, client, slept = fake
    client.fail["log_batch"] = [
        RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad metric"})
    ]
    with pytest.raises(MlflowException, match="bad metric"):
        tracker.log_metrics("run0", {"loss": 1.5}, step=3)
    assert client.calls.count("log_batch") == 1 and not slept
    local = MlflowException("bad value", error_code=INVALID_PARAMETER_VALUE)
    assert not is_transient(local)
    assert not is_transient(
        RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "x"})
    )
    assert is_transient(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "x"}))
    assert is_transient(ConnectionResetError("reset by peer"))
    assert not is_transient(ValueError("not a connection problem"))


def test_retries_stop_after_the_configured_time(fake, monkeypatch):
    tracker, client, slept = fake
    monkeypatch.setenv(tracking.RETRY_ENV, "30")
    client.fail["log_batch"] = [_connection_error() for _ in range(1000)]
    with pytest.raises(TrackingError, match="kept failing on the connection for 30 s"):
        tracker.log_metrics("run0", {"loss": 1.5}, step=3)
    assert 29.0 <= sum(slept) <= 30.0 + 1e-9
    assert 4 < client.calls.count("log_batch") < 20


def test_a_run_created_before_its_answer_was_lost_is_not_created_twice(fake):
    tracker, client, _ = fake
    client.fail["create_run"] = [_connection_error()]
    run_id = tracker.start_run(name="t", key="exp/inv/random/0/trial/a")
    assert list(client.runs) == [run_id]  # found by its key on the second attempt
    assert tracker.start_run(name="t", key="exp/inv/random/0/trial/a") == run_id
    assert len(client.runs) == 1


def test_an_outage_is_waited_out_only_on_a_server_already_used(monkeypatch):
    """A server this process never reached is a configuration error, reported at once; one it
    has used (a restart) is waited for."""
    monkeypatch.setattr(tracking, "MlflowClient", FakeClient)
    monkeypatch.setattr(tracking, "_sleep", lambda seconds: None)
    attempts = []

    def unreachable(uri, timeout=5.0):
        attempts.append(uri)
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as error:
            raise TrackingError(
                f"MLflow tracking server {uri!r} is unreachable ({error})"
            ) from None

    monkeypatch.setattr(tracking, "check_reachable", unreachable)
    monkeypatch.setattr(tracking, "_REACHED", set())
    with pytest.raises(TrackingError, match="unreachable"):
        Tracker("http://127.0.0.1:9", "exp")
    assert len(attempts) == 1

    calls = iter([ConnectionRefusedError(111, "refused")] * 3)

    def comes_back(uri, timeout=5.0):
        attempts.append(uri)
        error = next(calls, None)
        if error is not None:
            try:
                raise error
            except OSError as cause:
                raise TrackingError(f"{uri!r} is unreachable ({cause})") from None

    monkeypatch.setattr(tracking, "check_reachable", comes_back)
    tracking._REACHED.add("http://127.0.0.1:9")
    attempts.clear()
    Tracker("http://127.0.0.1:9", "exp")
    assert len(attempts) == 4
