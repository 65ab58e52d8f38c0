#!/usr/bin/env bash
# The device check of a GPU machine, in under 8 minutes:
#   1. environment: nvidia-smi, versions (python, torch, CUDA, cuDNN, ray, gaea-tune)
#   2. bench-supernet: images/s and peak memory of full weight-sharing search steps at the GAEA
#      paper's NB201 size (C=16, N=5, batch 64), fp32 NCHW vs bf16 autocast + channels_last
#   3. bench-standalone: the same for standalone training steps of the best NB201 CIFAR-10 cell
#      (C=16, N=5) at batch 64 and 256
#   4. compare + compare-summary: a tiny real `gaea-tune compare` (tune_configs/gpu_check.yaml:
#      gaea-darts, darts, random, bohb on the bundled subset, 4 trials sharing the card with
#      resources.gpu=0.25, after `--calibrate random` on 3 cells), and a check of its
#      summary.json (every method has a finished seed that spent budget, random's calibration
#      is in the report, device_kind gpu)
# then writes every figure and each step's PASS/FAIL to DIR/gpu_check.json.
#
#   bash scripts/gpu_check.sh [--dry-run] [--out DIR]
#
# --dry-run: everything except CUDA, on the CPU: the benchmarks with --device cpu --quick and
# the comparison with resources.gpu=0 and a 10 device-second budget (a few minutes on 2 cores).
# DIR defaults to $OUT if set, else ./gpu-check. Python: $PYTHON if set, else the repository's
# .venv, else python3. It needs torch and this repository's dependencies (`pip install -e .`);
# if they are missing it tries that install once, keeping the installed torch. Every step runs
# under `timeout`, prints a PASS or FAIL line, and the exit status is 1 if any step failed.
set -euo pipefail
CALLER_DIR=$PWD
SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$SCRIPT")/.."
ROOT=$PWD

usage() { sed -n '2,/^set -euo/p' "$SCRIPT" | sed '$d; s/^# \{0,1\}//'; }

DRY_RUN=0
OUT_DIR=""
while (($#)); do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --out)
      [[ $# -ge 2 && -n $2 ]] || { echo "gpu_check.sh: --out needs a folder" >&2; exit 2; }
      OUT_DIR=$2
      shift
      ;;
    --out=*) OUT_DIR=${1#--out=} ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
OUT_DIR=${OUT_DIR:-${OUT:-gpu-check}}
[[ $OUT_DIR == /* ]] || OUT_DIR=$CALLER_DIR/$OUT_DIR # relative to where the check was started
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

if [[ -n ${PYTHON:-} ]]; then
  PY=$PYTHON
elif [[ -x $ROOT/.venv/bin/python ]]; then
  PY=$ROOT/.venv/bin/python
else
  PY=$(command -v python3 || command -v python || true)
fi
[[ -n $PY ]] || { echo "gpu_check.sh: no python found (set PYTHON)" >&2; exit 2; }
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

if ((DRY_RUN)); then
  MODE=dry-run
  DEVICE=cpu
  # the figures of a dry run only show that the pipeline works; one thread keeps them steady
  BENCH_ARGS=(--device cpu --quick --threads 1 --repeats 1)
  SUPERNET_ARGS=()
  STANDALONE_ARGS=()
  COMPARE_SETS=(--set resources.gpu=0 --set resources.cpu=1 --set budget.device_seconds=10)
  LIMIT_ENV=60 LIMIT_SUPERNET=90 LIMIT_STANDALONE=90 LIMIT_COMPARE=300 LIMIT_SUMMARY=60
else
  MODE=gpu
  DEVICE=cuda
  BENCH_ARGS=(--device cuda --variants fp32,bf16-cl --repeats 3 --steps 100 --warmup 10)
  SUPERNET_ARGS=(--settings paper)
  STANDALONE_ARGS=(--settings b64,b256)
  COMPARE_SETS=(--set resources.gpu=0.25 --set resources.cpu=1)
  # 480 s in all
  LIMIT_ENV=30 LIMIT_SUPERNET=100 LIMIT_STANDALONE=130 LIMIT_COMPARE=200 LIMIT_SUMMARY=20
fi
COMPARE_DIR=$OUT_DIR/gpu-check-compare
STEPS_FILE=$OUT_DIR/steps.tsv
: >"$STEPS_FILE"
FAILED=0
CHECK_START=$(date +%s.%N)

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

record() { # NAME STATUS RC SECONDS LIMIT NOTE
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$STEPS_FILE"
  if [[ $2 == pass ]]; then
    echo "PASS $1 (${4}s)"
  else
    FAILED=1
    echo "FAIL $1 (${4}s): $6"
  fi
}

step() { # NAME LIMIT COMMAND...: run under timeout, output to the terminal and DIR/NAME.log
  local name=$1 limit=$2 start rc seconds
  shift 2
  echo "== $name (limit ${limit}s)"
  start=$(date +%s.%N)
  set +e
  timeout --kill-after=15 "$limit" "$@" 2>&1 | tee "$OUT_DIR/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  seconds=$(elapsed "$start")
  if ((rc == 0)); then
    record "$name" pass 0 "$seconds" "$limit" ""
  elif ((rc == 124 || rc == 137)); then
    record "$name" fail "$rc" "$seconds" "$limit" "timed out after ${limit}s (log: $name.log)"
  else
    record "$name" fail "$rc" "$seconds" "$limit" "exit status $rc (log: $name.log)"
  fi
  return 0
}

skip() { # NAME REASON
  echo "== $1"
  record "$1" fail "" 0 "" "skipped: $2"
}

echo "# gpu_check ($MODE): python $PY, figures to $OUT_DIR"

# --- 0. dependencies: this repository's (pip install -e .), with the torch that is installed
DEPS_IMPORT='import torch, torchvision, ray.tune, mlflow, hpbandster, optuna, ConfigSpace, pandas, matplotlib, scipy, ruamel.yaml, gaea_tune.cli'
if ! "$PY" -c "$DEPS_IMPORT" >/dev/null 2>&1; then
  echo "# some dependencies are missing; installing this repository (pip install -e .)"
  CONSTRAINTS=$OUT_DIR/constraints.txt
  # keep the installed torch: a different pinned version is a clear pip error, not a swap
  "$PY" -c 'import torch; print(f"torch=={torch.__version__}")' >"$CONSTRAINTS" 2>/dev/null ||
    : >"$CONSTRAINTS"
  if ! "$PY" -m pip install -q -e "$ROOT" --constraint "$CONSTRAINTS" >"$OUT_DIR/install.log" 2>&1
  then
    # the installed torch is not the version pyproject.toml pins: install the other
    # dependencies and this repository without its torch / torchvision pins (torchvision, if
    # missing, in the version that goes with the installed torch)
    echo "# pip install -e . failed (pinned torch?); installing around the installed torch"
    "$PY" - "$ROOT/pyproject.toml" >"$OUT_DIR/requirements.txt" <<'PYEOF'
import re
import sys

text = open(sys.argv[1]).read()
block = re.search(r"^dependencies = \[(.*?)^\]", text, flags=re.S | re.M).group(1)
for dep in re.findall(r'"([^"]+)"', block):
    name = re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0].lower()
    if name == "torchvision":
        try:
            import torchvision  # noqa: F401
        except ImportError:
            print("torchvision")
    elif name != "torch":
        print(dep)
PYEOF
    step install 300 "$PY" -m pip install -q -r "$OUT_DIR/requirements.txt" \
      --constraint "$CONSTRAINTS"
    "$PY" -m pip install -q --no-deps -e "$ROOT" >>"$OUT_DIR/install.log" 2>&1 ||
      record install-project fail 1 0 "" "pip install --no-deps -e . failed (log: install.log)"
  fi
fi

# --- 1. environment: nvidia-smi and versions -> DIR/environment.json
NVSMI=$OUT_DIR/nvidia-smi.txt
if command -v nvidia-smi >/dev/null 2>&1; then
  { nvidia-smi || true; } >"$NVSMI" 2>&1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    >"$OUT_DIR/nvidia-smi-query.txt" 2>/dev/null || : >"$OUT_DIR/nvidia-smi-query.txt"
  cat "$NVSMI"
else
  echo "nvidia-smi: not found" >"$NVSMI"
  : >"$OUT_DIR/nvidia-smi-query.txt"
fi
step environment "$LIMIT_ENV" "$PY" - "$OUT_DIR" "$DEVICE" <<'PYEOF'
import json
import platform
import sys
from pathlib import Path

out, device = Path(sys.argv[1]), sys.argv[2]
info = {"python": platform.python_version(), "python_executable": sys.executable}
problems = []
try:
    import torch

    info["torch"] = torch.__version__
    info["cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    info["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        info["devices"] = [
            {
                "name": torch.cuda.get_device_name(i),
                "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
                "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
            }
            for i in range(torch.cuda.device_count())
        ]
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    info["cpu_threads"] = torch.get_num_threads()
except ImportError as error:
    problems.append(f"torch: {error}")
for name in ("ray", "mlflow"):
    try:
        info[name] = __import__(name).__version__
    except ImportError as error:
        info[name] = None
        problems.append(f"{name}: {error}")
try:
    import gaea_tune

    info["gaea_tune"] = gaea_tune.__version__
except ImportError as error:
    info["gaea_tune"] = None
    problems.append(f"gaea_tune: {error}")
info["nvidia_smi"] = (out / "nvidia-smi.txt").read_text()
query = (out / "nvidia-smi-query.txt").read_text().strip()
info["nvidia_smi_query"] = query or None
if device == "cuda" and not info.get("cuda_available"):
    problems.append("CUDA is not available to torch (use --dry-run on a machine without a GPU)")
try:
    models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    info["cpu"] = f"{models[0]} x{len(models)}" if models else platform.processor() or None
except OSError:
    info["cpu"] = platform.processor() or None
info["problems"] = problems
(out / "environment.json").write_text(json.dumps(info, indent=1))
for key in ("python", "torch", "cuda", "cudnn", "cuda_available", "ray", "mlflow", "gaea_tune",
            "cpu"):
    print(f"{key:>15}: {info.get(key)}")
for device_info in info.get("devices", []):
    print(f"{'card':>15}: {device_info}")
for problem in problems:
    print(f"problem: {problem}")
sys.exit(1 if problems else 0)
PYEOF

CUDA_OK=1
if [[ $DEVICE == cuda ]] && ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' \
  >/dev/null 2>&1; then
  CUDA_OK=0
fi

# --- 2./3. benchmarks -> DIR/bench_supernet.json, DIR/bench_standalone.json
if ((CUDA_OK)); then
  step bench-supernet "$LIMIT_SUPERNET" "$PY" scripts/bench_supernet.py "${BENCH_ARGS[@]}" \
    ${SUPERNET_ARGS[@]+"${SUPERNET_ARGS[@]}"} --json "$OUT_DIR/bench_supernet.json"
  step bench-standalone "$LIMIT_STANDALONE" "$PY" scripts/bench_standalone.py "${BENCH_ARGS[@]}" \
    ${STANDALONE_ARGS[@]+"${STANDALONE_ARGS[@]}"} --json "$OUT_DIR/bench_standalone.json"
else
  skip bench-supernet "CUDA is not available"
  skip bench-standalone "CUDA is not available"
fi

# --- 4. a tiny real comparison, then its summary.json -> DIR/compare.json
if ((CUDA_OK)); then
  rm -rf "$COMPARE_DIR"
  step compare "$LIMIT_COMPARE" "$PY" -m gaea_tune.cli compare tune_configs/gpu_check.yaml \
    "${COMPARE_SETS[@]}" --set "output_dir=$COMPARE_DIR" --calibrate random --calibrate-cells 3
  step compare-summary "$LIMIT_SUMMARY" "$PY" - "$OUT_DIR" "$COMPARE_DIR" "$MODE" <<'PYEOF'
import json
import re
import sys
from pathlib import Path

out, folder, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
expected = ("gaea-darts", "darts", "random", "bohb")
path = None
log = out / "compare.log"
if log.exists():
    found = re.findall(r"^summary: (.+summary\.json)\s*$", log.read_text(), flags=re.M)
    path = Path(found[-1]) if found else None
if path is None or not path.exists():
    candidates = sorted(folder.rglob("summary.json"), key=lambda p: p.stat().st_mtime)
    path = candidates[-1] if candidates else None
if path is None:
    print(f"no summary.json under {folder}")
    sys.exit(1)
summary = json.loads(path.read_text())
problems, methods = [], {}
for label in expected:
    entry = summary.get("methods", {}).get(label)
    if entry is None:
        problems.append(f"{label}: missing from summary.json")
        continue
    seeds = entry.get("seeds", [])
    finished = [s for s in seeds if s.get("status") == "finished"]
    spent = [float(s.get("spent_device_seconds") or 0) for s in finished]
    if not finished:
        problems.append(f"{label}: no finished seed ({[s.get('failure') for s in seeds]})")
    elif not max(spent) > 0:
        problems.append(f"{label}: finished seeds spent no device-seconds")
    methods[label] = {
        "family": entry.get("family"),
        "finished_seeds": len(finished),
        "spent_device_seconds": spent,
        "trials": [s.get("trials") for s in seeds],
        "genotype": [s.get("genotype") for s in seeds],
        "ground_truth": [s.get("ground_truth") for s in seeds],
        "throughput": [s.get("throughput") for s in seeds],
    }
calibration = (summary.get("calibration") or {}).get("random")
if calibration is None or calibration.get("cells") != 3:
    problems.append(f"random: no 3-cell calibration of its settings in the report ({calibration})")
if mode == "gpu" and summary.get("device_kind") != "gpu":
    problems.append(f"device_kind is {summary.get('device_kind')!r}, expected 'gpu'")
result = {
    "summary_json": str(path),
    "device_kind": summary.get("device_kind"),
    "budget_device_seconds": summary.get("budget_device_seconds"),
    "methods": methods,
    "calibration": calibration,
    "problems": problems,
}
(out / "compare.json").write_text(json.dumps(result, indent=1))
for label, m in methods.items():
    print(f"{label:>11}: finished seeds {m['finished_seeds']}, spent {m['spent_device_seconds']}, "
          f"trials {m['trials']}")
print(f"device_kind: {summary.get('device_kind')}, budget {summary.get('budget_device_seconds')}")
for problem in problems:
    print(f"problem: {problem}")
sys.exit(1 if problems else 0)
PYEOF
else
  skip compare "CUDA is not available"
  skip compare-summary "CUDA is not available"
fi

# --- the figures -> DIR/gpu_check.json
TOTAL=$(elapsed "$CHECK_START")
"$PY" - "$OUT_DIR" "$MODE" "$TOTAL" <<'PYEOF' || { echo "FAIL report: could not write gpu_check.json"; exit 1; }
import json
import sys
from pathlib import Path

out, mode, total = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])


def load(name):
    path = out / name
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except ValueError:
        return None


steps = {}
for line in (out / "steps.tsv").read_text().splitlines():
    name, status, rc, seconds, limit, note = (line.split("\t") + [""] * 6)[:6]
    steps[name] = {
        "status": status,
        "exit_status": int(rc) if rc else None,
        "seconds": float(seconds),
        "limit_seconds": int(limit) if limit else None,
        "note": note or None,
    }


def figures(bench):
    if not bench:
        return None
    rows = {}
    for row in bench["results"]:
        rows[f"{row['setting']}/{row['variant']}"] = {
            "C": row["C"], "N": row["N"], "batch_size": row["batch_size"],
            "resolution": row["resolution"], "numerics": row["numerics"],
            "img_s_median": row["img_s"]["median"],
            "img_s_min": row["img_s"]["min"], "img_s_max": row["img_s"]["max"],
            "peak_mb_median": row["peak_mb"]["median"],
            "peak_mb_min": row["peak_mb"]["min"], "peak_mb_max": row["peak_mb"]["max"],
        }
    return {"memory": bench.get("memory"), "steps": bench.get("steps"),
            "repeats": bench.get("repeats"), "threads": bench.get("threads"), "settings": rows}


env = load("environment.json") or {}
devices = env.get("devices") or []
compare = load("compare.json")
result = {
    "mode": mode,
    "passed": bool(steps) and all(s["status"] == "pass" for s in steps.values()),
    "total_seconds": total,
    "card": devices[0]["name"] if devices else None,
    "cpu": env.get("cpu"),
    "nvidia_smi": env.get("nvidia_smi_query"),
    "versions": {k: env.get(k) for k in
                 ("python", "torch", "cuda", "cudnn", "ray", "mlflow", "gaea_tune")},
    "environment": env,
    "steps": steps,
    "supernet": figures(load("bench_supernet.json")),
    "standalone": figures(load("bench_standalone.json")),
    "standalone_arch": (load("bench_standalone.json") or {}).get("arch"),
    "compare": compare,
    "compare_wall_seconds": steps.get("compare", {}).get("seconds"),
}
(out / "gpu_check.json").write_text(json.dumps(result, indent=1))
PYEOF

echo
awk -F'\t' '{ printf "%-17s %-4s %7ss  %s\n", $1, toupper($2), $4, $6 }' "$STEPS_FILE"
echo "figures: $OUT_DIR/gpu_check.json (total $(elapsed "$CHECK_START")s)"
if ((FAILED)); then
  echo "gpu_check ($MODE): FAIL"
  exit 1
fi
echo "gpu_check ($MODE): PASS"
