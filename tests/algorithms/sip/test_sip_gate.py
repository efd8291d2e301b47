"""The gate: context -> expert weights, fitted by cross-entropy to SIP weights; save/load; prior init."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlexec.algorithms.sip.gate import (
    CONTEXT_FEATURES,
    Gate,
    GateConfig,
    context_features,
    context_names,
    fit_gate,
)
from rlexec.envs.lob_interpreters import OBSERVATION_NAMES
from rlexec.errors import ConfigError

EXPERTS = ["twap", "vwap", "is", "pov"]
REGIME_WEIGHTS = {"open": [0.7, 0.1, 0.1, 0.1], "midday": [0.1, 0.1, 0.2, 0.6]}


def _regime_data(n=50):
    regimes = list(REGIME_WEIGHTS)
    names = context_names(regimes)
    rng = np.random.default_rng(0)
    xs, ts = [], []
    for regime, w in REGIME_WEIGHTS.items():
        x = rng.normal(size=(n, len(names)))
        x[:, len(CONTEXT_FEATURES):] = [float(r == regime) for r in regimes]
        xs.append(x)
        ts.append(np.tile(w, (n, 1)))
    return np.concatenate(xs), np.concatenate(ts), names


def test_the_fitted_gate_recovers_each_regimes_weights():
    x, t, names = _regime_data()
    gate = fit_gate(x, t, feature_names=names, expert_names=EXPERTS, config=GateConfig(epochs=300, lr=0.1))
    w = gate.weights(x)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(w[:50].mean(axis=0), REGIME_WEIGHTS["open"], atol=0.03)
    np.testing.assert_allclose(w[50:].mean(axis=0), REGIME_WEIGHTS["midday"], atol=0.03)
    assert gate.metadata["kl_to_targets"] < 0.02


def test_zero_epochs_give_the_pooled_weights_for_every_context():
    x, t, names = _regime_data()
    gate = fit_gate(x, t, feature_names=names, expert_names=EXPERTS, config=GateConfig(epochs=0))
    np.testing.assert_allclose(gate.weights(x), np.tile(t.mean(axis=0), (len(x), 1)), atol=1e-6)


def test_an_mlp_gate_is_a_differentiable_module_that_saves_and_loads(tmp_path):
    x, t, names = _regime_data(10)
    gate = fit_gate(x, t, feature_names=names, expert_names=EXPERTS,
                    config=GateConfig(hidden_sizes=(8,), epochs=20, lr=1e-2))
    logits = gate(torch.as_tensor(x[:3], dtype=torch.float32))
    logits.sum().backward()
    assert logits.shape == (3, 4) and all(p.grad is not None for p in gate.parameters())
    loaded = Gate.load(gate.save(tmp_path / "gate"))
    np.testing.assert_allclose(loaded.weights(x), gate.weights(x), atol=1e-7)
    assert loaded.feature_names == names and loaded.expert_names == EXPERTS and loaded.hidden_sizes == (8,)
    (tmp_path / "gate" / "gate.pt").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="gate.pt"):
        Gate.load(tmp_path / "gate")


def test_context_features_come_from_the_first_observation_and_the_order():
    obs = np.zeros((2, len(OBSERVATION_NAMES)))
    names = list(OBSERVATION_NAMES)
    obs[:, names.index("spread_bps")] = [1.5, 3.0]
    obs[0, names.index("mid_return_1_bps")] = 3.0  # one return of 3 among 9 zeros
    identity = {"side": ["buy", "sell"], "quantity": [100.0, np.e * 100], "window_start_s": [9.5 * 3600, 12 * 3600]}
    x = context_features(obs, names, identity, "midday", ["open", "midday"])
    row = dict(zip(context_names(["open", "midday"]), x[0]))
    assert row["spread_bps"] == 1.5 and row["side"] == -1.0 and row["time_of_day_h"] == 0.0
    assert row["recent_vol_bps"] == pytest.approx(np.std([3.0] + [0.0] * 8))
    assert (row["regime_open"], row["regime_midday"]) == (0.0, 1.0)
    assert x[1, 1] == 1.0 and x[1, 0] == 2.5 and x[1, 2] == pytest.approx(np.log(100) + 1)
    with pytest.raises(ConfigError, match="regime"):
        context_features(obs, names, identity, "bullish", ["open", "midday"])
