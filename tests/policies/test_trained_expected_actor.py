"""The 'expected' actor averages action values into a fraction of Q: only meaningful for fraction actions."""

from __future__ import annotations

import pytest

from rlexec.errors import ConfigError
from rlexec.policies.actors import ExpectedFractionActor
from rlexec.policies.trained import TrainedPolicy


def test_expected_actor_refuses_twap_relative_policies():
    policy = TrainedPolicy("pace", model=None, env="bar", env_config={"execution": {"action_interpreter": "twap_relative"}},
                           source=None)
    with pytest.raises(ConfigError, match="'expected' actor needs action_interpreter 'fraction'.*'twap_relative'"):
        policy.actor("expected")
    assert policy.actor("greedy").name == "pace"  # indices mean the same through the env's interpreter


def test_expected_actor_still_serves_fraction_policies():
    policy = TrainedPolicy("opd", model=None, env="bar", env_config={})
    actor = policy.actor("expected")
    assert isinstance(actor, ExpectedFractionActor) and actor.values.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
