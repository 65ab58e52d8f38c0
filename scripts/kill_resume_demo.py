"""Kill a running ``gaea-tune compare`` and resume it; print trials, spend and MLflow runs.

    .venv/bin/python scripts/kill_resume_demo.py [--budget 40] [--kill-after 6] [--methods bohb]

Runs a small live comparison (by default GAEA-DARTS, random search and BOHB with
``max_concurrent: 1`` on the bundled subset) in a subprocess, SIGKILLs its whole process group
once ``--kill-after`` results are logged, counts the MLflow runs, resumes with ``--resume``
(killed after ``--resume-timeout`` seconds) and counts again.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from gaea_tune.tracking import Tracker, default_tracking


def _results(out: Path) -> dict[str, list[dict]]:
    """Result events per method x seed (file stem)."""
    return {
        path.stem: [json.loads(x) for x in path.read_text().splitlines() if '"result"' in x]
        for path in out.glob("runs/*/events/*.jsonl")
    }


def _runs(out: Path, name: str) -> Counter:
    uri, artifacts = default_tracking(out)
    tracker = Tracker(uri, name, artifacts)
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=5000)
    return Counter(f"{r.data.tags.get('gaea.level', '?')} {r.info.status}" for r in runs)


METHODS = {
    "gaea-darts": {"epochs": 30, "batch_size": 32, "arch_lr": 0.3},
    "random": {"epochs": 3, "batch_size": 32, "max_concurrent": 1},
    "bohb": {"epochs": 4, "reduction_factor": 2, "batch_size": 32, "max_concurrent": 1},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=40.0)
    parser.add_argument("--kill-after", type=int, default=12)
    parser.add_argument("--resume-timeout", type=float, default=900.0)
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}"
    )
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        parser.error(f"--methods: unknown {unknown!r}; allowed: {', '.join(METHODS)}")
    folder = Path(tempfile.mkdtemp(prefix="gaea-kill-resume-"))
    out = folder / "out"
    config = {
        "name": "kill-resume",
        "space": {"name": "nb201", "C": 4, "N": 1},
        "dataset": {
            "name": "cifar10-subset",
            "resolution": 16,
            "max_train": 1024,
            "max_valid": 512,
        },
        "budget": {"device_seconds": args.budget},
        "seeds": [0],
        "progress_every_seconds": 5,
        "output_dir": str(out),
        "methods": {label: METHODS[label] for label in methods},
    }
    file = folder / "config.yaml"
    file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "gaea_tune.cli", "compare", str(file)]
    env = {**os.environ, "RAY_ADDRESS": ""}
    first = subprocess.Popen(command, start_new_session=True, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    while sum(map(len, _results(out).values())) < args.kill_after and first.poll() is None:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    for name, events in sorted(_results(out).items()):
        print(f"killed: {name}: {len(events)} results, {len({e['trial_id'] for e in events})} "
              f"trials, {events[-1]['method_device_seconds']:.1f} device-seconds spent")  # fmt: skip
    print(f"MLflow runs before resume: {dict(_runs(out, 'kill-resume'))}")
    started = time.time()
    resumed = subprocess.Popen([*command, "--resume"], start_new_session=True, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        status = resumed.wait(timeout=args.resume_timeout)
    except subprocess.TimeoutExpired:
        os.killpg(resumed.pid, signal.SIGKILL)
        resumed.wait()
        print(f"resume did not finish in {args.resume_timeout:.0f} s; killed")
        print(f"MLflow runs after resume:  {dict(_runs(out, 'kill-resume'))}")
        raise SystemExit(1) from None
    print(f"resume exit status {status} after {time.time() - started:.0f} s")
    print(f"MLflow runs after resume:  {dict(_runs(out, 'kill-resume'))}")
    summary = json.loads((out / "report" / "summary.json").read_text())
    for label, entry in summary["methods"].items():
        seed = entry["seeds"][0]
        print(f"{label:>11}: trials {seed['trials']}, spent {seed['spent_device_seconds']:.1f} of "
              f"{summary['budget_device_seconds']:.0f} device-seconds, genotype {seed['genotype']}")  # fmt: skip
    print(f"(files in {folder})")


if __name__ == "__main__":
    main()
