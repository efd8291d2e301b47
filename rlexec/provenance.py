"""What every run writes next to its results: config, seed, package versions, git commit, command."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

PACKAGES = ("rlexec", "numpy", "pyarrow", "gymnasium", "numba", "torch", "ray", "matplotlib")


def package_versions() -> dict[str, str]:
    """Installed versions read from package metadata (no heavy imports of torch or ray)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(path: str | os.PathLike | None = None) -> str:
    """The commit of the repository holding ``path`` (default: the rlexec source), ``+dirty`` if modified."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


def config_hash(config: dict) -> str:
    """Short content hash of a JSON-serialisable config: the same config gets the same id."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def run_record(config: dict, seed: int) -> dict:
    return {
        "config": config,
        "seed": seed,
        "config_hash": config_hash(config),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "command": sys.argv,
        "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
    }


# Run and sweep names become folder names under the output root: plain names only, never a path.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
PLAIN_NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, no '..'"


def is_plain_name(name: object) -> bool:
    return isinstance(name, str) and PLAIN_NAME.fullmatch(name) is not None and ".." not in name


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path`` resolved, after checking that it lies strictly inside ``root`` (links resolved too).

    Called before rlexec writes or deletes run outputs, so that no name can send it elsewhere.
    """
    from rlexec.errors import ConfigError

    root_resolved, resolved = Path(root).resolve(), Path(path).resolve()
    if resolved == root_resolved or not resolved.is_relative_to(root_resolved):
        raise ConfigError(f"{path}: outside the output folder {root}; refusing to write or delete there")
    return resolved


def new_run_dir(base: str | os.PathLike, kind: str, config: dict) -> Path:
    """``base/kind/<UTC time>-<config hash>``, created empty; never reuses an existing folder.

    The folder is created exclusively, so processes starting at once into the same ``base`` each
    get their own (``-1``, ``-2``, ... on a collision).
    """
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    root = Path(base) / kind
    inside(base, root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"{stamp}-{config_hash(config)}"
    for suffix in range(10_000):
        candidate = root / (name if suffix == 0 else f"{name}-{suffix}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{root}: no free run folder name for {name}")


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` a sibling temp file, fsync it, then rename it over ``path``: a crash leaves the old file or none."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(data: dict, path: str | os.PathLike) -> Path:
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default, allow_nan=True) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def _json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
