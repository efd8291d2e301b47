"""The spec-5 oracles of the MoE-DPO loss (rlexec.algorithms.moe_dpo.losses), against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlexec.algorithms.moe_dpo.losses import (
    em_losses,
    gate_entropy,
    implicit_reward_differences,
    load_balance,
    marginal_log_likelihood,
    marginal_nll,
    mix_weights_update,
    moe_dpo_loss,
    preference_accuracy,
    responsibilities,
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_k1_equals_standard_dpo_exactly():
    # Rafailov et al. 2023: L = -log sigma(beta [(log pi - log pi_ref)(y+) - (log pi - log pi_ref)(y-)]).
    beta = 0.1
    pi_plus = torch.tensor([[-3.0], [-10.0], [-1.5]], dtype=torch.float64, requires_grad=True)
    pi_minus = torch.tensor([[-4.0], [-9.0], [-2.5]], dtype=torch.float64, requires_grad=True)
    ref_plus = torch.tensor([[-3.5], [-9.5], [-1.0]], dtype=torch.float64)
    ref_minus = torch.tensor([[-3.5], [-9.0], [-3.0]], dtype=torch.float64)
    delta = implicit_reward_differences(pi_plus, ref_plus, pi_minus, ref_minus, beta=beta)
    log_gate = torch.zeros(3, 1, dtype=torch.float64)  # one expert: w = 1
    for objective in ("em", "marginal"):
        loss, _ = moe_dpo_loss(log_gate, delta, objective=objective)
        by_hand = np.mean([-math.log(_sigmoid(beta * ((-3.0 + 3.5) - (-4.0 + 3.5)))),
                           -math.log(_sigmoid(beta * ((-10.0 + 9.5) - (-9.0 + 9.0)))),
                           -math.log(_sigmoid(beta * ((-1.5 + 1.0) - (-2.5 + 3.0))))])
        assert loss.item() == pytest.approx(by_hand, abs=1e-12)
        dpo = -F.logsigmoid(beta * ((pi_plus - ref_plus) - (pi_minus - ref_minus))).mean()
        ours = torch.autograd.grad(loss, (pi_plus, pi_minus), retain_graph=True)
        theirs = torch.autograd.grad(dpo, (pi_plus, pi_minus), retain_graph=True)
        for a, b in zip(ours, theirs):
            assert torch.allclose(a, b, atol=1e-15)


def test_identical_deltas_give_the_gate_as_responsibilities():
    gate = torch.log_softmax(torch.tensor([[0.3, -1.2, 2.0, 0.0], [1.0, 1.0, -3.0, 0.5]]), dim=-1)
    delta = torch.tensor([[0.7], [-2.5]]).expand(2, 4)
    assert torch.allclose(responsibilities(gate, delta), gate.exp(), atol=1e-7)


def test_responsibilities_sum_to_one_and_are_the_posterior_even_for_extreme_deltas():
    generator = torch.Generator().manual_seed(0)
    gate = torch.log_softmax(torch.randn(50, 4, generator=generator), dim=-1)
    delta = torch.randn(50, 4, generator=generator) * 1e3  # sigma underflows to 0 outside log space
    q = responsibilities(gate, delta)
    assert torch.isfinite(q).all()
    assert torch.allclose(q.sum(-1), torch.ones(50), atol=1e-6)
    small = torch.tensor([[0.5, -0.5]], dtype=torch.float64)
    w = torch.tensor([[0.2, 0.8]], dtype=torch.float64)
    posterior = w * torch.sigmoid(small) / (w * torch.sigmoid(small)).sum()
    assert torch.allclose(responsibilities(w.log(), small), posterior, atol=1e-12)
    assert not responsibilities(gate.requires_grad_(), delta).requires_grad  # stop-gradient


def test_em_gradient_equals_autograd_of_the_marginal_at_the_posterior():
    generator = torch.Generator().manual_seed(1)
    gate_logits = torch.randn(8, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    delta = (torch.randn(8, 4, dtype=torch.float64, generator=generator) * 2).requires_grad_()
    log_gate = torch.log_softmax(gate_logits, dim=-1)
    expert_loss, gate_loss, _ = em_losses(log_gate, delta)
    em = torch.autograd.grad(expert_loss + gate_loss, (gate_logits, delta), retain_graph=True)
    marginal = torch.autograd.grad(marginal_nll(log_gate, delta), (gate_logits, delta))
    for a, b in zip(em, marginal):
        assert torch.allclose(a, b, atol=1e-12)
    # ... while the losses themselves differ (the ELBO at q is not the EM surrogate's value).
    assert (expert_loss + gate_loss).item() != pytest.approx(marginal_nll(log_gate, delta).item())


def test_marginal_log_likelihood_by_hand():
    w, d = [0.25, 0.75], [1.0, -2.0]
    by_hand = math.log(w[0] * _sigmoid(d[0]) + w[1] * _sigmoid(d[1]))
    got = marginal_log_likelihood(torch.tensor([w]).log(), torch.tensor([d]))
    assert got.item() == pytest.approx(by_hand, abs=1e-6)


def test_per_step_normalise_divides_each_log_ratio_by_its_length():
    delta = implicit_reward_differences(torch.tensor([[-6.0]]), torch.tensor([[-9.0]]), torch.tensor([[-4.0]]),
                                        torch.tensor([[-2.0]]), beta=0.5, chosen_length=torch.tensor([3.0]),
                                        rejected_length=torch.tensor([4.0]))
    assert delta.item() == pytest.approx(0.5 * (3.0 / 3 - (-2.0) / 4))


def test_mix_closed_form_update_and_regularisers_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    assert torch.allclose(mix_weights_update(torch.tensor([0.5, 0.5]), q, 1.0), torch.tensor([0.75, 0.25]))
    assert torch.allclose(mix_weights_update(torch.tensor([0.5, 0.5]), q, 0.1), torch.tensor([0.525, 0.475]))
    log_gate = torch.tensor([[0.9, 0.1], [0.5, 0.5]]).log()
    assert gate_entropy(log_gate)[1].item() == pytest.approx(math.log(2), abs=1e-6)
    assert load_balance(log_gate).item() == pytest.approx(2 * (0.7 ** 2 + 0.3 ** 2), abs=1e-6)
    delta = torch.tensor([[1.0, -1.0], [-1.0, -1.0]])
    assert preference_accuracy(log_gate, delta).item() == pytest.approx((0.9 + 0.0) / 2, abs=1e-6)


def test_regularisers_enter_the_total_with_their_signs_and_mix_leaves_the_gate_untrained():
    log_gate = torch.log_softmax(torch.tensor([[0.2, -0.4, 1.0]]), dim=-1)
    delta = torch.tensor([[0.5, -0.1, 0.3]])
    base, parts = moe_dpo_loss(log_gate, delta)
    regularised, _ = moe_dpo_loss(log_gate, delta, gate_entropy_coeff=0.1, load_balance_coeff=0.01)
    assert regularised.item() == pytest.approx(
        base.item() - 0.1 * parts["gate_entropy"].item() + 0.01 * parts["load_balance"].item(), abs=1e-6)
    mix, mix_parts = moe_dpo_loss(log_gate, delta, train_gate=False, gate_entropy_coeff=0.1)
    assert mix.item() == pytest.approx(mix_parts["expert_loss"].item(), abs=1e-7)
    with pytest.raises(ValueError, match="objective"):
        moe_dpo_loss(log_gate, delta, objective="elbo")
