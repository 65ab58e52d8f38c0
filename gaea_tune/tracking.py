"""MLflow tracking: comparison run > method runs > trial runs (the only module importing mlflow).

Runs are nested through the ``mlflow.parentRunId`` tag, so the MLflow UI shows the tree at
``http://HOST:PORT/#/experiments/ID/runs``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

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
    if _local_store_missing(tracking_uri):
        return  # a store that does not exist yet holds no experiment at all
    check_reachable(tracking_uri)
    try:
        experiment = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(name)
    except MlflowException as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise TrackingError(f"cannot use MLflow store {tracking_uri!r}: {first_line}") from None
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise ConfigError(_deleted_message(tracking_uri, name, experiment.experiment_id))


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
        check_reachable(tracking_uri)
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        try:
            experiment = self.client.get_experiment_by_name(experiment_name)
            if experiment is None:
                self.experiment_id = self.client.create_experiment(
                    experiment_name, artifact_location=artifact_location
                )
            elif experiment.lifecycle_stage == "deleted":
                raise TrackingError(
                    _deleted_message(tracking_uri, experiment_name, experiment.experiment_id)
                )
            else:
                self.experiment_id = experiment.experiment_id
        except MlflowException as error:
            raise TrackingError(f"cannot use MLflow store {tracking_uri!r}: {error}") from None

    def find_run(self, key: str) -> str | None:
        """The id of the run tagged with ``key`` (to reuse it on resume), if any."""
        runs = self.client.search_runs(
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
        """Create (or, with the same ``key``, reopen) a run and return its id."""
        existing = self.find_run(key)
        if existing is not None:
            self.client.update_run(existing, status="RUNNING")
            return existing
        all_tags = {RUN_NAME_TAG: name, KEY_TAG: key, **(tags or {})}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=name)
        return run.info.run_id

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
