"""A real multi-host Ray cluster on one machine: three hosts in network namespaces.

The README's cluster recipe, command for command: one token for every process (token
authentication on), a head without CPUs (``ray start --head ... --num-cpus=0 --num-gpus=0``) that
also runs the MLflow server on its cluster address and the driver (``gaea-tune compare FILE
--address HEAD_IP:6379``), two one-CPU workers, Tune's storage folder on a disk every host sees.
Each host has its own network stack (``lo`` and one veth on a private switch), so Ray, MLflow
and the trials talk over real TCP between addresses; they share the disk and the process table.

Then the faults a cluster has: a worker host lost mid-comparison, the MLflow server restarted,
the driver killed and resumed, a worker host joining late; and ``gaea-tune doctor``.

Needs root (CAP_NET_ADMIN) and iproute2; skipped with the reason otherwise, unless
GAEA_TUNE_REQUIRE_MULTIHOST=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _netns
import pytest
import yaml

from gaea_tune.tune._budget import read_events

pytestmark = [pytest.mark.integration, pytest.mark.multihost]

BIN = Path(sys.executable).parent  # the virtual environment's bin: ray, mlflow, gaea-tune
HEAD, WORKERS = 1, {"w1": 11, "w2": 12}  # host numbers on the switch's /24
# The head notices a lost host after about 5-10 s instead of Ray's default 30 s, so the wall
# time charged as lost work stays small against these tests' budgets (see the README).
HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "5",
}
OBSERVER = r"""
import json, os, sys, time
import ray
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False,
         configure_logging=False)
out = sys.argv[2]
while True:
    nodes = [{"id": n["NodeID"], "ip": n["NodeManagerAddress"], "alive": bool(n["Alive"]),
              "cpus": n["Resources"].get("CPU", 0.0)} for n in ray.nodes()]
    with open(out + ".tmp", "w") as handle:
        json.dump({"time": time.time(), "nodes": nodes}, handle)
    os.replace(out + ".tmp", out)
    time.sleep(0.5)
"""
HEALTH = (
    "import sys, urllib.request\n"
    "try:\n"
    "    urllib.request.urlopen(sys.argv[1] + '/health', timeout=2).read()\n"
    "except Exception as error:\n"
    "    sys.exit(f'down: {error}')\n"
)


class Cluster:
    """Head (Ray head, MLflow server, driver) and workers w1, w2, each a network namespace."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.shared = root / "shared"  # Tune's storage_path: the same disk on every host
        self.shared.mkdir(exist_ok=True)
        self.net = _netns.Network()
        # Ray's per-host folders: short paths (Unix socket names are limited to 107 bytes)
        self.ray_dirs = Path("/tmp") / self.net.tag
        self.token = root / "token-home" / ".ray" / "auth_token"
        self.head_ip = ""
        self.tracking_uri = ""
        self.workers: dict[str, str] = {}  # role -> node id of its current Ray node
        self.processes: list[subprocess.Popen] = []
        self.mlflow: subprocess.Popen | None = None
        self.observer: subprocess.Popen | None = None
        self._starts = Counter()

    # --- environment and processes ---

    def env(self, role: str) -> dict[str, str]:
        """What every process on host ``role`` gets: the token, token mode, the venv."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
        env.update(
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(self.token),
            RAY_TMPDIR=str(self.ray_dirs / f"{role}-{self._starts[role]}"),
            RAY_USAGE_STATS_ENABLED="0",
            PYTHONUNBUFFERED="1",
            # MLflow's own per-request retries off: an MLflow outage must be ridden out by
            # gaea-tune's retry (gaea_tune.tracking), which is what these tests check.
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        )
        return env

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def tails(self, chars: int = 2500) -> str:
        files = sorted(self.logs.glob("*.log"), key=lambda p: p.stat().st_mtime)
        return "\n".join(_netns.tail(path, chars) for path in files[-8:])

    def popen(self, role: str, argv: list[str], log: str, env: dict | None = None):
        process = self.net.popen(role, argv, env or self.env(role), self.log(log), self.root)
        self.processes.append(process)
        return process

    def run(self, role: str, argv: list[str], log: str, timeout: float = 180.0, env=None):
        return self.net.run(role, argv, env or self.env(role), self.log(log), self.root, timeout)

    def wait_until(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s: {what}\n{self.tails()}")
            time.sleep(0.5)

    # --- the cluster ---

    def start(self) -> None:
        self.net.start()
        self.head_ip = self.net.add_host("head", HEAD)
        for role, number in WORKERS.items():
            self.net.add_host(role, number)
        self.tracking_uri = f"http://{self.head_ip}:5000"
        # README: `ray get-auth-token --generate` once (here with HOME on a temporary folder)
        home = self.token.parent.parent
        env = {k: v for k, v in self.env("head").items() if not k.startswith("RAY_AUTH")}
        generated = subprocess.run(
            [str(BIN / "ray"), "get-auth-token", "--generate"], capture_output=True, text=True,
            env={**env, "HOME": str(home)}, timeout=120,
        )  # fmt: skip
        assert generated.returncode == 0 and self.token.is_file(), generated.stderr[-2000:]
        self.start_mlflow()
        self.start_head()
        self.wait_mlflow()
        self.start_worker("w1")

    def start_head(self) -> None:
        env = {**self.env("head"), **HEALTH_CHECKS}
        done = self.run("head", ["ray", "start", "--head", "--port=6379",
                                 f"--node-ip-address={self.head_ip}", "--num-cpus=0",
                                 "--num-gpus=0", "--include-dashboard=false"],
                        "ray-head", env=env)  # fmt: skip
        assert done.returncode == 0, f"ray start --head failed\n{self.tails()}"
        self.observer = self.popen(
            "head", ["python", "-c", OBSERVER, self.address, str(self.root / "nodes.json")],
            "observer",
        )  # fmt: skip
        self.wait_until(lambda: self.node_at(self.head_ip), 120, "the head node is seen alive")

    @property
    def address(self) -> str:
        return f"{self.head_ip}:6379"

    def nodes(self) -> list[dict]:
        assert self.observer is not None and self.observer.poll() is None, (
            f"the node observer exited\n{self.tails()}"
        )
        try:
            return json.loads((self.root / "nodes.json").read_text())["nodes"]
        except (OSError, ValueError):
            return []

    def node_at(self, ip: str) -> str | None:
        """The id of the alive node at ``ip``, if any."""
        alive = [n["id"] for n in self.nodes() if n["ip"] == ip and n["alive"]]
        return alive[0] if alive else None

    def is_alive(self, node_id: str) -> bool:
        return any(n["id"] == node_id and n["alive"] for n in self.nodes())

    def start_worker(self, role: str) -> str:
        """`ray start --address=HEAD_IP:6379 ...` on a (fresh or repaired) worker host."""
        self.net.kill_host(role)
        self.net.set_link(role, True)
        self._starts[role] += 1
        ip = self.net.address(role)
        done = self.run(role, ["ray", "start", f"--address={self.address}",
                               f"--node-ip-address={ip}", "--num-cpus=1"],
                        f"ray-{role}-{self._starts[role]}")  # fmt: skip
        assert done.returncode == 0, f"ray start on {role} failed\n{self.tails()}"
        node = self.wait_until(lambda: self.node_at(ip), 120, f"worker {role} seen alive")
        self.workers[role] = node
        return node

    def lose_worker(self, role: str) -> str:
        """The host is gone: its cable pulled, every process on it SIGKILLed."""
        node = self.workers.pop(role)
        self.net.set_link(role, False)
        self.net.kill_host(role)
        return node

    def ensure_workers(self, *roles: str) -> None:
        """Exactly these workers alive (others lost, and seen dead by the head)."""
        for role in WORKERS:
            alive = role in self.workers and self.is_alive(self.workers[role])
            if role in roles and not alive:
                self.start_worker(role)
            elif role not in roles and role in self.workers:
                node = self.lose_worker(role)
                self.wait_until(lambda n=node: not self.is_alive(n), 120, f"{role} seen dead")

    def start_mlflow(self) -> None:
        """README: `mlflow server ... --host HEAD_IP --port 5000 --workers 1` on the head."""
        store = self.root / "mlflow"
        store.mkdir(exist_ok=True)
        env = {**self.env("head"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.mlflow = self.popen("head", [
            "mlflow", "server", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination", str(store / "artifacts"),
            "--host", self.head_ip, "--port", "5000", "--workers", "1",
        ], "mlflow", env=env)  # fmt: skip

    def mlflow_healthy(self) -> bool:
        done = self.run("head", ["python", "-c", HEALTH, self.tracking_uri], "health", 30)
        return done.returncode == 0

    def wait_mlflow(self) -> None:
        def ready() -> bool:
            assert self.mlflow is not None and self.mlflow.poll() is None, (
                f"mlflow server exited\n{self.tails()}"
            )
            return self.mlflow_healthy()

        self.wait_until(ready, 180, "the MLflow server answers /health")

    def kill_mlflow(self) -> None:
        assert self.mlflow is not None
        os.killpg(self.mlflow.pid, signal.SIGKILL)
        self.mlflow.wait(timeout=30)
        self.wait_until(lambda: not self.mlflow_healthy(), 30, "the MLflow server is down")

    def mlflow_runs(self, experiment: str) -> list[dict]:
        """Active runs of ``experiment`` straight from the server's SQLite store (read-only)."""
        db = self.root / "mlflow" / "mlflow.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60) as con:
            ids = [r[0] for r in con.execute(
                "SELECT experiment_id FROM experiments WHERE name = ?", (experiment,))]  # fmt: skip
            if not ids:
                return []
            runs = {r[0]: {"run_id": r[0], "status": r[1], "tags": {}} for r in con.execute(
                "SELECT run_uuid, status FROM runs WHERE experiment_id = ? AND "
                "lifecycle_stage = 'active'", (ids[0],))}  # fmt: skip
            for run_id, key, value in con.execute("SELECT run_uuid, key, value FROM tags"):
                if run_id in runs:
                    runs[run_id]["tags"][key] = value
            for run in runs.values():
                run["metrics"] = con.execute(
                    "SELECT key, value, step FROM metrics WHERE run_uuid = ?", (run["run_id"],)
                ).fetchall()
        return list(runs.values())

    def compare(self, config: Path, log: str, resume: bool = False) -> subprocess.Popen:
        """README: `gaea-tune compare FILE --address HEAD_IP:6379`, on the head."""
        argv = ["gaea-tune", "compare", str(config), "--address", self.address]
        return self.popen("head", argv + (["--resume"] if resume else []), log)

    def finish(self, process: subprocess.Popen, timeout: float) -> None:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(
                f"compare did not end within {timeout:.0f} s\n{self.tails()}"
            ) from None
        assert process.returncode == 0, f"compare exited {process.returncode}\n{self.tails()}"

    def stop(self, keep_ray_logs: bool) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.net.stop()  # every process on every host, then the namespaces
        finally:
            if keep_ray_logs and self.ray_dirs.exists():
                shutil.copytree(self.ray_dirs, self.root / "ray-logs", dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("sockets", "*.so", "runtime_resources"),
                                symlinks=True)  # fmt: skip
            shutil.rmtree(self.ray_dirs, ignore_errors=True)


def _remove_leftover_dirs() -> None:
    for folder in Path("/tmp").glob(f"{_netns.PREFIX}*"):
        digits = folder.name[len(_netns.PREFIX) :]
        if digits.isdigit() and not Path(f"/proc/{digits}").exists():
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    reason = _netns.available()
    if reason:
        if os.environ.get("GAEA_TUNE_REQUIRE_MULTIHOST") == "1":
            pytest.fail(
                f"the multi-host test must run here (GAEA_TUNE_REQUIRE_MULTIHOST=1): {reason}"
            )
        pytest.skip(f"multi-host test needs network namespaces: {reason}")
    _remove_leftover_dirs()
    failed_before = request.session.testsfailed
    hosts = Cluster(tmp_path_factory.mktemp("multihost"))
    try:
        hosts.start()
        yield hosts
    finally:
        hosts.stop(keep_ray_logs=request.session.testsfailed > failed_before)


# --- helpers ------------------------------------------------------------------------------------


def _write_config(cluster: Cluster, folder: Path, name: str, methods: dict, seeds, budget) -> Path:
    raw = {
        "name": name,
        "space": {"name": "nb201", "C": 4, "N": 1},
        "dataset": {
            "name": "cifar10-subset",
            "resolution": 16,
            "max_train": 1024,
            "max_valid": 256,
        },  # fmt: skip
        "budget": {"device_seconds": budget},
        "seeds": seeds,
        "resources": {"gpu": 0, "cpu": 1},
        "max_failures": 2,
        "progress_every_seconds": 1,
        "methods": methods,
        "tracking_uri": cluster.tracking_uri,
        "output_dir": str(folder / "out"),
        "storage_path": str(cluster.shared / name),
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _events(out: Path) -> dict[str, list[dict]]:
    """Event log of every method x seed, by file stem (a line being written is skipped)."""
    return {path.stem: read_events(path) for path in out.glob("runs/*/events/*.jsonl")}


def _results(events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"] == "result"]


def _outcomes(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in out.glob("runs/*/outcomes/*.json")}


def _levels(runs: list[dict]) -> dict[str, Counter]:
    """Run counts by level and status, e.g. {"trial": Counter({"FINISHED": 12})}."""
    levels: dict[str, Counter] = {}
    for run in runs:
        levels.setdefault(run["tags"].get("gaea.level", "?"), Counter())[run["status"]] += 1
    return levels


def _check_run_tree(runs: list[dict], events: dict[str, list[dict]], methods: int) -> None:
    """One comparison run, one run per method x seed, one per trial; all ended, none twice."""
    keys = [r["tags"].get("gaea.key") for r in runs]
    duplicates = [k for k, n in Counter(keys).items() if n > 1]
    assert not duplicates, f"MLflow runs created twice: {duplicates}"
    levels = _levels(runs)
    assert levels["comparison"] == Counter({"FINISHED": 1}), levels
    assert levels["method"] == Counter({"FINISHED": methods}), levels
    running = [r["tags"].get("gaea.key") for r in runs if r["status"] == "RUNNING"]
    assert not running, f"runs left RUNNING: {running}"
    trial_runs = [r for r in runs if r["tags"].get("gaea.level") == "trial"]
    by_trial = Counter(r["tags"]["gaea.trial_id"] for r in trial_runs)
    assert max(by_trial.values()) == 1, f"a trial with two MLflow runs: {by_trial}"
    trials = {e["trial_id"] for log in events.values() for e in _results(log)}
    assert trials <= set(by_trial), f"trials without an MLflow run: {trials - set(by_trial)}"
    # a trial started just before a stop (budget reached, driver killed) may have no result:
    # its run exists and is ended, as checked above


def _budget_met(outcome: dict, events: list[dict], lost: float) -> None:
    """Ended at the budget: >= 90% spent, every trial finished, or (the README's rule for
    launching a standalone trial) the next trial, at the mean cost of the finished ones, would
    not have fit; and past the budget by at most one reporting step plus the lost work."""
    budget, spent = outcome["budget_device_seconds"], outcome["spent_device_seconds"]
    results = _results(events)
    finished = {e["trial_id"] for e in events if e["kind"] == "finish"}
    started = {e["trial_id"] for e in results}
    cost = {e["trial_id"]: e["trial_device_seconds"] for e in results}
    costs = [cost[t] for t in finished if t in cost]
    next_trial = sum(costs) / len(costs) if costs else 0.0
    assert (
        spent >= 0.9 * budget
        or (started and started <= finished)
        or (next_trial and spent + next_trial > budget)
    ), f"{outcome['label']} seed {outcome['seed']} stopped early: {spent:.1f} of {budget:g}"
    steps = [b["trial_device_seconds"] - a["trial_device_seconds"]
             for a, b in zip(results, results[1:]) if a["trial_id"] == b["trial_id"]]  # fmt: skip
    largest = max([*steps, *(e["trial_device_seconds"] for e in results[:1])], default=0.0)
    assert spent <= budget + 2 * largest + lost + 1e-6, (outcome, largest, lost)


# --- the tests, cheapest topology changes first -------------------------------------------------


def test_a_worker_host_joins_mid_comparison(cluster, tmp_path):
    """Started with one worker, whose one CPU the first weight-sharing search (one trial for
    its whole budget) holds; the second host joins once it reports; the waiting seed's search
    runs there. (A method x seed that is already running keeps reusing its trial actor where it
    is, which is Tune's actor reuse; the README says so.)"""
    cluster.ensure_workers("w1")
    config = _write_config(cluster, tmp_path, "mh-join", {
        "gaea-darts": {"epochs": 30, "batch_size": 32},
    }, seeds=[0, 1], budget=20)  # fmt: skip
    out = tmp_path / "out"
    process = cluster.compare(config, "compare-join")
    cluster.wait_until(
        lambda: any(_results(log) for log in _events(out).values()) or process.poll() is not None,
        300, "the first result",
    )  # fmt: skip
    assert process.poll() is None, f"compare ended before the host joined\n{cluster.tails()}"
    joined_at = time.time()
    late = cluster.start_worker("w2")
    cluster.finish(process, 400)

    events = _events(out)
    results = [e for log in events.values() for e in _results(log)]
    nodes = Counter(e["node_id"] for e in results)
    assert nodes[late] > 0, f"no trial ran on the host that joined: {nodes}"
    assert nodes[cluster.workers["w1"]] > 0 and set(nodes) == {late, cluster.workers["w1"]}
    assert min(e["time"] for e in results if e["node_id"] == late) > joined_at
    for name, outcome in _outcomes(out).items():
        _budget_met(outcome, events[name], lost=0.0)
    _check_run_tree(cluster.mlflow_runs("mh-join"), events, methods=2)
    by_seed = {name: {e["node_id"] for e in _results(log)} for name, log in events.items()}
    assert sorted(map(len, by_seed.values())) == [1, 1], f"a search moved between hosts: {by_seed}"


def test_doctor_reports_every_node(cluster, tmp_path):
    from gaea_tune.tune._doctor import local_versions

    cluster.ensure_workers("w1", "w2")
    config = _write_config(cluster, tmp_path, "mh-doctor", {"random": {}}, seeds=[0], budget=10)
    done = cluster.run("head", ["gaea-tune", "doctor", "--address", cluster.address,
                                str(config)], "doctor-ok")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    versions = local_versions()
    rows = {ip: [line for line in done.stdout.splitlines() if f"  {ip}  " in line]
            for ip in (cluster.head_ip, *(cluster.net.address(r) for r in WORKERS))}  # fmt: skip
    for ip, lines in rows.items():
        assert len(lines) == 1, f"no single row for {ip}:\n{done.stdout}"
        assert all(value in lines[0] for value in versions.values()), (versions, lines[0])
        assert "ok: HTTP 200" in lines[0] and "ok: shared, writable" in lines[0]
    assert "head,driver" in rows[cluster.head_ip][0]
    assert "cluster ok: 3 nodes" in done.stdout

    wrong = cluster.run("head", ["gaea-tune", "doctor", "--address", cluster.address,
                                 str(config), "--set", f"tracking_uri=http://{cluster.head_ip}:5999"],
                        "doctor-wrong-uri")  # fmt: skip
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    (line,) = wrong.stderr.strip().splitlines()[-1:]
    assert line.startswith("gaea-tune: error: cluster check: the tracking store cannot be used "
                           f"from the driver's node {cluster.head_ip}"), wrong.stderr  # fmt: skip
    assert "unreachable" in line and wrong.stdout.count("FAIL: unreachable") == 3


def test_mlflow_server_restarted_mid_comparison(cluster, tmp_path, capsys):
    """Killed while trials report, back on the same store a few seconds later: nothing logged
    in between is lost, and the run tree is complete."""
    cluster.ensure_workers("w1", "w2")
    config = _write_config(cluster, tmp_path, "mh-mlflow", {
        "gaea-darts": {"epochs": 6, "batch_size": 32},
        "random": {"epochs": 3, "batch_size": 32, "max_concurrent": 1},
    }, seeds=[0], budget=12)  # fmt: skip
    out = tmp_path / "out"
    process = cluster.compare(config, "compare-mlflow")
    cluster.wait_until(
        lambda: sum(len(_results(v)) for v in _events(out).values()) >= 3
        or process.poll() is not None, 300, "three results",
    )  # fmt: skip
    assert process.poll() is None, f"compare ended before the restart\n{cluster.tails()}"
    down_at = time.time()
    cluster.kill_mlflow()
    time.sleep(5)  # the outage itself
    cluster.start_mlflow()
    cluster.wait_mlflow()
    up_at = time.time()
    cluster.finish(process, 400)

    events = _events(out)
    runs = cluster.mlflow_runs("mh-mlflow")
    _check_run_tree(runs, events, methods=2)
    logged = {(r["tags"]["gaea.trial_id"], round(value, 6))
              for r in runs if r["tags"].get("gaea.level") == "trial"
              for key, value, _ in r["metrics"] if key == "device_seconds"}  # fmt: skip
    reported = {(e["trial_id"], round(e["trial_device_seconds"], 6))
                for log in events.values() for e in _results(log)}  # fmt: skip
    assert reported <= logged, f"results missing in MLflow: {sorted(reported - logged)[:10]}"
    during = [e for log in events.values() for e in _results(log) if down_at <= e["time"] <= up_at]
    assert during, "no result arrived while the server was down; the outage tested nothing"
    retries = [
        line
        for p in cluster.ray_dirs.glob("head-*/ray/session_*/logs/worker-*")
        for line in p.read_text(errors="replace").splitlines()
        if "failed on the connection" in line
    ]
    with capsys.disabled():
        print(f"\nMLflow outage: {up_at - down_at:.1f} s, {len(during)} results reported meanwhile, "
              f"{len(retries)} calls retried, e.g. {retries[:1]}")  # fmt: skip
    assert retries, "no MLflow call was retried; the outage tested nothing"
    for outcome in _outcomes(out).values():
        name = f"{outcome['label']}-seed{outcome['seed']}"
        _budget_met(outcome, events[name], lost=0.0)


def test_killed_driver_resumes_from_the_head(cluster, tmp_path):
    """SIGKILL of the driver's process group, then `compare --resume` on the head: finished as
    on one machine, nothing counted or logged twice."""
    cluster.ensure_workers("w1", "w2")
    budget = 12
    config = _write_config(cluster, tmp_path, "mh-resume", {
        "random": {"epochs": 3, "batch_size": 32, "max_concurrent": 1},
        "gaea-darts": {"epochs": 6, "batch_size": 32},
    }, seeds=[0], budget=budget)  # fmt: skip
    out = tmp_path / "out"
    first = cluster.compare(config, "compare-resume-1")

    def started() -> bool:
        events = _events(out)
        return (len(_results(events.get("random-seed0", []))) >= 3
                and len(_results(events.get("gaea-darts-seed0", []))) >= 1) or first.poll() is not None  # fmt: skip

    cluster.wait_until(started, 300, "results of both methods")
    assert first.poll() is None, f"compare ended before the kill\n{cluster.tails()}"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    before_events = _events(out)
    trials_before = {k: {e["trial_id"] for e in _results(v)} for k, v in before_events.items()}
    runs_before = _levels(cluster.mlflow_runs("mh-resume"))
    time.sleep(3)  # Ray ends the killed driver's tasks and actors
    cluster.finish(cluster.compare(config, "compare-resume-2", resume=True), 400)

    events = _events(out)
    runs = cluster.mlflow_runs("mh-resume")
    _check_run_tree(runs, events, methods=2)
    assert sum(runs_before["comparison"].values()) == 1
    summary = json.loads((out / "report" / "summary.json").read_text())
    for name, before in trials_before.items():
        label = name.rsplit("-seed", 1)[0]
        seed = summary["methods"][label]["seeds"][0]
        assert seed["trials"] >= len(before), (name, seed["trials"], before)
    for outcome in _outcomes(out).values():
        name = f"{outcome['label']}-seed{outcome['seed']}"
        lost = sum(e["device_seconds"] for e in events[name] if e["kind"] == "lost")
        _budget_met(outcome, events[name], lost=lost)


def test_worker_host_lost_mid_comparison(cluster, tmp_path, capsys):
    """A worker host vanishes (cable pulled, every process SIGKILLed) while trials run on it:
    they continue from their checkpoints on the other host, the lost work is charged once,
    every method ends at its budget, and MLflow holds one ended run per trial."""
    cluster.ensure_workers("w1", "w2")
    methods = {
        "gaea-darts": {"epochs": 6, "batch_size": 32},
        "random": {"epochs": 3, "batch_size": 32},
        "rea": {"epochs": 3, "batch_size": 32},
    }
    budget = 25  # the lost work (about 10 s) leaves room for the lost trials to continue
    config = _write_config(cluster, tmp_path, "mh-host-loss", methods, seeds=2, budget=budget)
    out = tmp_path / "out"
    process = cluster.compare(config, "compare-host-loss")
    role_of = {node: role for role, node in cluster.workers.items()}

    def running_on_a_worker() -> dict[str, dict] | None:
        """Unfinished trials with results, by trial id (last result each), once a weight-sharing
        trial (the longest: the loss hits it mid-trial) has reported two epochs. Tune registers
        a reported checkpoint a moment after the result, so the second epoch makes sure one is
        registered when the host goes."""
        last, finished = {}, set()
        for log in _events(out).values():
            for e in log:
                if e["kind"] == "result":
                    last[e["trial_id"]] = e
                elif e["kind"] == "finish":
                    finished.add(e["trial_id"])
        running = {t: e for t, e in last.items() if t not in finished and e["node_id"] in role_of}
        ws = [e for e in running.values() if e.get("entropy") is not None and e["epoch"] >= 2]
        return running if ws or process.poll() is not None else None

    running = cluster.wait_until(running_on_a_worker, 300, "a weight-sharing trial reporting")
    assert process.poll() is None, f"compare ended before the loss\n{cluster.tails()}"
    victim_node = next(
        e["node_id"] for e in running.values() if e.get("entropy") is not None and e["epoch"] >= 2
    )
    victim = role_of[victim_node]
    on_victim = {t: e["epoch"] for t, e in running.items() if e["node_id"] == victim_node}
    runs_before = _levels(cluster.mlflow_runs("mh-host-loss"))
    lost_at = time.time()
    cluster.lose_worker(victim)
    cluster.wait_until(lambda: not cluster.is_alive(victim_node), 120, "the lost host seen dead")
    detected_after = time.time() - lost_at

    def resumed() -> bool:
        logs = _events(out)
        return any(e["trial_id"] in on_victim and e["node_id"] != victim_node and e["time"] > lost_at
                   for log in logs.values() for e in _results(log)) or process.poll() is not None  # fmt: skip

    cluster.wait_until(resumed, 180, "a trial of the lost host resuming elsewhere")
    cluster.start_worker(victim)  # the host repaired: the rest of the comparison is faster
    cluster.finish(process, 480)

    events = _events(out)
    outcomes = _outcomes(out)
    runs = cluster.mlflow_runs("mh-host-loss")
    lost = {e["trial_id"]: [] for log in events.values() for e in log if e["kind"] == "lost"}
    for log in events.values():
        for e in log:
            if e["kind"] == "lost":
                lost[e["trial_id"]].append(e["device_seconds"])
    figures = {
        "victim": victim,
        "lost_host_detected_after_s": round(detected_after, 1),
        "trials_on_lost_host": on_victim,
        "lost_device_seconds": {t: [round(x, 2) for x in v] for t, v in lost.items()},
        "spent": {k: o["spent_device_seconds"] for k, o in sorted(outcomes.items())},
        "budget": budget,
        "mlflow_runs_before": {k: dict(v) for k, v in runs_before.items()},
        "mlflow_runs_after": {k: dict(v) for k, v in _levels(runs).items()},
    }
    (cluster.root / "host-loss.json").write_text(json.dumps(figures, indent=1))
    with capsys.disabled():
        print(f"\nhost loss: {json.dumps(figures)}")

    # Lost work is owed by the trials on the host when the cable was pulled. A short trial seen
    # there may end, and the next one start there, in the moment before: so the check is that no
    # trial is charged that had ended, or that ran on another host, before the loss.
    before = [e for log in events.values() for e in log if e["time"] < lost_at]
    ended = {e["trial_id"] for e in before if e["kind"] == "finish"}
    elsewhere = {e["trial_id"] for e in _results(before) if e["node_id"] != victim_node}
    wrongly = set(lost) & (ended | elsewhere)
    assert not wrongly, f"lost work charged for trials not on the lost host: {lost}, {wrongly}"
    assert lost and all(len(v) == 1 for v in lost.values()), f"lost work charged {lost}"
    continued = []
    for trial in on_victim:
        results = [e for log in events.values() for e in _results(log) if e["trial_id"] == trial]
        before = [e["epoch"] for e in results if e["node_id"] == victim_node]
        after = [e["epoch"] for e in results if e["node_id"] != victim_node]
        if after:  # from its last registered checkpoint: the last epoch or the one before
            assert max(before) <= after[0] <= max(before) + 1, (
                f"trial {trial} did not continue from its checkpoint: epochs {before} then {after}"
            )
            if after[0] > 1:
                continued.append(trial)
    assert continued, f"no trial of the lost host continued from a checkpoint: {on_victim}"
    for name, outcome in outcomes.items():
        charged = sum(e["device_seconds"] for e in events[name] if e["kind"] == "lost")
        _budget_met(outcome, events[name], lost=charged)
    assert len(outcomes) == 6
    _check_run_tree(runs, events, methods=6)
    trial_status = Counter(r["status"] for r in runs if r["tags"].get("gaea.level") == "trial")
    assert set(trial_status) == {"FINISHED"}, trial_status
