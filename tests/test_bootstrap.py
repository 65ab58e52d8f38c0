"""scripts/bootstrap.sh refuses, in one line and before creating anything, a disk too small for the
virtual environment, so a full disk does not surface as a pip traceback half-way through."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _project_copy(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _fake_df(bin_dir: Path, free_kb: int) -> dict[str, str]:
    bin_dir.mkdir()
    df = bin_dir / "df"
    df.write_text(
        "#!/bin/sh\n"
        "echo 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        f"echo '/dev/x 100000000 1 {free_kb} 1% /'\n"
    )
    df.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _bootstrap(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/bootstrap.sh"], cwd=project, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


@pytest.mark.integration
def test_bootstrap_refuses_a_small_disk_before_creating_the_venv(tmp_path):
    project = _project_copy(tmp_path / "p")
    env = _fake_df(tmp_path / "bin", free_kb=3 * 1024 * 1024)
    done = _bootstrap(project, env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "3072 MiB free" in lines[0] and "needs about 8 GiB" in lines[0]
    assert not (project / ".venv").exists()


@pytest.mark.integration
def test_bootstrap_with_a_built_venv_checks_no_disk(tmp_path):
    """An up-to-date environment installs nothing, so a full disk does not stop the tests."""
    project = _project_copy(tmp_path / "p")
    (project / ".venv" / "bin").mkdir(parents=True)
    os.symlink(shutil.which("python3"), project / ".venv" / "bin" / "python")
    want = subprocess.run(
        ["sha256sum", "pyproject.toml"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    (project / ".venv" / ".gaea-tune-stamp").write_text(want + "\n")
    env = _fake_df(tmp_path / "bin", free_kb=1024)
    done = _bootstrap(project, env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
