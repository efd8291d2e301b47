"""Fan-out for real: a head and a second node on loopback, token auth on, and a training job whose env
runners land on both nodes.

Two ``ray start --block`` processes under this test: the head (1 CPU, node address 127.0.0.2) and a
worker node joined with ``ray start --address`` (1 CPU, 127.0.0.3), ports of their own, token auth on.
Both addresses are loopback; 127.0.0.1 itself cannot serve: Ray 2.60 rewrites 127.0.0.1 and localhost
to the host's address unless multi-node clusters are switched off (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
which the one-node job test uses), and a worker node refuses to start with them off. Ray's servers
listen on all interfaces in multi-node mode: the token is what keeps other clients out. The job asks for two
env runners of one CPU each, so Ray must place one on each node; ``rlexec train`` records each env
runner's node in ``run.json`` and the test checks both node ids against the cluster's. About a minute
and a half on a 2-core machine; in the default run because it is the path a cluster user takes.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from loopback_cluster import (
    env_with,
    free_port,
    head_env,
    pids_using,
    private_auth,
    stop_head,
    wait_for_job_api,
    wait_for_job_success,
)

pytest.importorskip("aiohttp", reason="the Ray job server needs ray[default]")

REPO = Path(__file__).resolve().parents[2]
NODES_TIMEOUT_S = 90
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"  # loopback addresses that Ray does not rewrite
JOB_TIMEOUT_S = 240

TWO_RUNNER_CONFIG = """\
algorithm: ppo
name: two_nodes
seed: 0
stop: {training_iterations: 1}
checkpoint_frequency: 1
environment: {env: bar, env_config: {split: {preset: sample}, part: train}}
env_runners: {num_env_runners: 2, num_envs_per_env_runner: 2, num_cpus_per_env_runner: 1}
training: {train_batch_size_per_learner: 128, minibatch_size: 64, num_epochs: 1}
rl_module: {module: default, model_config: {fcnet_hiddens: [16, 16]}}
"""


def _start(cmd: list[str], env: dict[str, str], log_path: Path, cwd: str) -> subprocess.Popen:
    log = open(log_path, "w")
    try:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    finally:
        log.close()  # the child holds its own descriptor


def _alive_node_ids(gcs: str, env: dict[str, str]) -> list[str]:
    code = textwrap.dedent(f"""
        import json, ray
        ray.init(address={gcs!r}, logging_level="ERROR", log_to_driver=False)
        print("NODES", json.dumps(sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])))
    """)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    for line in result.stdout.splitlines():
        if line.startswith("NODES "):
            return json.loads(line[6:])
    return []


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    if shutil.which("ray") is None:
        pytest.skip("the `ray` command is not on PATH")
    temp_dir = tempfile.mkdtemp(prefix="rtn", dir="/tmp")  # short: Ray's unix socket paths are length-limited
    auth = private_auth(temp_dir)
    ports = {name: free_port() for name in ("gcs", "dashboard", "agent", "autoscaler_metrics", "dashboard_metrics",
                                            "w_agent", "client")}
    env = {**head_env(ports, auth), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}  # multi-node on
    client_port = [f"--ray-client-server-port={ports['client']}"] if importlib.util.find_spec("grpc") else []
    gcs = f"{HEAD_IP}:{ports['gcs']}"
    head = _start(["ray", "start", "--head", f"--node-ip-address={HEAD_IP}", f"--dashboard-host={HEAD_IP}",
                   f"--port={ports['gcs']}", f"--dashboard-port={ports['dashboard']}",
                   f"--dashboard-agent-listen-port={ports['agent']}", "--num-cpus=1",
                   *client_port, f"--temp-dir={temp_dir}", "--block"], env, Path(temp_dir) / "head.log", temp_dir)
    worker = None
    address = f"http://{HEAD_IP}:{ports['dashboard']}"
    try:
        wait_for_job_api(head, address, Path(temp_dir) / "head.log")
        worker = _start(["ray", "start", f"--address={gcs}", f"--node-ip-address={WORKER_IP}", "--num-cpus=1",
                         # the agent's HTTP port is the one fixed default (52365) that another head would share
                         f"--dashboard-agent-listen-port={ports['w_agent']}",
                         # a temp dir of its own: sharing the head's, the worker's runtime-env agent deleted
                         # the job's unpacked working_dir, the driver's cwd, on the head ("getcwd() failed")
                         f"--temp-dir={temp_dir}/w", "--block"],
                        env, Path(temp_dir) / "worker.log", temp_dir)
        deadline = time.monotonic() + NODES_TIMEOUT_S
        nodes: list[str] = []
        while len(nodes) < 2 and time.monotonic() < deadline:
            if worker.poll() is not None:
                pytest.fail(f"the worker node exited with {worker.returncode}:\n"
                            f"{(Path(temp_dir) / 'worker.log').read_text()[-4000:]}")
            nodes = _alive_node_ids(gcs, env_with({**auth, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}))
        if len(nodes) < 2:
            pytest.fail(f"the second node did not join in {NODES_TIMEOUT_S} s: {nodes}\n"
                        f"{(Path(temp_dir) / 'worker.log').read_text()[-4000:]}")
        yield {"address": address, "gcs": gcs, "auth": auth, "nodes": nodes,
               "token": Path(auth["RAY_AUTH_TOKEN_PATH"]).read_text()}
    finally:
        if worker is not None:
            stop_head(worker, temp_dir + "/__worker_never_matches__", gcs)  # SIGTERM: the node drains and leaves
        stop_head(head, temp_dir, gcs)
        left = [pid for pid in pids_using(temp_dir) if pid]
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"processes of the test cluster still running: {left}"


def test_training_job_runs_env_runners_on_both_nodes(two_nodes, tmp_path):
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(two_nodes["address"], headers={"Authorization": f"Bearer {two_nodes['token']}"})
    working_dir = tmp_path / "upload"   # what cluster/submit uploads: the files git tracks
    subprocess.run([sys.executable, str(REPO / "cluster" / "stage.py"), str(REPO), str(working_dir)], check=True,
                   capture_output=True, timeout=60)
    (working_dir / "two_nodes.yaml").write_text(TWO_RUNNER_CONFIG)
    out = tmp_path / "out"
    job_id = client.submit_job(entrypoint=f"rlexec train two_nodes.yaml --out {out}",
                               runtime_env={"working_dir": str(working_dir)})
    wait_for_job_success(client, job_id, JOB_TIMEOUT_S)

    (run_dir,) = sorted((out / "train" / "two_nodes").iterdir())
    record = json.loads((run_dir / "run.json").read_text())
    assert two_nodes["gcs"] in record["ray"], record["ray"]
    placed = {runner["node_id"] for runner in record["env_runners"]}
    assert {runner["node_ip"] for runner in record["env_runners"]} == {HEAD_IP, WORKER_IP}
    assert len(record["env_runners"]) == 2
    assert placed == set(two_nodes["nodes"]), (placed, two_nodes["nodes"])
    assert json.loads((run_dir / "summary.json").read_text())["iterations"] == 1
