"""A Ray cluster on loopback with token auth, started with ``ray start`` by a test and always stopped.

Shared by the job-submission test (one head) and the two-node test (a head and a worker node).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

HEAD_START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_using(marker: str, gcs_address: str | None = None) -> list[int]:
    """Processes of one test head: the command line mentions ``marker`` (its private temp dir: GCS,
    raylet, dashboard, workers) or, with ``gcs_address``, the environment points RAY_ADDRESS at it
    (job drivers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found = marker in cmdline
            if not found and gcs_address:
                found = f"RAY_ADDRESS={gcs_address}".encode() in (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if found:
            pids.append(int(entry.name))
    return pids


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def file_state(path: Path) -> tuple[int, str] | None:
    """(mtime, content hash) of a file, None if there is none."""
    if not path.exists():
        return None
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def private_auth(temp_dir: str) -> dict[str, str]:
    """A token file and a HOME of the test head's own, inside its temp dir: the environment the head, its
    job drivers and every client of this module run with."""
    home = Path(temp_dir) / "home"
    home.mkdir()
    token_path = Path(temp_dir) / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    token_path.chmod(0o600)
    return {"HOME": str(home), "RAY_AUTH_TOKEN_PATH": str(token_path), "RAY_AUTH_MODE": "token"}


def env_with(changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes`` applied (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def head_env(ports: dict[str, int], auth: dict[str, str]) -> dict[str, str]:
    env = env_with(auth)
    env.update({
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",                 # explicit: never run this cluster without auth
        # single-node mode: Ray advertises and binds 127.0.0.1 instead of the host's address
        # (plain --node-ip-address=127.0.0.1 is rewritten to the host IP by Ray 2.60)
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        # fixed default metric ports would collide with other heads on a shared machine
        "AUTOSCALER_METRIC_PORT": str(ports["autoscaler_metrics"]),
        "DASHBOARD_METRIC_PORT": str(ports["dashboard_metrics"]),
    })
    return env


def stop_head(proc: subprocess.Popen, temp_dir: str, gcs_address: str) -> None:
    """End the ``ray start --block`` process this fixture started, then anything of its cluster left."""
    if proc.poll() is None:
        # SIGTERM to the `ray start` process alone: its handler stops raylet, dashboard and GCS in order
        # (signalling the whole group at once kills GCS first and the drain then waits ~30 s for it).
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the leader is not reaped yet: the group is still ours
            proc.wait(timeout=10)
    deadline = time.monotonic() + 20
    while (left := pids_using(temp_dir, gcs_address)) and time.monotonic() < deadline:
        for pid in left:  # this head's raylet, workers, job drivers: all started by this fixture's head
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)


def wait_for_job_api(proc: subprocess.Popen, address: str, log_path: Path) -> None:
    """Until the dashboard answers (with 401: it is up and wants a token) or the head dies."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + HEAD_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ray start exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(f"{address}/api/version", timeout=2)
            return
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the job API at {address} did not come up in {HEAD_START_TIMEOUT_S} s:\n"
                f"{log_path.read_text()[-4000:]}")


def wait_for_job_success(client, job_id: str, timeout_s: float) -> None:
    """Until the job ends; fails the test with the job's logs unless it SUCCEEDED (a job still running at the
    timeout is stopped)."""
    from ray.job_submission import JobStatus

    deadline = time.monotonic() + timeout_s
    status = client.get_job_status(job_id)
    while not status.is_terminal() and time.monotonic() < deadline:
        time.sleep(1)
        status = client.get_job_status(job_id)
    if status != JobStatus.SUCCEEDED:
        logs = client.get_job_logs(job_id)
        if not status.is_terminal():
            client.stop_job(job_id)
        pytest.fail(f"job {job_id} ended {status} (timeout {timeout_s} s); logs:\n{logs[-6000:]}")
