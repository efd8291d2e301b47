"""``kind: sip`` in rlexec regimes: the SIP run's weights of the regime over the experts it was fitted with."""

from __future__ import annotations

import numpy as np
import pytest
from test_sip_driver import _config, _fit

from rlexec.algorithms.sip.driver import load_weights, save
from rlexec.algorithms.sip.mixture import BlendMixture, StepMixture
from rlexec.envs.lob_env import SHARED_OBSERVATION_NAMES, LOBExecutionConfig
from rlexec.envs.lob_interpreters import SIZE_MULTIPLIERS
from rlexec.errors import ConfigError
from rlexec.evaluation.regime_table import PolicyContext, PolicySpec, resolve_kind
from rlexec.policies.binning import FeatureBins, StateBinning
from rlexec.policies.expert import ExpertPolicy


@pytest.fixture
def sip_run(tmp_path, monkeypatch):
    """A fitted SIP run whose recorded experts are real shared-action experts saved under tmp_path."""
    monkeypatch.chdir(tmp_path)
    binning = StateBinning((FeatureBins(name="time_pct", index=SHARED_OBSERVATION_NAMES.index("time_pct"),
                                        edges=(0.5,)),))
    tables = {"twap": [[3.0, 0.0, -3.0]] * 2, "vwap": [[0.0, 3.0, -3.0]] * 2, "pov": [[0.0, 0.0, 3.0]] * 2}
    for name, table in tables.items():
        for regime in ("open", "midday"):
            ExpertPolicy.from_q_table(broker=name, q_table=np.array(table), binning=binning,
                                      temperature=1.0).save(tmp_path / "experts" / f"{name}_{regime}")
    config = _config()
    fits, gate, _ = _fit(config)
    return save(fits, gate, config, tmp_path / "sip_run"), tmp_path


def _context(tmp_path, regime):
    env = LOBExecutionConfig.from_dict({"regime": regime, "action_space": "shared"})
    return PolicyContext(regime=regime, env_config=env, seed=10_000_000, episodes=3, base_dir=tmp_path)


def _observations(n=4):
    obs = np.zeros((n, len(SHARED_OBSERVATION_NAMES)), dtype=np.float32)
    obs[:, SHARED_OBSERVATION_NAMES.index("time_pct")] = np.linspace(0, 1, n)
    obs[:, -4:] = [2, 1, 3, 0]   # the brokers' size buckets
    return obs


def test_sip_kind_blends_the_regimes_weights_over_the_recorded_experts(sip_run):
    run, tmp_path = sip_run
    factory = resolve_kind("sip")
    names, final = load_weights(run)
    experts = [ExpertPolicy.load(tmp_path / "experts" / f"{name}_midday") for name in names]
    actor = factory(PolicySpec(name="sip", kind="sip", role="mixture", params={"run": str(run)}),
                    _context(tmp_path, "midday"))
    expected = BlendMixture(final["midday"], experts, size_multipliers=SIZE_MULTIPLIERS).actions(_observations())
    assert actor.name == "sip"
    assert actor.actions(_observations()).tolist() == expected.tolist()
    history = actor.mixture_weights()
    assert set(history) == set(names)
    for k, name in enumerate(names):
        assert len(history[name]) == 40 + 1          # the prior, then after each of the 40 fitting episodes
        assert history[name][-1] == pytest.approx(final["midday"][k])


def test_sip_kind_step_mixture_is_seeded_and_regimes_must_exist(sip_run):
    run, tmp_path = sip_run
    factory = resolve_kind("sip")
    spec = PolicySpec(name="sip_step", kind="sip", role="mixture",
                      params={"run": str(run), "mixture": "step", "sample_seed": 5})
    actor = factory(spec, _context(tmp_path, "open"))
    assert isinstance(actor._actor, StepMixture)
    again = factory(spec, _context(tmp_path, "open"))
    assert actor.actions(_observations(50)).tolist() == again.actions(_observations(50)).tolist()
    with pytest.raises(ConfigError, match="no weights for regime 'bearish'"):
        factory(spec, _context(tmp_path, "bearish"))
    with pytest.raises(ConfigError, match="mixture must be one of"):
        factory(PolicySpec(name="x", kind="sip", role="mixture", params={"run": str(run), "mixture": "vote"}),
                _context(tmp_path, "open"))
