"""Session-wide fixtures: one small private Ray instance for every test that needs one."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

_TOKEN_DIR = pytest.StashKey[Path]()


def pytest_configure(config):
    """A Ray auth token of the test session's own, unless one is configured: ``ray.init()`` starting a
    local Ray (here and in the ``rlexec`` processes tests start) otherwise writes a new token to the
    user's ``~/.ray/auth_token``."""
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    token_dir = Path(tempfile.mkdtemp(prefix="rlexec-tests-ray-token-"))
    token_path = token_dir / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    token_path.chmod(0o600)
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token_path)
    config.stash[_TOKEN_DIR] = token_dir


def pytest_unconfigure(config):
    token_dir = config.stash.get(_TOKEN_DIR, None)
    if token_dir is not None:
        os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
        shutil.rmtree(token_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_session():
    """A private 2-CPU Ray (``address="local"`` never joins a running cluster or RAY_ADDRESS).

    ``rlexec.training.runner.init_ray`` returns early when Ray is already up, so runner, CLI and
    sweep tests run on this same instance.
    """
    os.environ["RAY_DEDUP_LOGS"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
