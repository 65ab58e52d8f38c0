"""Commands that only read MLflow (report, ui) never create a store where none exists."""

from __future__ import annotations

from gaea_tune.cli import main


def test_report_without_a_store_creates_nothing(tmp_path, capsys):
    out = tmp_path / "never-ran"
    assert main(["report", "tune_configs/quickstart.yaml", "--set", f"output_dir={out}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"gaea-tune: error: no MLflow store at 'sqlite:///{out / 'mlflow.db'}'; run "
        "`gaea-tune compare` with this config first"
    )
    assert not out.exists()


def test_ui_without_a_store_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["ui"]) == 2
    assert "--store: no MLflow store at 'sqlite:///" in capsys.readouterr().err
    assert main(["ui", "--store", f"sqlite:///{tmp_path / 'x' / 'mlflow.db'}"]) == 2
    assert list(tmp_path.iterdir()) == []
