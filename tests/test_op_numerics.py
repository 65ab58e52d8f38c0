"""Numerics contract of the search-space ops on CPU: float32 gradients, NCHW and channels_last,
one and two threads, match a float64 NCHW reference.

Every op of both spaces (from their op tables) and the modules with convolutions around them
run at channel counts 1-16 and strides 1 and 2 (see ``tests/_op_numerics_worker.py``). oneDNN's
weight-gradient kernel for a stride-2 1x1 convolution on an NHWC input with few input channels
writes past its buffer (a glibc abort with one thread, a hang or wrong gradients with two), so
each group of checks runs in a child process: an abort or a hang fails the test with the
signal, the case that was running and the end of stderr instead of killing the test runner.

Groups: the CPU's own oneDNN ISA and, on x86-64, oneDNN and ATen restricted to AVX2 (the
kernels an AVX2-only machine runs; the bad kernel above is the AVX2 one), each with 1 and 2
threads. Four child processes of a few seconds each (more on a busy machine), so the file is
marked ``integration``.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("_op_numerics_worker.py")
TIMEOUT_S = 240
X86 = platform.machine().lower() in ("x86_64", "amd64")

GROUPS = [
    pytest.param(isa, threads, id=f"{isa}-{threads}thread", marks=marks)
    for isa, marks in (
        ("native", ()),
        ("avx2", () if X86 else pytest.mark.skip(reason="AVX2 restriction needs x86-64")),
    )
    for threads in (1, 2)
]


def _env(isa: str, threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        env.pop(name, None)
    if isa == "avx2":
        env["ONEDNN_MAX_CPU_ISA"] = env["DNNL_MAX_CPU_ISA"] = "AVX2"
        env["ATEN_CPU_CAPABILITY"] = "avx2"
    env["OMP_NUM_THREADS"] = str(threads)
    # Sleep rather than spin at OpenMP barriers: on a busy machine, two spinning threads make
    # the tiny kernels here many times slower. The kernels' results do not depend on it.
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _last_case(stdout: str) -> str:
    cases = [line[5:] for line in stdout.splitlines() if line.startswith("CASE ")]
    return cases[-1] if cases else "(none started)"


def _tail(text: str, chars: int = 2000) -> str:
    return text[-chars:].strip() or "(empty)"


@pytest.mark.parametrize(("isa", "threads"), GROUPS)
def test_op_gradients_match_float64_reference(isa: str, threads: int) -> None:
    command = [sys.executable, str(WORKER), str(threads)]
    what = f"op numerics ({isa} oneDNN ISA, {threads} thread(s))"
    try:
        proc = subprocess.run(
            command,
            env=_env(isa, threads),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        stdout, stderr = _text(exc.stdout), _text(exc.stderr)
        pytest.fail(
            f"{what}: no result after {TIMEOUT_S} s (hang); the case running was "
            f"{_last_case(stdout)!r}\nstderr tail:\n{_tail(stderr)}",
            pytrace=False,
        )
    stdout, stderr = proc.stdout, proc.stderr
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        pytest.fail(
            f"{what}: the worker died with {name} (return code {proc.returncode}) in or "
            f"after case {_last_case(stdout)!r}\nstderr tail:\n{_tail(stderr)}",
            pytrace=False,
        )
    failures = [line for line in stdout.splitlines() if line.startswith(("MISMATCH ", "ERROR "))]
    if proc.returncode != 0 or failures:
        shown = "\n".join(failures[:40])
        more = f"\n... and {len(failures) - 40} more" if len(failures) > 40 else ""
        pytest.fail(
            f"{what}: return code {proc.returncode}; {len(failures)} failure(s) (tensors off "
            f"the float64 reference, cases that raised):\n{shown}{more}\n"
            f"last case: {_last_case(stdout)!r}\nstderr tail:\n{_tail(stderr)}",
            pytrace=False,
        )
    done = [line.split() for line in stdout.splitlines() if line.startswith("DONE ")]
    assert done and int(done[-1][1]) > 0, f"{what}: the worker checked nothing\n{_tail(stdout)}"
