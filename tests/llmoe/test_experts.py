"""Experts are trained only on the days routed to them and early-stopped on validation."""

from __future__ import annotations

import numpy as np
import pytest

from rlexec.llmoe.experts import ExpertSettings, mixture_predict, routed_subset, train_classifier, train_experts

FAST = ExpertSettings(hidden=(16,), max_epochs=60, patience=10, min_route_days=10)


def test_each_expert_learns_only_from_the_days_routed_to_it():
    # optimistic days all went up, pessimistic days all went down, with features that carry no signal:
    # an expert that saw only its own days predicts its days' outcome whatever the input
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=(n, 55))
    optimistic = np.arange(n) % 2 == 0
    up = optimistic.astype(np.int64)
    train, validation = np.arange(160), np.arange(160, 200)
    experts = train_experts(x, up, optimistic, train, validation, FAST, seed=1)
    probe = rng.normal(size=(50, 55))
    assert (experts["optimistic"].predict(probe) > 0.5).all()
    assert (experts["pessimistic"].predict(probe) < 0.5).all()
    p = mixture_predict(experts, probe, np.arange(50) < 25)
    assert (p[:25] > 0.5).all() and (p[25:] < 0.5).all()


def test_an_expert_with_too_few_routed_days_uses_all_of_them():
    mask = np.zeros(100, dtype=bool)
    mask[:3] = True
    assert routed_subset(mask, 10).tolist() == list(range(100))
    assert routed_subset(~mask, 10).tolist() == list(range(3, 100))


def test_early_stopping_keeps_the_best_validation_epoch():
    import torch

    rng = np.random.default_rng(1)
    x_train, x_val = rng.normal(size=(100, 55)), rng.normal(size=(40, 55))
    y_train, y_val = rng.integers(0, 2, 100), rng.integers(0, 2, 40)  # noise: validation loss soon rises
    settings = ExpertSettings(hidden=(64,), max_epochs=200, patience=5)
    model = train_classifier("ffn", x_train, y_train, x_val, y_val, settings, seed=0)
    assert model.epochs < 100
    p = model.predict(x_val)
    loss = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y_val, dtype=torch.float64))
    assert float(loss) == pytest.approx(model.best_validation_loss, rel=1e-4)


def test_lstm_reads_the_55_inputs_as_5_days_of_11():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 55)), rng.integers(0, 2, 60)
    model = train_classifier("lstm", x, y, x[:20], y[:20], ExpertSettings(max_epochs=3, patience=2), seed=0)
    assert model.predict(x[:7]).shape == (7,)
