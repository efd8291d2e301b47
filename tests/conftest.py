"""Session-wide fixtures: one small private Ray instance for every test that needs one."""

from __future__ import annotations

import os

import pytest


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
