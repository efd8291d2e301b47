"""The cluster launch files parse, have the structure their tools need, keep authentication on, expose
nothing, install from the right places at pinned versions, and upload only what git tracks.

KubeRay manifests cannot be applied on this machine; they are checked as parsed YAML.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
SUBMIT = CLUSTER / "submit"
STAGE = CLUSTER / "stage.py"
CONSTRAINTS = CLUSTER / "constraints.txt"
DOCKERFILE = CLUSTER / "Dockerfile"
SECRET = {"name": "rlexec-ray-auth", "key": "auth_token"}

PYPI = "https://pypi.org/simple"
PYTORCH_HOST = "download.pytorch.org"
TORCH_WHEELS_PAGE = "https://download.pytorch.org/whl/cpu/torch/"  # PyTorch's page listing torch wheels only
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DASHBOARD_PORT = 8265
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
UNPINNED_MARKER = "UNPINNED-DIGEST"
CLIENT_LABELS = {"rlexec.io/ray-client": "true"}       # pods admitted to a head's job API
OPERATOR_LABELS = {"app.kubernetes.io/name": "kuberay-operator"}


def _documents(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _load(path: Path):
    docs = _documents(path)
    assert len(docs) == 1, f"{path.name}: expected one YAML document, found {len(docs)}"
    return docs[0]


def _of_kind(path: Path, kind: str) -> list[dict]:
    return [doc for doc in _documents(path) if doc.get("kind") == kind]


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
    return sorted(CLUSTER.rglob("*.yaml")) + sorted(CLUSTER.rglob("*.yml"))


def _kuberay_files() -> list[Path]:
    return [p for p in _yaml_files() if any(d.get("apiVersion", "").startswith("ray.io/") for d in _documents(p))]


def _text_files() -> list[Path]:
    return sorted(p for p in CLUSTER.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_expected_files_exist():
    names = {p.relative_to(CLUSTER).as_posix() for p in _yaml_files()}
    assert {"ray-cluster.yaml", "kuberay/raycluster.yaml", "kuberay/rayjob.yaml"} <= names
    for path in (CLUSTER / "README.md", SUBMIT, STAGE, CONSTRAINTS, DOCKERFILE):
        assert path.is_file(), path


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: p.relative_to(CLUSTER).as_posix())
def test_no_file_disables_auth_or_exposes_a_service(path):
    for doc in _documents(path):
        for text in _strings(doc):
            compact = text.replace(" ", "").replace('"', "").replace("'", "")
            assert "RAY_AUTH_MODE=disabled" not in compact, f"{path.name}: disables auth: {text!r}"
            assert "LoadBalancer" not in text and "NodePort" not in text, f"{path.name}: exposes a Service: {text!r}"
        for node in _dicts(doc):
            if node.get("name") == "RAY_AUTH_MODE":
                assert node.get("value") == "token", f"{path.name}: {node}"
            if "serviceType" in node:
                assert node["serviceType"] == "ClusterIP", f"{path.name}: {node}"
        assert doc.get("kind") != "Ingress", f"{path.name}: an Ingress"


def test_launcher_and_submit_bind_nothing_to_every_interface():
    launcher = " ".join(_strings(_load(CLUSTER / "ray-cluster.yaml")))
    submit = "\n".join(line for line in SUBMIT.read_text().splitlines() if not line.lstrip().startswith("#"))
    for name, text in (("ray-cluster.yaml", launcher), ("submit", submit)):
        assert "0.0.0.0" not in text, name
        assert "RAY_AUTH_MODE=disabled" not in text, name
    assert "export RAY_AUTH_MODE=token" in submit


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

    installs = [_parse_pip_install(args) for c in config["setup_commands"] for args in _pip_install_args(c)]
    torch_at = next(i for i, spec in enumerate(installs) if spec.index_url and PYTORCH_HOST in spec.index_url)
    package_at = next(i for i, spec in enumerate(installs) if "." in spec.editables)
    assert torch_at < package_at, "torch (CPU build) must be in place before the package's install would pull one"

    mounts = config["file_mounts"]
    assert mounts.get("~/.ray/auth_token"), "the auth token must reach every node"
    # an explicit include list: a whole-checkout mount would carry untracked files (a stray .env)
    assert all(local not in (".", "./") for local in mounts.values()), mounts
    for remote, local in mounts.items():
        if remote.startswith("~/rlexec/"):
            assert (REPO / local).exists(), local
            assert remote == f"~/rlexec/{local}", (remote, local)
    assert {"pyproject.toml", "rlexec", "cluster/constraints.txt"} <= set(mounts.values())

    head = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head and "RAY_AUTH_MODE=token" in head
    assert "--dashboard-host=127.0.0.1" in head
    worker = " ".join(config["worker_start_ray_commands"])
    assert "ray start --address" in worker and "RAY_AUTH_MODE=token" in worker


# --- KubeRay -------------------------------------------------------------------------------------

def _cluster_specs(doc: dict) -> list[dict]:
    """The RayCluster specs a KubeRay document creates (RayCluster, RayJob, RayService)."""
    spec = doc.get("spec", {})
    found = [spec] if doc.get("kind") == "RayCluster" else []
    found += [spec[key] for key in ("rayClusterSpec", "rayClusterConfig") if isinstance(spec.get(key), dict)]
    return found


def _ray_containers(cluster_spec: dict) -> list[dict]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def _pod_labels(group: dict) -> dict:
    return group["template"].get("metadata", {}).get("labels", {})


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


def _selects(selector: dict, labels: dict) -> bool:
    """A non-empty matchLabels selector that the labels satisfy (an empty one would select every pod)."""
    match = selector.get("matchLabels", {})
    return bool(match) and set(selector) <= {"matchLabels"} and all(labels.get(k) == v for k, v in match.items())


def _admits_port(rule: dict, port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") in (port, None) for p in ports)  # no ports: every port


def _policies_for(path: Path, labels: dict) -> list[dict]:
    return [p for p in _of_kind(path, "NetworkPolicy")
            if _selects(p["spec"]["podSelector"], labels) and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]


@dataclass
class _Peers:
    cluster: dict            # labels every pod of the Ray cluster has
    others: list = field(default_factory=list)

    def kind(self, peer: dict) -> str:
        """Which admitted group a NetworkPolicy peer is: "cluster", "client", "operator" or "other"."""
        if set(peer) == {"podSelector"} and _selects(peer["podSelector"], self.cluster):
            return "cluster"
        if set(peer) == {"podSelector"} and peer["podSelector"].get("matchLabels") == CLIENT_LABELS:
            return "client"   # this namespace's pods labelled as clients
        if (set(peer) == {"namespaceSelector", "podSelector"}
                and peer["podSelector"].get("matchLabels") == OPERATOR_LABELS
                and list(peer["namespaceSelector"].get("matchLabels", {})) == ["kubernetes.io/metadata.name"]):
            return "operator"  # the KubeRay operator's pods in one named namespace
        return "other"


def _head_and_workers(spec: dict) -> tuple[dict, list[dict]]:
    return _pod_labels(spec["headGroupSpec"]), [_pod_labels(g) for g in spec["workerGroupSpecs"]]


def _kuberay_heads() -> list[tuple[Path, dict, dict]]:
    heads = [(path, doc, spec) for path in _kuberay_files() for doc in _documents(path) for spec in _cluster_specs(doc)]
    # no head escapes the check: every headGroupSpec in the files belongs to a spec found above
    found = sum(1 for path in _yaml_files() for doc in _documents(path) for d in _dicts(doc) if "headGroupSpec" in d)
    assert found == len(heads) >= 2, (found, len(heads))
    return heads


def test_every_kuberay_head_names_a_guarded_dashboard_host():
    """KubeRay adds --dashboard-host=0.0.0.0 when rayStartParams has no dashboard-host: every head names one,
    loopback unless a NetworkPolicy of the same file admits to its job API only the cluster's own pods,
    client-labelled pods of its namespace and the KubeRay operator."""
    for path, doc, spec in _kuberay_heads():
        where = f"{path.relative_to(CLUSTER)} {doc['kind']}"
        params = spec["headGroupSpec"].get("rayStartParams") or {}
        assert "dashboard-host" in params, f"{where}: no dashboard-host, so KubeRay binds the job API to 0.0.0.0"
        host = str(params["dashboard-host"])
        if host in LOOPBACK:
            continue
        head_labels, worker_labels = _head_and_workers(spec)
        policies = _policies_for(path, head_labels)
        assert policies, f"{where}: dashboard-host {host} and no NetworkPolicy selects the head"
        peers = _Peers(cluster=_common_labels([head_labels, *worker_labels]))
        admitted = {peers.kind(peer) for p in policies for rule in p["spec"].get("ingress", [])
                    if _admits_port(rule, DASHBOARD_PORT) for peer in (rule.get("from") or [{"everyone": True}])}
        assert admitted and admitted <= {"cluster", "client", "operator"}, f"{where}: job API open to {admitted}"


def _common_labels(label_sets: list[dict]) -> dict:
    common = dict(label_sets[0])
    for labels in label_sets[1:]:
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return common


def test_network_policies_guard_every_kuberay_cluster():
    """Each Ray cluster's pods accept its own pods; its head's job API also the clients (and, for a RayJob,
    the operator); no rule admits anyone else to any port."""
    for path, doc, spec in _kuberay_heads():
        where = f"{path.relative_to(CLUSTER)} {doc['kind']}"
        head_labels, worker_labels = _head_and_workers(spec)
        cluster_labels = _common_labels([head_labels, *worker_labels])
        assert cluster_labels, f"{where}: head and worker pods share no label to select them by"
        peers = _Peers(cluster=cluster_labels)
        for labels, role in [(head_labels, "head"), *((w, "worker") for w in worker_labels)]:
            policies = _policies_for(path, labels)
            assert policies, f"{where}: no NetworkPolicy selects the {role} pods {labels}"
            rules = [rule for p in policies for rule in p["spec"].get("ingress", [])]
            for rule in rules:
                assert rule.get("from"), f"{where}: a rule admitting everyone to the {role}: {rule}"
                kinds = {peers.kind(peer) for peer in rule["from"]}
                assert "other" not in kinds, f"{where}: {role} admits {rule['from']}"
                if kinds & {"client", "operator"}:
                    assert role == "head" and rule.get("ports"), f"{where}: clients admitted to {role} beyond named ports"
            assert any(peers.kind(peer) == "cluster" and not rule.get("ports") for rule in rules for peer in rule["from"]), \
                f"{where}: the {role} does not admit the cluster's own pods"
        head_rules = [rule for p in _policies_for(path, head_labels) for rule in p["spec"]["ingress"]]
        assert any(_admits_port(rule, DASHBOARD_PORT) and peers.kind(peer) == "client"
                   for rule in head_rules for peer in rule["from"]), f"{where}: no client may reach the job API"
        if doc["kind"] == "RayJob":
            submitter = doc["spec"]["submitterPodTemplate"].get("metadata", {}).get("labels", {})
            assert all(submitter.get(k) == v for k, v in CLIENT_LABELS.items()), \
                f"{where}: the submitter pod lacks {CLIENT_LABELS}: it could not reach the job API"
            if str(spec["headGroupSpec"]["rayStartParams"]["dashboard-host"]) not in LOOPBACK:
                assert any(_admits_port(rule, DASHBOARD_PORT) and peers.kind(peer) == "operator"
                           for rule in head_rules for peer in rule["from"]), \
                    f"{where}: the operator cannot read the job's status"


def test_raycluster_manifest():
    path = CLUSTER / "kuberay" / "raycluster.yaml"
    (doc,) = _of_kind(path, "RayCluster")
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["metadata"]["name"]
    _check_cluster_spec(doc["spec"], "raycluster.yaml")
    # nothing in Kubernetes needs this cluster's job API: it stays on loopback (kubectl port-forward)
    assert doc["spec"]["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"


def test_rayjob_manifest():
    path = CLUSTER / "kuberay" / "rayjob.yaml"
    (doc,) = _of_kind(path, "RayJob")
    assert doc["apiVersion"] == "ray.io/v1"
    spec = doc["spec"]
    assert spec["entrypoint"].startswith("rlexec train configs/ppo.yaml")
    assert (REPO / "configs" / "ppo.yaml").is_file()
    # KubeRay's submitter hands the runtime env to `ray job submit` inside a bash command line in double
    # quotes: a $ would be expanded there (to nothing) before Ray or pip see it
    assert "$" not in spec["runtimeEnvYAML"]
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["working_dir"]
    assert any(p.startswith("rlexec @ ") for p in runtime_env["pip"]["packages"]), "the rlexec command must be installed"
    assert spec["shutdownAfterJobFinishes"] is True
    _check_cluster_spec(spec["rayClusterSpec"], "rayjob.yaml")
    submitter = spec["submitterPodTemplate"]["spec"]["containers"]
    assert submitter, "the submitter runs `ray job submit` and needs the token"
    for container in submitter:
        _assert_token_env(container.get("env", []), f"rayjob.yaml submitter {container['name']}")


# --- where packages come from --------------------------------------------------------------------

_VALUED_OPTIONS = {"-i": "index_url", "--index-url": "index_url", "--extra-index-url": "extra_index_urls",
                   "-f": "find_links", "--find-links": "find_links", "-c": "constraints", "--constraint": "constraints",
                   "-e": "editables", "--editable": "editables", "-r": "requirement_files",
                   "--requirement": "requirement_files"}


@dataclass
class _PipInstall:
    index_url: str | None = None
    extra_index_urls: list = field(default_factory=list)
    find_links: list = field(default_factory=list)
    constraints: list = field(default_factory=list)
    editables: list = field(default_factory=list)
    requirement_files: list = field(default_factory=list)
    requirements: list = field(default_factory=list)
    no_deps: bool = False


def _parse_pip_install(args: list[str]) -> _PipInstall:
    spec = _PipInstall()
    words = iter(args)
    for word in words:
        name, eq, inline = word.partition("=")
        if name in _VALUED_OPTIONS:
            value = inline if eq else next(words)
            if _VALUED_OPTIONS[name] == "index_url":
                spec.index_url = value
            else:
                getattr(spec, _VALUED_OPTIONS[name]).append(value)
        elif word == "--no-deps":
            spec.no_deps = True
        elif not word.startswith("-"):
            spec.requirements.append(word)
    return spec


def _pip_install_args(command: str) -> list[list[str]]:
    """The arguments after each `pip install` in a shell command line."""
    found = []
    for part in re.split(r"&&|\|\||;", command.replace("\\\n", " ")):
        words = shlex.split(part)
        for i, word in enumerate(words[:-1]):
            if (word in ("pip", "pip3") or word.endswith("/pip")) and words[i + 1] == "install":
                found.append(words[i + 2:])
    return found


def _runtime_env_pip_args(pip: dict) -> list[str]:
    """What Ray runs for a runtime env's `pip`: `pip install -r <packages, one a line> <options>`."""
    args = [word for line in pip["packages"] for word in (shlex.split(line) if line.startswith("-") else [line])]
    return args + list(pip.get("pip_install_options", []))


def _submit_dry_run(*args: str, cwd: Path | None = None, env: dict | None = None,
                    script: Path = SUBMIT) -> subprocess.CompletedProcess:
    return subprocess.run([str(script), "--dry-run", "--address", "http://127.0.0.1:9", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def _token_env(tmp_path: Path) -> dict:
    token = tmp_path / "token"
    token.write_text("0123456789abcdef" * 4)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN",)}
    return {**env, "RAY_AUTH_TOKEN_PATH": str(token)}


def _submitted_command(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    return shlex.split(lines[lines.index("dry run; would run:") + 1])


def _all_pip_installs(tmp_path: Path) -> list[tuple[str, _PipInstall]]:
    installs = []
    launcher = _load(CLUSTER / "ray-cluster.yaml")
    for key in ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands"):
        for command in launcher.get(key) or []:
            installs += [(f"ray-cluster.yaml {key}", _parse_pip_install(a)) for a in _pip_install_args(command)]
    runs = re.findall(r"^RUN\s+(.*?)(?<!\\)$", DOCKERFILE.read_text(), flags=re.M | re.S)
    installs += [("Dockerfile", _parse_pip_install(a)) for run in runs for a in _pip_install_args(run)]
    for path in _kuberay_files():
        for doc in _documents(path):
            if isinstance(doc.get("spec", {}).get("runtimeEnvYAML"), str):
                pip = yaml.safe_load(doc["spec"]["runtimeEnvYAML"]).get("pip")
                if pip:
                    installs.append((f"{path.name} runtimeEnvYAML", _parse_pip_install(_runtime_env_pip_args(pip))))
    command = _submitted_command(_submit_dry_run("--install-deps", "--", "--help", env=_token_env(tmp_path)))
    runtime_env = json.loads(command[command.index("--runtime-env-json") + 1])
    installs.append(("cluster/submit --install-deps", _parse_pip_install(_runtime_env_pip_args(runtime_env["pip"]))))
    return installs


def _constraint_pins() -> dict[str, str]:
    pins = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) and version and " " not in version, \
            f"constraints.txt line {number}: not `name==version`: {line!r}"
        key = canonicalize_name(name)
        assert key not in pins, f"constraints.txt line {number}: {name} pinned twice"
        pins[key] = version
    return pins


def test_no_install_names_a_second_index():
    """An extra index lets a package of the same name on either index be taken: dependency confusion."""
    for path in _text_files():
        text = path.read_text(errors="replace").lower()
        for banned in ("extra-index-url", "extra_index_url"):
            assert banned not in text, f"{path.relative_to(REPO)} mentions {banned}"


def test_torch_alone_comes_from_pytorch_and_the_rest_from_pypi_under_constraints(tmp_path):
    pins = _constraint_pins()
    torch_pin = Version(pins["torch"])
    assert torch_pin.local == "cpu", "a +cpu pin, which PyPI does not carry, keeps torch off PyPI (its CUDA build)"
    installs = _all_pip_installs(tmp_path)
    wheres = {where for where, _ in installs}
    assert {"Dockerfile", "rayjob.yaml runtimeEnvYAML", "cluster/submit --install-deps"} <= wheres, wheres
    assert any(w.startswith("ray-cluster.yaml") for w in wheres), wheres
    torch_only = 0
    for where, spec in installs:
        assert not spec.extra_index_urls, f"{where}: --extra-index-url"
        assert not spec.requirement_files, f"{where}: an unchecked requirements file"
        if spec.index_url and PYTORCH_HOST in spec.index_url:
            # PyTorch's index serves torch alone: without --no-deps torch's dependencies would come from it too
            assert spec.no_deps, f"{where}: installs from PyTorch's index without --no-deps"
            assert not spec.editables and not spec.find_links, where
            (requirement,) = [Requirement(r) for r in spec.requirements]
            assert canonicalize_name(requirement.name) == "torch", f"{where}: {requirement} from PyTorch's index"
            assert str(requirement.specifier) == f"=={torch_pin}", f"{where}: {requirement} is not the pinned torch"
            torch_only += 1
            continue
        assert spec.index_url == PYPI, f"{where}: index {spec.index_url!r}: name PyPI explicitly"
        assert all(link == TORCH_WHEELS_PAGE for link in spec.find_links), f"{where}: find-links {spec.find_links}"
        assert spec.constraints and all(c.endswith("cluster/constraints.txt") for c in spec.constraints), \
            f"{where}: no -c cluster/constraints.txt"
        for text in spec.requirements:
            requirement = Requirement(text)
            if requirement.url:  # the project itself, as a zip of the repository
                assert canonicalize_name(requirement.name) == "rlexec", f"{where}: {text}"
                continue
            name = canonicalize_name(requirement.name)
            assert name in pins or str(requirement.specifier).startswith("=="), f"{where}: {text} is not pinned"
            if name in pins:
                assert requirement.specifier.contains(pins[name], prereleases=True), \
                    f"{where}: {text} contradicts constraints.txt ({pins[name]})"
        for editable in spec.editables:
            assert editable in (".", "/home/ray/rlexec"), f"{where}: -e {editable}"
    assert torch_only >= 2, "the launcher and the Dockerfile install torch on its own"


def test_constraints_pin_what_pyproject_asks_for():
    import tomllib

    pins = _constraint_pins()
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for text in dependencies:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt: no pin for {requirement.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt: {name}=={pins[name]} does not meet pyproject.toml's {text}"


def _installed_closure(roots: list[str]) -> dict[str, str]:
    """name -> installed version for the roots and everything they require here (markers and extras applied)."""
    found: dict[str, set] = {}
    pending = [Requirement(r) for r in roots]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = set(requirement.extras)
        if name in found and extras <= found[name]:
            continue
        found[name] = found.get(name, set()) | extras
        dist = metadata.distribution(requirement.name)
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker and not any(sub.marker.evaluate({"extra": e}) for e in found[name] or {""}):
                continue
            pending.append(sub)
    return {name: metadata.version(name) for name in found}


def test_constraints_cover_the_dependency_closure():
    """Every package an install here pulls in is pinned: a dependency left out would float to PyPI's newest."""
    import tomllib

    roots = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"] + ["boto3"]
    try:
        closure = _installed_closure(roots)
    except metadata.PackageNotFoundError as exc:
        pytest.skip(f"not every dependency is installed here ({exc}): the closure cannot be read")
    pins = _constraint_pins()
    missing = sorted(f"{name}=={version}" for name, version in closure.items() if name not in pins)
    assert not missing, "constraints.txt lacks:\n" + "\n".join(missing)


def test_every_image_is_pinned_by_digest_or_marked():
    """A tag can be moved to other content; until a digest is filled in, the reference carries the marker."""
    checked = 0
    for path in _yaml_files():
        parsed = [d["image"] for doc in _documents(path) for d in _dicts(doc) if isinstance(d.get("image"), str)]
        lines = [line for line in path.read_text().splitlines() if re.match(r"\s*(-\s+)?image:\s", line)]
        assert len(lines) == len(parsed), f"{path.name}: an image the line check would miss"
        for line in lines:
            image = line.split("image:", 1)[1].split("#", 1)[0].strip().strip("'\"")
            assert DIGEST.search(image) or UNPINNED_MARKER in line, f"{path.name}: {line.strip()}"
            checked += 1
    dockerfile = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(dockerfile):
        if line.startswith("FROM "):
            image = line.split()[1]
            assert DIGEST.search(image) or UNPINNED_MARKER in "\n".join(dockerfile[max(0, number - 3):number]), line
            checked += 1
    assert checked >= 6


# --- what cluster/submit uploads -----------------------------------------------------------------

def _git_repo(root: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "tracked.py").write_text("print('tracked')\n")
    (root / "pkg").mkdir()
    (root / "pkg" / "data.txt").write_text("data\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "gone.txt").write_text("deleted after git add\n")
    (root / "outside").symlink_to("/etc/hostname")
    (root / "inside").symlink_to("tracked.py")
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    (root / "gone.txt").unlink()
    (root / ".env").write_text("SECRET=1\n")               # untracked and not ignored: must stay here
    (root / "pkg" / "scratch.csv").write_text("1,2\n")     # likewise
    (root / "tracked.py").write_text("print('edited, not committed')\n")
    return root


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_stage_copies_tracked_files_only(tmp_path):
    repo = _git_repo(tmp_path / "repo")
    dest = tmp_path / "upload"
    result = subprocess.run([sys.executable, str(STAGE), str(repo), str(dest)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert _files_under(dest) == {"tracked.py", "pkg/data.txt", "run.sh", "inside"}
    assert not (dest / ".env").exists() and not (dest / "pkg" / "scratch.csv").exists()
    assert (dest / "tracked.py").read_text() == "print('edited, not committed')\n"   # the working-tree content
    assert (dest / "run.sh").stat().st_mode & stat.S_IXUSR
    assert os.readlink(dest / "inside") == "tracked.py"
    assert "staged 4 files" in result.stdout
    assert "gone.txt: deleted" in result.stdout and "outside: a link to" in result.stdout


def test_stage_refuses_outside_a_checkout_and_into_a_used_folder(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".env").write_text("SECRET=1\n")
    result = subprocess.run([sys.executable, str(STAGE), str(plain), str(tmp_path / "upload")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "is not a git checkout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "upload").exists()

    repo = _git_repo(tmp_path / "repo")
    used = tmp_path / "used"
    used.mkdir()
    (used / "old").write_text("")
    result = subprocess.run([sys.executable, str(STAGE), str(repo), str(used)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "is not empty" in result.stderr


def test_submit_uploads_the_staged_copy_and_cleans_it_up(tmp_path):
    env = {**_token_env(tmp_path), "TMPDIR": str(tmp_path)}
    result = _submit_dry_run("--", "--help", env=env)
    command = _submitted_command(result)
    working_dir = Path(command[command.index("--working-dir") + 1])
    assert working_dir.parent.parent == tmp_path and working_dir != REPO
    assert not working_dir.exists(), "the staged copy outlives the script"
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True)
    present = [p for p in tracked.stdout.splitlines() if (REPO / p).is_file()]
    assert f"staged {len(present)} files" in result.stdout
    assert command[-2:] == ["rlexec", "--help"] and json.loads(command[command.index("--runtime-env-json") + 1]) == {}


def test_submit_refuses_outside_a_git_checkout(tmp_path):
    copy = tmp_path / "not-a-checkout"
    (copy / "cluster").mkdir(parents=True)
    for source in (SUBMIT, STAGE):
        shutil.copy2(source, copy / "cluster" / source.name)
    shutil.copy2(REPO / "pyproject.toml", copy / "pyproject.toml")
    (copy / ".env").write_text("SECRET=1\n")
    result = subprocess.run([str(copy / "cluster" / "submit"), "--address", "http://127.0.0.1:9", "--", "--help"],
                            capture_output=True, text=True, timeout=120, env=_token_env(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not a git checkout" in result.stderr and "nothing submitted" in result.stderr


# --- cluster/submit's arguments ------------------------------------------------------------------

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
