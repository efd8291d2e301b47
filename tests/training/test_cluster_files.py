"""The cluster launch files parse, have the structure their tools need, and keep authentication on.

KubeRay manifests cannot be applied on this machine; they are checked as parsed YAML.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
SUBMIT = CLUSTER / "submit"
SECRET = {"name": "rlexec-ray-auth", "key": "auth_token"}


def _load(path: Path):
    return yaml.safe_load(path.read_text())


def _strings(node):
    """Every string value (and key) in a parsed YAML document: comments are not configuration."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _dicts(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dicts(item)


def _yaml_files() -> list[Path]:
    return sorted(CLUSTER.glob("*.yaml")) + sorted((CLUSTER / "kuberay").glob("*.yaml"))


def test_expected_files_exist():
    names = {p.relative_to(CLUSTER).as_posix() for p in _yaml_files()}
    assert {"ray-cluster.yaml", "kuberay/raycluster.yaml", "kuberay/rayjob.yaml"} <= names
    assert (CLUSTER / "README.md").is_file() and SUBMIT.is_file()


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: p.relative_to(CLUSTER).as_posix())
def test_no_file_disables_auth_or_opens_the_dashboard(path):
    doc = _load(path)
    for text in _strings(doc):
        compact = text.replace(" ", "").replace('"', "").replace("'", "")
        assert "RAY_AUTH_MODE=disabled" not in compact, f"{path.name}: disables auth: {text!r}"
        assert "0.0.0.0" not in text, f"{path.name}: binds to every interface: {text!r}"
        assert "LoadBalancer" not in text, f"{path.name}: exposes a Service publicly: {text!r}"
    for node in _dicts(doc):
        if node.get("name") == "RAY_AUTH_MODE":
            assert node.get("value") == "token", f"{path.name}: {node}"
        if "dashboard-host" in node:
            assert node["dashboard-host"] == "127.0.0.1", f"{path.name}: {node}"
        if "serviceType" in node:
            assert node["serviceType"] == "ClusterIP", f"{path.name}: {node}"


def test_submit_script_does_not_disable_auth():
    code = [line for line in SUBMIT.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(code)
    assert "RAY_AUTH_MODE=disabled" not in text and "0.0.0.0" not in text
    assert "export RAY_AUTH_MODE=token" in text


# --- the cluster launcher ------------------------------------------------------------------------

def test_launcher_config_validates_against_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load(CLUSTER / "ray-cluster.yaml")
    validate_config(config)
    validate_config(prepare_config(config))  # with the launcher's defaults filled in, as `ray up` does


def test_launcher_config_structure():
    config = _load(CLUSTER / "ray-cluster.yaml")
    assert config["provider"]["type"] in ("aws", "gcp")
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    workers = [name for name in types if name != config["head_node_type"]]
    assert workers and all(types[w].get("max_workers", 0) > 0 for w in workers)

    setup = config["setup_commands"]
    torch_at = next(i for i, c in enumerate(setup) if "torch==2.13.0" in c)
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup[torch_at]
    package_at = next(i for i, c in enumerate(setup) if "install -e ." in c)
    assert torch_at < package_at, "torch must be installed (CPU wheel) before the package pulls its own"
    assert any("ray[default" in c and "2.60.0" in c for c in setup), "the job server needs ray[default]"

    mounts = config["file_mounts"]
    assert mounts.get("~/.ray/auth_token"), "the auth token must reach every node"
    assert any(local == "." for local in mounts.values()), "the repository is mounted for `pip install -e .`"

    head = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head and "RAY_AUTH_MODE=token" in head
    assert "--dashboard-host=127.0.0.1" in head
    worker = " ".join(config["worker_start_ray_commands"])
    assert "ray start --address" in worker and "RAY_AUTH_MODE=token" in worker


# --- KubeRay -------------------------------------------------------------------------------------

def _ray_containers(cluster_spec: dict) -> list[dict]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def _assert_token_env(env: list[dict], where: str) -> None:
    by_name = {e["name"]: e for e in env}
    assert by_name.get("RAY_AUTH_MODE", {}).get("value") == "token", f"{where}: RAY_AUTH_MODE=token missing"
    token = by_name.get("RAY_AUTH_TOKEN", {})
    assert token.get("valueFrom", {}).get("secretKeyRef") == SECRET, f"{where}: RAY_AUTH_TOKEN not from the Secret"
    assert "value" not in token, f"{where}: a literal token in the manifest"


def _check_cluster_spec(spec: dict, where: str) -> None:
    import ray

    assert spec["rayVersion"] == ray.__version__
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert spec["workerGroupSpecs"], f"{where}: no worker group"
    for group in spec["workerGroupSpecs"]:
        assert {"groupName", "minReplicas", "maxReplicas", "rayStartParams", "template"} <= set(group)
        assert group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
    for container in _ray_containers(spec):
        assert container["image"].startswith(f"rayproject/ray:{ray.__version__}"), container["image"]
        _assert_token_env(container.get("env", []), f"{where} {container['name']}")
    if spec.get("enableInTreeAutoscaling"):
        _assert_token_env(spec["autoscalerOptions"]["env"], f"{where} autoscaler")


def test_raycluster_manifest():
    doc = _load(CLUSTER / "kuberay" / "raycluster.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    assert doc["metadata"]["name"]
    _check_cluster_spec(doc["spec"], "raycluster.yaml")


def test_rayjob_manifest():
    doc = _load(CLUSTER / "kuberay" / "rayjob.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    spec = doc["spec"]
    assert spec["entrypoint"].startswith("rlexec train configs/ppo.yaml")
    assert (REPO / "configs" / "ppo.yaml").is_file()
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["working_dir"]
    assert any(p.startswith("rlexec @ ") for p in runtime_env["pip"]["packages"]), "the rlexec command must be installed"
    assert "https://download.pytorch.org/whl/cpu" in runtime_env["pip"]["pip_install_options"]
    assert spec["shutdownAfterJobFinishes"] is True
    _check_cluster_spec(spec["rayClusterSpec"], "rayjob.yaml")
    submitter = spec["submitterPodTemplate"]["spec"]["containers"]
    assert submitter, "the submitter runs `ray job submit` and needs the token"
    for container in submitter:
        _assert_token_env(container.get("env", []), f"rayjob.yaml submitter {container['name']}")


# --- cluster/submit ------------------------------------------------------------------------------

def _run_submit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SUBMIT), *args], capture_output=True, text=True, timeout=30, env=env)


def test_submit_is_executable_bash():
    assert SUBMIT.stat().st_mode & stat.S_IXUSR, "cluster/submit must be executable"
    assert SUBMIT.read_text().startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in SUBMIT.read_text()
    subprocess.run(["bash", "-n", str(SUBMIT)], check=True)


def test_submit_without_args_prints_usage_and_fails():
    result = _run_submit()
    assert result.returncode != 0
    assert "usage: cluster/submit" in result.stderr
    helped = _run_submit("--help")
    assert helped.returncode == 0 and "usage: cluster/submit" in helped.stdout


def test_submit_refuses_a_gcs_address_and_a_missing_token(tmp_path):
    result = _run_submit("--address", "127.0.0.1:6379", "train", "configs/smoke.yaml")
    assert result.returncode == 2 and "dashboard URL" in result.stderr

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token there
    result = _run_submit("--address", "http://127.0.0.1:9", "train", "configs/smoke.yaml", env=env)
    assert result.returncode == 2 and "no Ray auth token" in result.stderr

    result = _run_submit("--address", "http://127.0.0.1:9", "--token-file", str(tmp_path / "missing"), "train", "x")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_smoke_config_is_tiny():
    from rlexec.training.spec import TrainSpec

    spec = TrainSpec.from_yaml(REPO / "configs" / "smoke.yaml")
    assert spec.algorithm == "ppo" and spec.stop == {"training_iterations": 2} and spec.checkpoint_frequency == 1
    assert spec.sections["environment"]["env_config"]["split"] == {"preset": "sample"}
    training = spec.sections["training"]
    assert (training["train_batch_size_per_learner"], training["minibatch_size"], training["num_epochs"]) == (256, 128, 1)
    assert spec.sections["env_runners"] == {"num_env_runners": 1, "num_envs_per_env_runner": 4}
