"""The cluster check: what counts as a problem, from node reports (no Ray needed), and the probes."""

from __future__ import annotations

import socket
import threading

import pytest

from gaea_tune.cli import main
from gaea_tune.config import ConfigError, parse_config
from gaea_tune.tune import _doctor
from gaea_tune.tune._doctor import (
    ClusterCheckError,
    check_cluster,
    find_problems,
    format_table,
    probe_storage,
    probe_tracking,
)

DRIVER = {"gaea-tune": "0.1.0+src.abc", "ray": "2.60.0", "torch": "2.14.1", "python": "3.11.7"}
OK = {"ok": True, "detail": "writable"}


def _node(address, cpus, gpus=0.0, driver=False, head=False, **changes):
    report = {
        "node_id": f"node{address.split('.')[-1]:0>4}" + "f" * 48,
        "address": address,
        "head": head,
        "driver": driver,
        "cpus": cpus,
        "gpus": gpus,
        "versions": dict(DRIVER),
        "gpu_names": [],
        "tracking": {"ok": True, "detail": "HTTP 200"},
        "storage": dict(OK),
    }
    for key, value in changes.items():
        if key in DRIVER:
            report["versions"][key] = value
        else:
            report[key] = value
    return report


def _cluster(**worker_changes):
    return [
        _node("10.0.0.1", 0, driver=True, head=True),
        _node("10.0.0.11", 1),
        _node("10.0.0.12", 1, **worker_changes),
    ]


def test_a_healthy_cluster_has_no_problems():
    assert find_problems(DRIVER, _cluster(), trial=(1, 0)) == []
    assert find_problems(DRIVER, _cluster()) == []


@pytest.mark.parametrize(
    "key, value",
    [
        ("ray", "2.59.0"),
        ("torch", "2.13.0"),
        ("python", "3.11.9"),
        ("gaea-tune", "0.1.0+src.def"),
    ],  # fmt: skip
)
def test_a_version_mismatch_names_the_node_and_both_versions(key, value):
    (problem,) = find_problems(DRIVER, _cluster(**{key: value}), trial=(1, 0))
    assert problem.startswith("node 10.0.0.12 (node0012")
    assert f"runs {key} {value} but the driver runs {DRIVER[key]}" in problem


def test_storage_matters_on_trial_nodes_and_the_driver_only():
    bad = {"ok": False, "detail": "storage folder /shared is not the driver's (not shared)"}
    (problem,) = find_problems(DRIVER, _cluster(storage=bad), trial=(1, 0))
    assert "10.0.0.12" in problem and "not shared" in problem
    # a worker too small for a trial does not need the storage folder
    assert find_problems(DRIVER, _cluster(storage=bad), trial=(2, 0))[-1].startswith(
        "no node can hold one trial (cpu 2, gpu 0)"
    )
    assert len(find_problems(DRIVER, _cluster(storage=bad), trial=(2, 0))) == 1
    reports = _cluster()
    reports[0]["storage"] = bad  # the driver's node writes Tune's experiment state there
    assert len(find_problems(DRIVER, reports, trial=(1, 0))) == 1


def test_tracking_matters_on_the_driver_node_only():
    down = {"ok": False, "detail": "unreachable: [Errno 111] Connection refused"}
    assert find_problems(DRIVER, _cluster(tracking=down), trial=(1, 0)) == []
    reports = _cluster()
    reports[0]["tracking"] = down
    (problem,) = find_problems(DRIVER, reports, trial=(1, 0))
    assert problem == (
        "the tracking store cannot be used from the driver's node 10.0.0.1 (node0001): "
        "unreachable: [Errno 111] Connection refused"
    )


def test_a_silent_node_and_a_gpu_trial_without_gpus():
    problems = find_problems(DRIVER, _cluster(error="did not answer within 180 s"), trial=(1, 1))
    assert problems[0] == "node 10.0.0.12 (node0012): did not answer within 180 s"
    assert problems[1].startswith("no node can hold one trial (cpu 1, gpu 1)")
    table = format_table(_cluster(error="did not answer within 180 s"), trial=(1, 0))
    assert "ERROR: did not answer" in table and "head,driver" in table


def test_check_cluster_raises_one_line_and_leaves_no_folder(tmp_path, monkeypatch):
    config = parse_config({
        "name": "doctor", "space": {"name": "nb201", "C": 4, "N": 1},
        "dataset": {"name": "cifar10-subset"}, "budget": {"device_seconds": 10},
        "resources": {"gpu": 0, "cpu": 1}, "methods": {"random": {}},
        "output_dir": str(tmp_path / "out"),
    })  # fmt: skip
    seen = {}

    def probe(tracking_uri, storage, marker, timeout=0):
        seen.update(storage=storage, marker_seen=probe_storage(storage, marker))
        return _cluster(ray="2.59.0")

    monkeypatch.setattr(_doctor, "probe_cluster", probe)
    monkeypatch.setattr(_doctor, "local_versions", lambda: dict(DRIVER))
    shown = []
    with pytest.raises(ClusterCheckError) as caught:
        check_cluster(config, "http://10.0.0.1:5000", show=shown.append)
    assert isinstance(caught.value, ConfigError)  # `compare` prints it and exits with 2
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("cluster check: node 10.0.0.12")
    assert seen["storage"] == str(tmp_path / "out" / "ray")
    assert seen["marker_seen"] == {"ok": True, "detail": "shared, writable"}
    assert not (tmp_path / "out").exists()  # the folders the check made are gone again
    assert "10.0.0.12" in shown[0]


def test_probes(tmp_path):
    assert probe_tracking(f"sqlite:///{tmp_path}/a/b/mlflow.db")["ok"] is True
    assert probe_tracking(f"sqlite:///{tmp_path}/mlflow.db") == {"ok": True, "detail": "writable"}
    down = probe_tracking("http://127.0.0.1:9", timeout=2)
    assert down["ok"] is False and down["detail"].startswith("unreachable")
    assert probe_tracking("postgresql://db/mlflow")["ok"] is None
    assert probe_storage(str(tmp_path / "missing"), None)["ok"] is False
    assert probe_storage(str(tmp_path), ".marker")["detail"].endswith("(not shared)")
    (tmp_path / ".marker").write_text("")
    assert probe_storage(str(tmp_path), ".marker") == {"ok": True, "detail": "shared, writable"}
    assert probe_storage("s3://bucket/runs", ".marker")["ok"] is None


def test_doctor_needs_an_address(monkeypatch, capsys):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err.strip() == (
        "gaea-tune: error: --address: which Ray cluster? give HOST:PORT of its head"
    )


@pytest.mark.integration
def test_a_local_node_reports_the_driver_versions(ray_local, tmp_path):
    reports = check_cluster(None, None)
    assert len(reports) == 1 and reports[0]["driver"]
    assert reports[0]["versions"] == _doctor.local_versions()


def _serve_once(reply: bytes | None) -> tuple[socket.socket, threading.Thread]:
    """A one-connection server on a free local port: it reads the client's first bytes and
    answers ``reply`` (None: says nothing until the client gives up)."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()

    def serve() -> None:
        conn, _ = listening.accept()
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(64)
                if reply is not None:
                    conn.sendall(reply)
                conn.recv(64)  # until the client closes
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listening, thread


GRPC_SETTINGS = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00\x64"
HTTP1_REPLY = b"HTTP/1.0 400 Bad request\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize(
    ("reply", "tls", "accepted"),
    [
        (GRPC_SETTINGS, False, True),  # a gRPC server (a Ray head's GCS) answers SETTINGS
        (HTTP1_REPLY, False, False),  # the dashboard, MLflow, any HTTP/1 service
        (None, False, False),  # a service that says nothing
        (None, True, True),  # with RAY_USE_TLS the GCS expects TLS first: left to Ray
    ],
)
def test_the_head_port_must_speak_grpc(monkeypatch, reply, tls, accepted):
    """ray.init would keep retrying another service's port for minutes: refused in seconds."""
    from gaea_tune.tune._doctor import ClusterCheckError, check_head_reachable

    monkeypatch.setenv("RAY_USE_TLS", "1" if tls else "0")
    listening, thread = _serve_once(reply)
    with listening:
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        if accepted:
            check_head_reachable(address, timeout=2)
        else:
            with pytest.raises(
                ClusterCheckError, match=rf"{address}: {address} answers, but not as a Ray head"
            ):
                check_head_reachable(address, timeout=1)
    thread.join(timeout=10)


def test_a_closed_head_port_is_one_line_at_once():
    """ray.init would keep retrying a closed port for minutes: refused before it, in seconds."""
    from gaea_tune.tune._doctor import ClusterCheckError, check_head_reachable

    with socket.socket() as listening:  # bound, then closed: nothing listens
        listening.bind(("127.0.0.1", 0))
        port = listening.getsockname()[1]
    with pytest.raises(ClusterCheckError, match=rf"127.0.0.1:{port}: nothing answers"):
        check_head_reachable(f"127.0.0.1:{port}", timeout=2)
    for bad in ("headnode", "127.0.0.1:0", "127.0.0.1:99999", "host:port"):
        with pytest.raises(ClusterCheckError, match="not the HOST:PORT"):
            check_head_reachable(bad)
    for web in ("http://127.0.0.1:8265", "HTTPS://head:443"):
        with pytest.raises(ClusterCheckError, match="is a web address"):
            check_head_reachable(web)
    for left_to_ray in (None, "auto", "ray://10.0.0.1:10001"):
        check_head_reachable(left_to_ray)


def test_doctor_and_compare_refuse_a_closed_port_before_anything(tmp_path, capsys):
    from gaea_tune.cli import main

    out = tmp_path / "out"
    assert main(["doctor", "--address", "127.0.0.1:1"]) == 2
    assert main(["compare", "tune_configs/nb201_tabular_compare.yaml", "--address",
                 "127.0.0.1:1", "--set", f"output_dir={out}"]) == 2  # fmt: skip
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all("127.0.0.1:1: nothing answers" in e for e in errors), errors
    assert not out.exists()


def test_doctor_says_in_one_line_when_ray_refuses_the_connection(monkeypatch, capsys):
    """A head that answers but refuses the driver (a wrong token, another Ray version): the
    first line of Ray's error, once, and nothing probed."""
    import ray

    def refuse(**kwargs):
        raise ConnectionError("Authentication failed: the token does not match\n  details...")

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(_doctor, "check_head_reachable", lambda address: None)
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(_doctor, "check_cluster", lambda *a, **k: pytest.fail("probed"))
    assert main(["doctor", "--address", "10.0.0.9:6379"]) == 2
    assert capsys.readouterr().err.strip() == (
        "gaea-tune: error: --address 10.0.0.9:6379: cannot connect: "
        "Authentication failed: the token does not match"
    )
