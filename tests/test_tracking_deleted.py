"""A deleted MLflow experiment is refused before anything starts, with how to restore it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gaea_tune import tracking
from gaea_tune.config import ConfigError
from gaea_tune.tracking import Tracker, TrackingError, check_experiment_usable, default_tracking


class _FakeClient:
    """Stands in for MlflowClient: a store with one active and one deleted experiment."""

    experiments = {
        "active-study": SimpleNamespace(experiment_id="3", lifecycle_stage="active"),
        "old-study": SimpleNamespace(experiment_id="7", lifecycle_stage="deleted"),
    }

    def __init__(self, tracking_uri):
        self.tracking_uri = tracking_uri

    def get_experiment_by_name(self, name):
        return self.experiments.get(name)

    def create_experiment(self, *args, **kwargs):  # pragma: no cover - must never be called
        raise AssertionError("check_experiment_usable created an experiment")


def test_deleted_experiment_message_names_it_and_the_restore_command(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking, "MlflowClient", _FakeClient)
    uri, _ = default_tracking(tmp_path)
    (tmp_path / "mlflow.db").touch()
    with pytest.raises(ConfigError) as caught:
        check_experiment_usable(uri, "old-study")
    message = str(caught.value)
    assert message == (
        f"MLflow experiment 'old-study' (id 7) is deleted in the store {uri}; restore it "
        f"(`MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id 7`, or in the "
        "MLflow UI) or choose another name (or another output_dir for the default SQLite store)"
    )
    check_experiment_usable(uri, "active-study")
    check_experiment_usable(uri, "never-made")


def test_missing_store_is_neither_read_nor_created(tmp_path):
    folder = tmp_path / "not-yet"
    uri, _ = default_tracking(folder)
    check_experiment_usable(uri, "anything")
    check_experiment_usable((tmp_path / "mlruns").as_uri(), "anything")
    check_experiment_usable("sqlite://", "anything")  # in-memory: nothing to be deleted
    assert not folder.exists()
    assert not (tmp_path / "mlruns").exists()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A real SQLite store (the default layout): an active, a deleted and a to-restore one."""
    from mlflow import MlflowClient

    uri, artifacts = default_tracking(tmp_path_factory.mktemp("store"))
    client = MlflowClient(tracking_uri=uri)
    client.create_experiment("active-study", artifact_location=artifacts)
    ids = {}
    for name in ("old-study", "restore-me"):
        ids[name] = client.create_experiment(name, artifact_location=artifacts)
        client.delete_experiment(ids[name])
    return uri, client, ids


@pytest.mark.integration
def test_deleted_experiment_in_a_sqlite_store(store):
    from mlflow.entities import ViewType

    uri, client, ids = store
    with pytest.raises(ConfigError) as caught:
        check_experiment_usable(uri, "old-study")
    message = str(caught.value)
    assert "\n" not in message
    assert "'old-study'" in message and "is deleted" in message
    assert f"MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id " in message
    assert f"--experiment-id {ids['old-study']}`" in message
    with pytest.raises(TrackingError, match="is deleted"):
        Tracker(uri, "old-study")  # the tracker refuses it too, before any run is created

    before = [
        (e.experiment_id, e.lifecycle_stage)
        for e in client.search_experiments(view_type=ViewType.ALL)
    ]
    check_experiment_usable(uri, "active-study")
    check_experiment_usable(uri, "never-made")
    after = [
        (e.experiment_id, e.lifecycle_stage)
        for e in client.search_experiments(view_type=ViewType.ALL)
    ]
    assert after == before  # nothing created or changed
    assert not client.search_runs([experiment_id for experiment_id, _ in after])


@pytest.mark.integration
def test_restored_experiment_is_usable_again(store):
    uri, client, ids = store
    client.restore_experiment(ids["restore-me"])
    check_experiment_usable(uri, "restore-me")
    assert Tracker(uri, "restore-me").experiment_id == ids["restore-me"]
