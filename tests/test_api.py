"""The public API: importing changes no global state; the example comparison runs through it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_lazy_and_changes_no_global_state():
    code = (
        "import os, sys, logging, warnings; env = dict(os.environ); "
        "filters = list(warnings.filters); import gaea_tune as g; "
        "assert dict(os.environ) == env, 'environment changed'; "
        "assert list(warnings.filters) == filters, 'warning filters changed'; "
        "heavy = [m for m in ('torch', 'ray', 'mlflow', 'matplotlib.pyplot', 'optuna') "
        "if m in sys.modules]; assert not heavy, heavy; "
        "assert g.__version__ and callable(g.load_config) and callable(g.compare); "
        "print(sorted(g.__all__))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    names = set(eval(done.stdout))  # a printed list of names
    assert {"compare", "load_config", "SupernetSearch", "SearchOptions", "make_searcher",
            "load_splits", "load_table", "__version__"} <= names  # fmt: skip
    assert (ROOT / "gaea_tune" / "py.typed").exists()


def test_load_config_takes_a_mapping_of_overrides():
    import gaea_tune as g

    config = g.load_config(
        ROOT / "tune_configs" / "quickstart.yaml",
        overrides={"budget": {"device_seconds": 30}, "space.C": 4, "methods.rea.sample_size": 3},
    )
    assert config.budget_device_seconds == 30 and config.space["C"] == 4
    assert {m.label: m for m in config.methods}["rea"].options["sample_size"] == 3
    with pytest.raises(g.ConfigError, match="space.C"):
        g.load_config(ROOT / "tune_configs" / "quickstart.yaml", overrides={"space.C": "wide"})


def test_tpe_searcher_leaves_the_callers_optuna_verbosity_alone():
    import optuna

    from gaea_tune import make_searcher
    from search_spaces import get_space

    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        searcher = make_searcher("tpe", get_space("nb201"), 0)
        searcher.tell(searcher.ask(), 90.0)
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(optuna.logging.INFO)


@pytest.mark.integration
def test_the_example_comparison_runs_through_the_api(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tiny_comparison.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "RAY_ADDRESS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gaea-darts" in done.stdout and "random" in done.stdout
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert set(summary["methods"]) == {"gaea-darts", "random"}
    assert (tmp_path / "api_incumbents.png").stat().st_size > 1000


@pytest.mark.integration
def test_calling_compare_leaves_the_process_as_it_was(tmp_path):
    """Ray's driver sets environment variables (PYTHONBREAKPOINT, RAY_*), and Ray, MLflow and
    Optuna configure their loggers: a notebook gets all of it back after g.compare(). (Warning
    filters that libraries add on their first import stay, as after importing them directly.)"""
    code = f"""
import logging, os, sys
import gaea_tune as g
def state():
    names = ["", "ray", "mlflow", "optuna", "gaea_tune"]
    return (dict(os.environ),
            {{n: (logging.getLogger(n).level, len(logging.getLogger(n).handlers),
                  logging.getLogger(n).propagate) for n in names}})
config = g.load_config({str(ROOT / "tune_configs" / "nb201_tabular_compare.yaml")!r},
                       overrides={{"seeds": 1, "output_dir": {str(tmp_path)!r}}})
before = state()
result = g.compare(config, progress=None)
assert "ray" in sys.modules and len(result.results) == 4
assert not sys.modules["ray"].is_initialized(), "the Ray that compare started is still up"
after = state()
for what, b, a in zip(("environment", "loggers"), before, after):
    if b != a:
        changed = sorted(k for k in set(b) | set(a) if b.get(k) != a.get(k))
        sys.exit(f"{{what}} changed: {{changed[:10]}}")
print("unchanged")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "RAY_ADDRESS": ""})  # fmt: skip
    assert done.returncode == 0 and "unchanged" in done.stdout, done.stderr[-3000:]
