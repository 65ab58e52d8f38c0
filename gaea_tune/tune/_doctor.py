"""The cluster check (``gaea-tune doctor``, and the start of ``compare --address``).

A small zero-CPU task pinned to every alive node reports what that node runs (gaea-tune with a
digest of its source files, Ray, torch, Python), its GPUs, whether it reaches the tracking store
and whether it sees the driver's storage folder. A node that runs different code than the
driver, a storage folder that a node which would run trials (or the driver's node) cannot write
or does not share, an unreachable tracking store on the driver's node (the only node that writes
to MLflow), or no node big enough for one trial: each is a problem, and any problem stops the
comparison before a trial starts.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from gaea_tune.config import ConfigError, ExperimentConfig
from gaea_tune.resolve import storage_folder

PROBE_TIMEOUT_S = 180.0  # a node may have to start a Python worker to answer
VERSION_KEYS = ("gaea-tune", "ray", "torch", "python")


class ClusterCheckError(ConfigError):
    """The cluster cannot run the comparison as it stands (one line, names node and cause)."""


# HTTP/2's client connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5): a
# Ray head's GCS is a gRPC server, which answers them with a SETTINGS frame of its own.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_H2_SETTINGS = 0x04


def _speaks_grpc(sock: socket.socket, timeout: float) -> bool:
    """Whether the server on ``sock`` answers HTTP/2's preface with a SETTINGS frame (9-byte
    frame header, type at byte 3), as a gRPC server does; an HTTP/1 server, a server that says
    nothing within ``timeout`` or one that closes does not."""
    sock.settimeout(timeout)
    try:
        sock.sendall(_H2_PREFACE)
        header = b""
        while len(header) < 9:
            chunk = sock.recv(9 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:
        return False
    return header[3] == _H2_SETTINGS


def check_head_reachable(address: str | None, timeout: float = 5.0) -> None:
    """A Ray head's GCS answers on ``HOST:PORT`` within ``timeout`` seconds: the port is open
    and speaks gRPC (HTTP/2), so it is not, say, the dashboard's or MLflow's port.

    Checked before ``ray.init(address=...)``, which would otherwise keep retrying a closed port,
    or another service's, for minutes. ``auto``/``local``, ``ray://`` client addresses and None
    are left to Ray, and so is the protocol check when ``RAY_USE_TLS`` is on (the GCS then
    expects TLS first). Raises :class:`ClusterCheckError` (one line)."""
    if address and address.lower().startswith(("http://", "https://")):
        raise ClusterCheckError(
            f"--address: {address!r} is a web address (the dashboard's?); give the HOST:PORT of "
            "the Ray head (e.g. 10.0.0.1:6379), or ray://HOST:PORT for Ray Client"
        )
    if not address or address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterCheckError(
            f"--address: {address!r} is not the HOST:PORT of a Ray head (e.g. 10.0.0.1:6379; "
            "a port is 1-65535)"
        )
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ClusterCheckError(
            f"--address {address}: nothing answers at {host}:{port} within {timeout:g} s "
            f"({reason}); is `ray start --head --port={port}` running there, and the port open?"
        ) from None
    with sock:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        if not _speaks_grpc(sock, timeout):
            raise ClusterCheckError(
                f"--address {address}: {host}:{port} answers, but not as a Ray head (no gRPC "
                f"within {timeout:g} s): give the port `ray start --head --port=P` was started "
                "with (6379 by default), not the dashboard's or another service's"
            )


# --- what runs on each node ---------------------------------------------------------------------


def source_digest() -> str:
    """A digest of the installed gaea_tune and search_spaces sources: same version number,
    different code on two nodes is still a mismatch."""
    import gaea_tune
    import search_spaces

    digest = hashlib.sha256()
    for package in (gaea_tune, search_spaces):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def local_versions() -> dict[str, str]:
    """Versions as installed (read from package metadata: torch is not imported for this)."""
    import ray

    import gaea_tune

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return {
        "gaea-tune": f"{gaea_tune.__version__}+src.{source_digest()}",
        "ray": ray.__version__,
        "torch": torch_version,
        "python": platform.python_version(),
    }


def probe_tracking(tracking_uri: str | None, timeout: float = 5.0) -> dict[str, Any]:
    """Can this node use the tracking store? ``ok`` is None where nothing was checked."""
    if not tracking_uri:
        return {"ok": None, "detail": "-"}
    scheme, sep, rest = tracking_uri.partition("://")
    if scheme in ("http", "https"):
        url = tracking_uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return {"ok": response.status == 200, "detail": f"HTTP {response.status}"}
        except urllib.error.HTTPError as error:
            return {"ok": False, "detail": f"HTTP {error.code} from {url}"}
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            return {"ok": False, "detail": f"unreachable: {reason}"}
    if scheme.split("+")[0] == "sqlite" and sep:
        path = rest[1:].split("?")[0]
        if not path or path == ":memory:":
            return {"ok": None, "detail": "in-memory store"}
        return _writable(Path(path).expanduser().absolute().parent, "store folder", create=True)
    if scheme == "file" and sep:
        folder = Path(url2pathname(urlparse(tracking_uri).path))
        return _writable(folder, "store folder", create=True)
    return {"ok": None, "detail": f"{scheme} store not checked"}


def _writable(folder: Path, what: str, create: bool = False) -> dict[str, Any]:
    """Can this node write in ``folder`` (or, with ``create``, make it where it is missing)?"""
    if create and not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK | os.X_OK):
            return {"ok": False, "detail": f"cannot create {what} {folder}"}
        return {"ok": True, "detail": "creatable"}
    if not folder.is_dir():
        return {"ok": False, "detail": f"{what} {folder} does not exist"}
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gaea-doctor-"):
            pass
    except OSError as error:
        return {"ok": False, "detail": f"cannot write in {what} {folder}: {error.strerror}"}
    return {"ok": True, "detail": "writable"}


def probe_storage(storage: str | None, marker: str | None) -> dict[str, Any]:
    """Is the storage folder here, writable, and the driver's own (its marker file visible)?"""
    if not storage:
        return {"ok": None, "detail": "-"}
    if "://" in storage:
        return {"ok": None, "detail": "URI not checked"}
    result = _writable(Path(storage), "storage folder")
    if result["ok"] and marker and not (Path(storage) / marker).exists():
        return {"ok": False, "detail": f"storage folder {storage} is not the driver's (not shared)"}
    return {**result, "detail": "shared, writable"} if result["ok"] and marker else result


def node_probe(
    tracking_uri: str | None, storage: str | None, marker: str | None, gpus: float = 0.0
) -> dict:
    """Run on one node: versions, GPUs, tracking store and storage folder as this node sees them.
    ``gpus``: what Ray counts there; torch is imported (to name them) only where there are some."""
    names = []
    if gpus > 0:
        import torch

        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "versions": local_versions(),
        "gpu_names": names,
        "hostname": platform.node(),
        "tracking": probe_tracking(tracking_uri),
        "storage": probe_storage(storage, marker),
    }


# --- on the driver ------------------------------------------------------------------------------


def fits(report: dict[str, Any], cpu: float, gpu: float) -> bool:
    return report.get("cpus", 0.0) >= cpu and report.get("gpus", 0.0) >= gpu and (cpu or gpu) > 0


def find_problems(
    driver_versions: dict[str, str],
    reports: Sequence[dict[str, Any]],
    trial: tuple[float, float] | None = None,
) -> list[str]:
    """Everything that stops a comparison on these nodes, one short clause each.

    ``trial`` is the (cpu, gpu) one trial asks for, or None (only versions are compared).
    """
    problems: list[str] = []
    for report in reports:
        name = _node_name(report)
        if report.get("error"):
            problems.append(f"node {name}: {report['error']}")
            continue
        versions = report.get("versions") or {}
        for key in VERSION_KEYS:
            if versions.get(key) != driver_versions.get(key):
                problems.append(
                    f"node {name} runs {key} {versions.get(key)} but the driver runs "
                    f"{driver_versions.get(key)}"
                )
        runs_trials = trial is not None and fits(report, *trial)
        storage = report.get("storage") or {}
        if (runs_trials or report.get("driver")) and storage.get("ok") is False:
            problems.append(f"node {name}: {storage['detail']}")
        tracking = report.get("tracking") or {}
        if report.get("driver") and tracking.get("ok") is False:
            problems.append(f"the tracking store cannot be used from the driver's node {name}: "
                            f"{tracking['detail']}")  # fmt: skip
    if trial is not None and not any(fits(r, *trial) for r in reports if not r.get("error")):
        problems.append(
            f"no node can hold one trial (cpu {trial[0]:g}, gpu {trial[1]:g}); nodes have "
            + ", ".join(
                f"{_node_name(r)}: cpu {r.get('cpus', 0):g} gpu {r.get('gpus', 0):g}"
                for r in reports
            )  # fmt: skip
        )
    return problems


def _node_name(report: dict[str, Any]) -> str:
    return f"{report.get('address', '?')} ({str(report.get('node_id', '?'))[:8]})"


def probe_cluster(
    tracking_uri: str | None, storage: str | None, marker: str | None,
    timeout: float = PROBE_TIMEOUT_S,
) -> list[dict[str, Any]]:  # fmt: skip
    """One report per alive node (Ray must be initialised), the driver's node first."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    driver_node = ray.get_runtime_context().get_node_id()
    task = ray.remote(num_cpus=0, max_retries=0)(node_probe)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    nodes.sort(key=lambda n: (n["NodeID"] != driver_node, n.get("NodeManagerAddress", "")))
    refs = {}
    for node in nodes:
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        gpus = float((node.get("Resources") or {}).get("GPU", 0.0))
        refs[node["NodeID"]] = task.options(scheduling_strategy=strategy).remote(
            tracking_uri, storage, marker, gpus
        )
    ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout)
    reports = []
    for node in nodes:
        resources = node.get("Resources") or {}
        report: dict[str, Any] = {
            "node_id": node["NodeID"],
            "address": node.get("NodeManagerAddress", "?"),
            "head": "node:__internal_head__" in resources,
            "driver": node["NodeID"] == driver_node,
            "cpus": float(resources.get("CPU", 0.0)),
            "gpus": float(resources.get("GPU", 0.0)),
        }
        ref = refs[node["NodeID"]]
        ready, _ = ray.wait([ref], timeout=0)
        if not ready:
            ray.cancel(ref, force=True)
            report["error"] = f"did not answer within {timeout:.0f} s"
        else:
            try:
                report.update(ray.get(ref))
            except Exception as error:  # the node died, or cannot import gaea_tune
                lines = [x.strip() for x in str(error).splitlines() if x.strip()]
                report["error"] = (
                    f"probe failed: {lines[-1][:300] if lines else type(error).__name__}"
                )
        reports.append(report)
    return reports


def format_table(reports: Sequence[dict[str, Any]], trial: tuple[float, float] | None) -> str:
    header = ["node", "address", "role", "CPU", "GPU", *VERSION_KEYS, "tracking", "storage"]
    rows = [header]
    for r in reports:
        role = [x for x, on in (("head", r.get("head")), ("driver", r.get("driver")),
                                ("trials", trial is not None and fits(r, *trial))) if on]  # fmt: skip
        gpus = f"{r.get('gpus', 0):g}" + (f" {r['gpu_names'][0]}" if r.get("gpu_names") else "")
        versions = r.get("versions") or {}
        rows.append([
            str(r.get("node_id", "?"))[:8], str(r.get("address", "?")), ",".join(role) or "-",
            f"{r.get('cpus', 0):g}", gpus,
            *[versions.get(k, "?") for k in VERSION_KEYS],
            _status(r.get("tracking")), _status(r.get("storage")),
        ] if not r.get("error") else [
            str(r.get("node_id", "?"))[:8], str(r.get("address", "?")), ",".join(role) or "-",
            f"{r.get('cpus', 0):g}", gpus, "ERROR: " + r["error"],
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def _status(check: dict[str, Any] | None) -> str:
    if not check or check.get("ok") is None:
        return (check or {}).get("detail", "-")
    return ("ok: " if check["ok"] else "FAIL: ") + check["detail"]


def connect_and_check(
    address: str,
    config: ExperimentConfig | None,
    tracking_uri: str | None,
    show: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:
    """Connect to the Ray cluster at ``address``, :func:`check_cluster` it and disconnect.
    Raises :class:`ClusterCheckError` (one line) when the head does not answer, refuses the
    connection (a wrong token, a version mismatch) or the check finds a problem."""
    import ray

    check_head_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip
    except Exception as error:  # unreachable head, refused token, version mismatch
        lines = [x.strip() for x in str(error).splitlines() if x.strip()]
        raise ClusterCheckError(
            f"--address {address}: cannot connect: {lines[0] if lines else error}"
        ) from None
    try:
        return check_cluster(config, tracking_uri, show=show)
    finally:
        ray.shutdown()


def check_cluster(
    config: ExperimentConfig | None,
    tracking_uri: str | None,
    show: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:
    """Probe every node; print the table with ``show``; raise :class:`ClusterCheckError` (one
    line) on any problem. Ray must be initialised. Without a config, only versions count."""
    storage = storage_folder(config) if config is not None else None
    trial = (config.resources["cpu"], config.resources["gpu"]) if config is not None else None
    marker, created = None, None
    if storage and "://" not in storage:
        created = _first_missing(Path(storage))
        try:
            Path(storage).mkdir(parents=True, exist_ok=True)
            marker = f".gaea-doctor-{uuid.uuid4().hex[:12]}"
            (Path(storage) / marker).write_text("written by the driver's cluster check\n")
        except OSError as error:
            raise ClusterCheckError(
                f"storage_path: cannot create {storage} on the driver's node: {error.strerror}"
            ) from None
    try:
        reports = probe_cluster(tracking_uri, storage, marker)
    finally:
        if marker:
            (Path(storage) / marker).unlink(missing_ok=True)
        if storage and created:
            _remove_empty(Path(storage), created)
    if show is not None:
        show(format_table(reports, trial))
    problems = find_problems(local_versions(), reports, trial)
    if problems:
        raise ClusterCheckError("cluster check: " + "; ".join(problems))
    return reports


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None: it all exists)."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing = folder
    return missing


def _remove_empty(path: Path, top: Path) -> None:
    """Remove the empty folders the check created, from ``path`` up to ``top``."""
    for folder in [path, *path.parents]:
        try:
            os.rmdir(folder)
        except OSError:
            return
        if folder == top:
            return
