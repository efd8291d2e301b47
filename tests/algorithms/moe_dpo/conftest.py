"""Specialist experts for the synthetic MoE-DPO problem: expert k is an MLPPolicy (an expert file ExpertPolicy.load reads) favouring action k."""

from __future__ import annotations

import pytest
import torch

from rlexec.algorithms.moe_dpo.preferences import (
    synthetic_preferences,
    write_preferences,
)
from rlexec.policies.expert import MLPPolicy


def specialist(k: int, *, obs_dim: int = 3, num_actions: int = 4, logit: float = 2.0) -> MLPPolicy:
    """pi(a|s) independent of s: softmax of ``logit`` on action k and 0 elsewhere."""
    expert = MLPPolicy(obs_dim=obs_dim, num_actions=num_actions, hidden_sizes=(8,))
    with torch.no_grad():
        expert.net[-1].weight.zero_()
        expert.net[-1].bias.zero_()
        expert.net[-1].bias[k] = logit
    return expert


@pytest.fixture(name="specialist")
def specialist_fixture():
    return specialist


@pytest.fixture
def synthetic_run_inputs(tmp_path):
    """(preference folder, expert folders, best expert per regime) of the 3-regime synthetic problem."""
    preferences, best = synthetic_preferences(num_contexts=60, seed=0)
    folder = write_preferences(preferences, tmp_path / "preferences")
    experts = [str(specialist(k).save(tmp_path / f"expert{k}")) for k in range(3)]
    return folder, experts, best
