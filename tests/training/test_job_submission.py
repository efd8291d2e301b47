"""Ray jobs on a real (single-node, loopback) Ray cluster with token authentication.

A module fixture starts ``ray start --head --block`` under this process, bound to 127.0.0.1, with its
own ports, temp dir, auth token and HOME, and stops it in its finalizer (by the id of the process it
started), even when a test fails. The user's home is never read or written: Ray writes a new token to
``~/.ray/auth_token`` when it finds none, so the head, its clients and ``cluster/submit`` run with a
token file of their own (RAY_AUTH_TOKEN_PATH) and a temporary HOME, and while this module runs HOME
points at an empty stand-in that the last test checks is still empty. On the head:

* clients without the token, or with a wrong one, are refused (default run);
* ``cluster/submit`` submits a cheap job (``rlexec --help``) and it succeeds (default run);
* ``rlexec train configs/smoke.yaml`` submitted through the Job Submission API trains and writes its
  checkpoint and ``run.json`` (about a minute on a 2-core machine; kept in the default run because
  it is the path ``cluster/submit`` users take).

Nothing here calls ``ray.init``: the test session may hold its own local Ray.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from loopback_cluster import (
    wait_for_job_success,
    cmdline,
    env_with,
    file_state,
    free_port,
    head_env,
    pids_using,
    private_auth,
    stop_head,
    wait_for_job_api,
)

pytest.importorskip("aiohttp", reason="the Ray job server needs ray[default]")

REPO = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 180
# resolved at import, before any fixture here moves HOME
REAL_HOME_TOKEN = Path.home() / ".ray" / "auth_token"


@pytest.fixture(scope="module")
def user_home(tmp_path_factory):
    """An empty stand-in for the user's home while this module runs, as for a user with no Ray token
    configured: nothing here may write into it, nor touch the real ``~/.ray/auth_token``."""
    home = tmp_path_factory.mktemp("user-home")
    real_token_before = file_state(REAL_HOME_TOKEN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
            patch.delenv(name, raising=False)
        yield {"home": home, "real_token_before": real_token_before}


@pytest.fixture(scope="module")
def ray_head(user_home):
    """A Ray head bound to loopback with token auth; yields its addresses and the environment its clients
    need (token file, HOME); always stopped afterwards."""
    if shutil.which("ray") is None:
        pytest.skip("the `ray` command is not on PATH")
    temp_dir = tempfile.mkdtemp(prefix="rjs", dir="/tmp")  # short: Ray's unix socket paths are length-limited
    auth = private_auth(temp_dir)
    ports = {name: free_port() for name in ("gcs", "dashboard", "agent", "autoscaler_metrics", "dashboard_metrics",
                                             "client")}
    cmd = ["ray", "start", "--head", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
           f"--port={ports['gcs']}", f"--dashboard-port={ports['dashboard']}",
           f"--dashboard-agent-listen-port={ports['agent']}", "--num-cpus=2", f"--temp-dir={temp_dir}", "--block"]
    if importlib.util.find_spec("grpc") is not None:  # Ray Client installed: keep it off the shared 10001
        cmd.insert(-1, f"--ray-client-server-port={ports['client']}")
    log_path = Path(temp_dir) / "ray_start.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, env=head_env(ports, auth), stdout=log, stderr=subprocess.STDOUT, cwd=temp_dir,
                            start_new_session=True)
    address = f"http://127.0.0.1:{ports['dashboard']}"
    try:
        wait_for_job_api(proc, address, log_path)
        yield {"address": address, "gcs": f"127.0.0.1:{ports['gcs']}", "temp_dir": temp_dir, "auth": auth,
               "token": Path(auth["RAY_AUTH_TOKEN_PATH"]).read_text()}
    finally:
        stop_head(proc, temp_dir, f"127.0.0.1:{ports['gcs']}")
        log.close()
        left = [pid for pid in pids_using(temp_dir) if "raylet" in cmdline(pid)]
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"raylet(s) of the test head still running: {left}"


def _client(ray_head: dict):
    """A JobSubmissionClient that sends the test head's token itself: Ray's own loader in this process
    may hold another token (this process's Ray, if any) and reads the auth mode only once."""
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(ray_head["address"], headers={"Authorization": f"Bearer {ray_head['token']}"})


def _submit_in_subprocess(address: str, env: dict[str, str]) -> subprocess.Popen:
    """A submission from a fresh process, so its auth settings cannot leak into this one."""
    code = textwrap.dedent(f"""
        from ray.job_submission import JobSubmissionClient
        client = JobSubmissionClient({address!r})
        print("SUBMITTED", client.submit_job(entrypoint="echo should-not-run"))
    """)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_test_session_gives_ray_a_token_outside_the_home(tmp_path):
    """tests/conftest.py hands the session's Ray processes a token file: ``ray.init()`` writes a new
    ``~/.ray/auth_token`` exactly when Ray's loader finds no token, which must not happen with an empty HOME."""
    code = ("from ray._raylet import AuthenticationTokenLoader as L; "
            "print(L.instance().has_token(ignore_auth_mode=True))")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "HOME": str(tmp_path)},
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "True", result.stdout + result.stderr[-2000:]


def test_submission_without_token_is_refused(ray_head):
    no_token = {**ray_head["auth"], "RAY_AUTH_TOKEN_PATH": None}
    clients = {  # both at once: each pays for importing Ray
        "no token": _submit_in_subprocess(ray_head["address"], env_with({**no_token, "RAY_AUTH_MODE": "disabled"})),
        "wrong token": _submit_in_subprocess(ray_head["address"], {**env_with(no_token),
                                                                   "RAY_AUTH_TOKEN": "not-the-token"}),
    }
    expected = {"no token": "Missing authentication token", "wrong token": "Invalid authentication token"}
    for name, proc in clients.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode != 0 and "SUBMITTED" not in out, f"{name}: {out}{err[-2000:]}"
        assert expected[name] in err, f"{name}: {err[-2000:]}"


def test_cluster_submit_script_reaches_the_cluster(ray_head):
    """``cluster/submit`` sets token mode itself: a cheap job (``rlexec --help``) goes through."""
    env = env_with({**ray_head["auth"], "RAY_AUTH_MODE": None})
    result = subprocess.run([str(REPO / "cluster" / "submit"), "--address", ray_head["address"], "--", "--help"],
                            env=env, capture_output=True, text=True, timeout=180, cwd=tempfile.gettempdir())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "succeeded" in output, output[-4000:]
    assert "ray job logs --address" in result.stdout
    assert "usage: rlexec" in output, output[-4000:]   # the job ran `rlexec --help` on the cluster


def test_train_job_on_token_auth_cluster(ray_head, tmp_path):

    client = _client(ray_head)
    out = tmp_path / "out"
    working_dir = tmp_path / "upload"   # what cluster/submit uploads: the files git tracks
    subprocess.run([sys.executable, str(REPO / "cluster" / "stage.py"), str(REPO), str(working_dir)], check=True,
                   capture_output=True, timeout=60)
    job_id = client.submit_job(
        entrypoint=f"rlexec train configs/smoke.yaml --out {out}",
        runtime_env={"working_dir": str(working_dir)},
    )
    wait_for_job_success(client, job_id, JOB_TIMEOUT_S)

    runs = sorted((out / "train" / "smoke").iterdir())
    assert len(runs) == 1, runs
    run_dir = runs[0]
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    assert latest["iteration"] == 2
    assert (run_dir / "checkpoints" / latest["path"] / "rllib_checkpoint.json").exists()
    record = json.loads((run_dir / "run.json").read_text())
    assert ray_head["gcs"] in record["ray"], record["ray"]   # the job attached to this cluster
    assert len((run_dir / "progress.jsonl").read_text().splitlines()) == 2


def test_nothing_written_into_the_users_home(ray_head, user_home):
    """Last in this module: the head, its clients, cluster/submit and the jobs left the stand-in home
    empty, and the real ``~/.ray/auth_token`` (if any) as it was."""
    assert not any(user_home["home"].iterdir()), sorted(user_home["home"].rglob("*"))
    assert file_state(REAL_HOME_TOKEN) == user_home["real_token_before"]
