"""The device check (scripts/gpu_check.sh) in its CPU dry run, and the standalone benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("environment", "bench-supernet", "bench-standalone", "compare", "compare-summary")
METHODS = ("gaea-darts", "darts", "random", "bohb")


def test_gpu_check_config_is_tiny_and_shares_the_card():
    from gaea_tune.config import load_config

    raw = yaml.safe_load((ROOT / "tune_configs" / "gpu_check.yaml").read_text())
    assert tuple(raw["methods"]) == METHODS
    assert raw["space"]["C"] == 8 and raw["space"]["N"] == 1
    assert raw["dataset"]["name"] == "cifar10-subset" and raw["dataset"]["resolution"] == 16
    assert raw["dataset"]["max_train"] == 2000 and raw["dataset"]["max_valid"] == 1000
    assert raw["resources"] == {"gpu": 0.25, "cpu": 1} and raw["seeds"] == [0]
    config = load_config(
        ROOT / "tune_configs" / "gpu_check.yaml",
        ["resources.gpu=0", "budget.device_seconds=10"],  # what --dry-run runs
    )
    assert config.name == "gpu-check"


def test_gpu_check_script_is_valid_bash():
    done = subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")])
    assert done.returncode == 0
    usage = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--help"], capture_output=True, text=True
    )
    assert usage.returncode == 0 and "--dry-run" in usage.stdout
    bad = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--bogus"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "unknown argument" in bad.stderr


@pytest.mark.integration
def test_bench_standalone_quick_writes_figures(tmp_path):
    out = tmp_path / "standalone.json"
    cmd = [
        sys.executable, str(ROOT / "scripts" / "bench_standalone.py"), "--quick",
        "--device", "cpu", "--repeats", "1", "--threads", "1", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["benchmark"] == "standalone" and figures["device"] == "cpu"
    assert figures["arch"].startswith("|") and "minus the RSS before" in figures["memory"]
    # fp32 and the comparison's CPU numerics for NB201: fp32 in channels_last
    row, nhwc = figures["results"]
    assert (row["setting"], row["variant"], row["C"], row["N"]) == ("quick", "fp32", 8, 1)
    assert row["batch_size"] == 16 and not row["channels_last"] and not row["amp"]
    assert (nhwc["variant"], nhwc["channels_last"], nhwc["amp"]) == ("fp32-cl", True, False)
    for r in (row, nhwc):
        assert r["img_s"]["median"] > 0 and len(r["img_s"]["runs"]) == 1
        assert r["peak_mb"]["median"] >= 0 and r["params"] > 0
    assert "img/s median" in done.stdout and "quick" in done.stdout


@pytest.mark.integration
def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "check"
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env["PYTHON"] = sys.executable
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for step in STEPS:
        assert f"PASS {step}" in done.stdout
    assert "gpu_check (dry-run): PASS" in done.stdout

    report = json.loads((out / "gpu_check.json").read_text())
    assert report["mode"] == "dry-run" and report["passed"] is True
    assert set(STEPS) <= set(report["steps"])
    assert all(report["steps"][s]["status"] == "pass" for s in STEPS)
    assert report["total_seconds"] > 0
    versions = report["versions"]
    assert versions["torch"] and versions["ray"] and versions["gaea_tune"] and versions["python"]
    for bench in ("supernet", "standalone"):
        rows = report[bench]["settings"]
        # fp32, and the comparison's CPU numerics for NB201 (fp32 in channels_last)
        assert list(rows) == ["quick/fp32", "quick/fp32-cl"], rows
        for name in rows:
            assert rows[name]["img_s_median"] > 0
            assert rows[name]["peak_mb_median"] >= 0
    assert report["standalone_arch"].startswith("|")
    assert report["compare_wall_seconds"] > 0
    compare = report["compare"]
    assert compare["problems"] == [] and compare["device_kind"] == "cpu"
    assert compare["budget_device_seconds"] == 10
    for method in METHODS:
        entry = compare["methods"][method]
        assert entry["finished_seeds"] == 1 and max(entry["spent_device_seconds"]) > 0
    # `compare --calibrate random` measured random's proxy first; the report shows it
    assert compare["calibration"]["cells"] == 3
    assert -1 <= compare["calibration"]["kendall"] <= 1
    assert (out / "compare.log").exists() and (out / "environment.json").exists()


def test_bench_reference_dir_is_checked(tmp_path):
    """--reference-dir names the folder holding the reference checkouts; a folder without
    them is a usage error before any measurement starts."""
    for script in ("bench_supernet.py", "bench_standalone.py"):
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / script), "--reference-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr[-2000:]
        assert "--reference-dir" in done.stderr and "found no" in done.stderr


def test_find_reference_locates_the_checkouts(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from bench_supernet import find_reference
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    gaea = tmp_path / "gaea_release" / "cnn" / "search_spaces" / "nasbench_201"
    gaea.mkdir(parents=True)
    (gaea / "model_search.py").write_text("")
    cells = tmp_path / "fork" / "lib" / "models" / "cell_searchs"
    cells.mkdir(parents=True)
    (cells / "search_cells.py").write_text("def forward_edge_weights(): pass\n")
    tiny = tmp_path / "AutoDL-Projects" / "xautodl" / "models" / "cell_infers"
    tiny.mkdir(parents=True)
    (tiny / "tiny_network.py").write_text("")
    found = find_reference(str(tmp_path))
    assert found == {
        "gaea": str(tmp_path / "gaea_release"),
        "fork": str(tmp_path / "fork"),
        "autodl": str(tmp_path / "AutoDL-Projects"),
    }


def test_ratios_pair_the_reference_with_our_variants_of_its_precision():
    """Their fp32 NCHW is set against our fp32 in both memory formats, never against bf16."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from bench_supernet import ratios
    finally:
        sys.path.remove(str(ROOT / "scripts"))

    def row(variant, impl, img_s, mb):
        return {
            "setting": "paper", "variant": variant, "impl": impl,
            "img_s": {"median": img_s, "runs": [img_s, img_s * 1.1]},
            "img_cpu_s": {"median": img_s / 2}, "peak_mb": {"median": mb},
        }  # fmt: skip

    rows = [
        row("fp32", "ours", 30.0, 1500.0),
        row("fp32-cl", "ours", 40.0, 1400.0),
        row("bf16-cl", "ours", 90.0, 900.0),
        row("fp32", "gaea", 20.0, 3000.0),
    ]
    table = {r["variant"]: r for r in ratios(rows)}
    assert set(table) == {"fp32", "fp32-cl"}
    assert table["fp32-cl"]["img_s_ratio"] == pytest.approx(2.0)
    assert table["fp32-cl"]["reference_variant"] == "fp32"
    assert table["fp32"]["peak_mb_ratio"] == pytest.approx(0.5)
    assert table["fp32"]["img_s_ratio_min"] == pytest.approx(1.5)


@pytest.mark.integration
@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
@pytest.mark.parametrize("script", ["bench_supernet.py", "bench_standalone.py"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "cuda"], "--device cuda: torch sees no CUDA device here"),
        (["--variants", ","], "no variant in ','"),
    ],
)
def test_bench_refuses_in_one_line(script, args, message):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]
