"""MLflow tracking: comparison run > method runs > trial runs (the only module importing mlflow).

Runs are nested through the ``mlflow.parentRunId`` tag, so the MLflow UI shows the tree at
``http://HOST:PORT/#/experiments/ID/runs``.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import logging
import math
import os
import random
import shlex
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests
import urllib3
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from gaea_tune.config import ConfigError


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow's artifact progress bar off for one call (the caller's environment is restored)."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
KEY_TAG = "gaea.key"  # identifies a run across resumes (comparison/method/seed/trial)
_MAX_PARAM_LENGTH = 6000


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable server, bad URI)."""


# --- retrying MLflow calls ----------------------------------------------------------------------
#
# A tracking server that restarts, or a network that drops for a while, must not end a comparison
# that has been training for hours: every MLflow call a Tracker makes is retried with backoff
# while it fails on the connection (refused, reset, timed out, a 5xx answer), for at most
# RETRY_SECONDS per call (GAEA_TUNE_MLFLOW_RETRY_SECONDS overrides it; read at each call).
# MLflow's client retries each HTTP request on its own first (MLFLOW_HTTP_REQUEST_MAX_RETRIES);
# this covers what those retries leave over. Deterministic errors (4xx answers such as
# RESOURCE_DOES_NOT_EXIST or INVALID_PARAMETER_VALUE, local store errors) are raised at once.

RETRY_SECONDS = 120.0
RETRY_ENV = "GAEA_TUNE_MLFLOW_RETRY_SECONDS"
_FIRST_DELAY, _MAX_DELAY = 0.5, 10.0
_log = logging.getLogger(__name__)
_clock = time.monotonic  # replaced in tests
_sleep = time.sleep
_REACHED: set[str] = set()  # tracking URIs this process has used: an outage there is waited out
_T = TypeVar("_T")

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,
    http.client.HTTPException,  # RemoteDisconnected, IncompleteRead, BadStatusLine
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.RetryError,  # MLflow's own retries on 5xx/429 answers ran out
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,  # NewConnectionError, ProtocolError, MaxRetryError, ...
)


def retry_seconds() -> float:
    """How long one MLflow call may keep failing on the connection before it is given up."""
    value = os.environ.get(RETRY_ENV, "").strip()
    try:
        return max(0.0, float(value)) if value else RETRY_SECONDS
    except ValueError:
        return RETRY_SECONDS


def is_transient(error: BaseException) -> bool:
    """True for a failure to talk to the tracking server, which a later attempt can fix."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MlflowException) and getattr(current, "json", None) is not None:
            status = current.get_http_status_code()  # an answer from the server
            return status == 429 or status >= 500
        if isinstance(current, MlflowException) and current is error:
            if current.get_http_status_code() < 500:  # a deterministic client-side error
                return False
        if isinstance(current, urllib.error.HTTPError):
            return current.code == 429 or current.code >= 500
        if isinstance(current, urllib.error.URLError):
            return isinstance(current.reason, OSError)
        if isinstance(current, _CONNECTION_ERRORS):
            return True
        current = current.__cause__ or current.__context__
    return False


def call_with_retry(call: Callable[..., _T], *args: Any, what: str = "", **kwargs: Any) -> _T:
    """``call(*args, **kwargs)``, retried with backoff while it fails on the connection."""
    deadline = None
    delay = _FIRST_DELAY
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as error:
            if not is_transient(error):
                raise
            now = _clock()
            if deadline is None:
                limit = retry_seconds()
                deadline = now + limit
                _log.warning("MLflow %s failed on the connection (%s); retrying for up to %.0f s",
                             what or getattr(call, "__name__", "call"), _one_line(error), limit)  # fmt: skip
            if now >= deadline:
                raise TrackingError(
                    f"MLflow {what or getattr(call, '__name__', 'call')} kept failing on the "
                    f"connection for {limit:.0f} s ({RETRY_ENV}): {_one_line(error)}"
                ) from error
            _sleep(min(delay * random.uniform(0.8, 1.2), max(0.0, deadline - now)))
            delay = min(delay * 2, _MAX_DELAY)


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


class RetryingClient:
    """An ``MlflowClient`` whose public methods go through :func:`call_with_retry`."""

    def __init__(self, client: Any) -> None:
        self.unwrapped = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.unwrapped, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return call_with_retry(attribute, *args, what=name, **kwargs)

        return call


def default_tracking(workdir: str | os.PathLike[str]) -> tuple[str, str]:
    """The embedded default store: a SQLite file and an artifact folder in ``workdir``."""
    root = Path(workdir).resolve()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "mlartifacts").as_uri()


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before any compute, when an HTTP tracking server does not answer."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                raise TrackingError(f"MLflow server at {tracking_uri} answered {response.status}")
    except (urllib.error.URLError, OSError) as error:
        raise TrackingError(
            f"MLflow tracking server {tracking_uri!r} is unreachable ({error}); start it "
            "(`mlflow server`) or leave tracking_uri unset for the local SQLite store"
        ) from None


def _local_store_missing(tracking_uri: str) -> bool:
    """True for a SQLite or file store whose database or folder does not exist yet."""
    scheme, sep, rest = tracking_uri.partition("://")
    if scheme.split("+")[0] == "sqlite" and sep:
        path = rest[1:].split("?")[0] if rest.startswith("/") else ""
        return not path or path == ":memory:" or not Path(path).expanduser().is_file()
    if scheme == "file" and sep:
        return not Path(url2pathname(urlparse(tracking_uri).path)).exists()
    return False


def require_existing_store(tracking_uri: str, hint: str) -> None:
    """For commands that only read: a local store (SQLite file, file folder) that does not exist
    is a :class:`TrackingError` naming it and ``hint``, instead of an empty store created there."""
    if _local_store_missing(tracking_uri):
        raise TrackingError(f"no MLflow store at {tracking_uri!r}; {hint}")


def _deleted_message(tracking_uri: str, name: str, experiment_id: str) -> str:
    message = (
        f"MLflow experiment {name!r} (id {experiment_id}) is deleted in the store {tracking_uri}; "
        f"restore it (`MLFLOW_TRACKING_URI={shlex.quote(tracking_uri)} mlflow experiments restore "
        f"--experiment-id {experiment_id}`, or in the MLflow UI) or choose another name"
    )
    if tracking_uri.startswith("sqlite"):
        message += " (or another output_dir for the default SQLite store)"
    return message


def check_experiment_usable(tracking_uri: str, name: str) -> None:
    """Fail fast, before any compute, when experiment ``name`` exists but is deleted.

    MLflow keeps a deleted experiment's name until it is purged, so runs cannot be created
    under that name. Reads only: no experiment, run or store file is created. Raises
    :class:`ConfigError` for a deleted experiment and :class:`TrackingError` when the store
    cannot be read.
    """
    experiment_exists(tracking_uri, name)


def experiment_exists(tracking_uri: str, name: str) -> bool:
    """Whether the store holds an active experiment ``name`` (False when a local store does not
    exist yet). Reads only; raises as :func:`check_experiment_usable` does."""
    if _local_store_missing(tracking_uri):
        return False  # a store that does not exist yet holds no experiment at all
    check_reachable(tracking_uri)
    try:
        experiment = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(name)
    except MlflowException as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise TrackingError(f"cannot use MLflow store {tracking_uri!r}: {first_line}") from None
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise ConfigError(_deleted_message(tracking_uri, name, experiment.experiment_id))
    return experiment is not None


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Tracker:
    """Thin wrapper over ``MlflowClient`` for one experiment."""

    def __init__(
        self, tracking_uri: str, experiment_name: str, artifact_location: str | None = None
    ) -> None:
        if tracking_uri in _REACHED:  # used before by this process: wait out an outage
            call_with_retry(check_reachable, tracking_uri, what="health check")
        else:  # never reached: a configuration error, reported at once
            check_reachable(tracking_uri)
        self.tracking_uri = tracking_uri
        raw = MlflowClient(tracking_uri=tracking_uri)
        self.client = RetryingClient(raw)
        try:
            self.experiment_id = call_with_retry(
                self._experiment_id, raw, experiment_name, artifact_location, what="experiment"
            )
        except MlflowException as error:
            raise TrackingError(f"cannot use MLflow store {tracking_uri!r}: {error}") from None
        _REACHED.add(tracking_uri)

    def _experiment_id(
        self, client: Any, experiment_name: str, artifact_location: str | None
    ) -> str:
        """Get or create the experiment (one attempt; repeated whole after a dropped answer)."""
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            return client.create_experiment(experiment_name, artifact_location=artifact_location)
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                _deleted_message(self.tracking_uri, experiment_name, experiment.experiment_id)
            )
        return experiment.experiment_id

    def find_run(self, key: str) -> str | None:
        """The id of the run tagged with ``key`` (to reuse it on resume), if any."""
        return self._find_run(self.client, key)

    def _find_run(self, client: Any, key: str) -> str | None:
        runs = client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{KEY_TAG}` = '{key}'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def start_run(
        self,
        name: str,
        key: str,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Create (or, with the same ``key``, reopen) a run and return its id.

        Retried as a whole, looking for the key again first: a run created by an attempt whose
        answer was lost is found, not created twice."""
        all_tags = {RUN_NAME_TAG: name, KEY_TAG: key, **(tags or {})}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id

        def attempt() -> str:
            raw = self.client.unwrapped
            existing = self._find_run(raw, key)
            if existing is not None:
                raw.update_run(existing, status="RUNNING")
                return existing
            return raw.create_run(self.experiment_id, tags=all_tags, run_name=name).info.run_id

        return call_with_retry(attempt, what="start_run")

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log (nested) params once; values already logged on a reopened run are kept."""
        current = self.client.get_run(run_id).data.params
        items = [
            Param(key, str(value)[:_MAX_PARAM_LENGTH])
            for key, value in _flatten(params).items()
            if key not in current
        ]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int) -> None:
        """Log the finite numeric entries of ``metrics`` at ``step``."""
        now = int(time.time() * 1000)
        items = [
            Metric(key, float(value), now, int(step))
            for key, value in metrics.items()
            if _is_number(value) and math.isfinite(float(value))
        ]
        for start in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[start : start + 500])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        items = [RunTag(key, str(value)[:5000]) for key, value in tags.items()]
        if items:
            self.client.log_batch(run_id, tags=items)

    def log_json(self, run_id: str, obj: Any, artifact_file: str) -> None:
        self.client.log_text(run_id, json.dumps(obj, indent=1, default=str), artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_artifact(
        self, run_id: str, path: str | os.PathLike[str], folder: str | None = None
    ) -> None:
        with _no_progress_bar():
            self.client.log_artifact(run_id, str(path), folder)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def get_run(self, run_id: str) -> Any:
        return self.client.get_run(run_id)

    def run_or_none(self, run_id: str) -> Any | None:
        """The run ``run_id``, or ``None`` when the store has no run of that id (or the id is
        malformed)."""
        try:
            return self.client.get_run(run_id)
        except MlflowException:
            return None

    def child_runs(self, parent_run_id: str) -> list[Any]:
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
            max_results=5000,
        )

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def artifact_names(self, run_id: str) -> set[str]:
        """Paths of the run's top-level artifacts."""
        return {item.path for item in self.client.list_artifacts(run_id)}

    def download_json(self, run_id: str, artifact_file: str) -> Any:
        with tempfile.TemporaryDirectory() as folder:
            with _no_progress_bar():
                local = self.client.download_artifacts(run_id, artifact_file, folder)
            return json.loads(Path(local).read_text())

    def ui_url(self, host: str = "127.0.0.1", port: int = 5000) -> str:
        return f"http://{host}:{port}/#/experiments/{self.experiment_id}/runs"
