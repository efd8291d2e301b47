"""The MoE-DPO / Mix-DPO losses (spec 1.5), one readable file, torch only (no Ray).

Notation (spec 1.5). A preference ``(x, y+, y-)``: context ``x``, preferred trajectory ``y+``,
rejected ``y-``. K experts ``pi_k`` with frozen references ``pi_ref,k``; gate weights ``w_k(x)``.
Every function works on a batch of B pairs; per-expert quantities have shape (B, K).

* implicit reward of expert k:  ``h_k(x, y) = beta [log pi_k(y|x) - log pi_ref,k(y|x)]`` (DPO
  reparametrisation, Rafailov et al. 2023), optionally divided by the trajectory length
  (``per_step_normalise``, an rlexec option: trajectory log-ratios grow with the number of steps);
* ``Delta_k = h_k(x, y+) - h_k(x, y-)`` (the partition function ``Z_k(x)`` cancels);
* Mixture-of-Bradley-Terry likelihood ``p(y+ > y- | x) = sum_k w_k(x) sigma(Delta_k)``;
* E-step: ``q_k = softmax_k(log w_k + log sigma(Delta_k))``, a stop-gradient posterior;
* M-step: ``-sum_k q_k log sigma(Delta_k)`` (responsibility-weighted DPO, the experts) plus
  ``-sum_k q_k log w_k`` (gate cross-entropy to q; MoE-DPO) or the closed-form stochastic update
  ``w <- (1 - rho) w + rho mean_batch q`` (Mix-DPO, input-independent weights).

At q = posterior the EM gradient equals the gradient of ``-log sum_k w_k sigma(Delta_k)`` (Fisher's
identity, spec 1.5 and Appendix A): :func:`marginal_nll` is both an optional objective and the test
oracle of :func:`em_losses`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def implicit_reward_differences(
    logp_chosen: torch.Tensor,
    ref_logp_chosen: torch.Tensor,
    logp_rejected: torch.Tensor,
    ref_logp_rejected: torch.Tensor,
    *,
    beta: float,
    chosen_length: torch.Tensor | None = None,
    rejected_length: torch.Tensor | None = None,
) -> torch.Tensor:
    """``Delta_k = beta[(log pi_k - log pi_ref,k)(y+) - (log pi_k - log pi_ref,k)(y-)]``, shape (B, K).

    ``logp_*`` are trajectory log-probabilities ``sum_t log pi_k(a_t|s_t)``, (B, K). With lengths
    (B,) given, each trajectory's log-ratio is divided by its number of steps (``per_step_normalise``).
    """
    ratio_chosen = logp_chosen - ref_logp_chosen
    ratio_rejected = logp_rejected - ref_logp_rejected
    if chosen_length is not None:
        ratio_chosen = ratio_chosen / chosen_length.to(ratio_chosen.dtype).clamp_min(1).unsqueeze(-1)
    if rejected_length is not None:
        ratio_rejected = ratio_rejected / rejected_length.to(ratio_rejected.dtype).clamp_min(1).unsqueeze(-1)
    return beta * (ratio_chosen - ratio_rejected)


def responsibilities(log_gate: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """E-step posterior ``q_k = w_k sigma(Delta_k) / sum_j w_j sigma(Delta_j)``, computed in log space
    (no underflow for large |Delta|) and detached: the M-step treats q as fixed targets."""
    return torch.softmax(log_gate + F.logsigmoid(delta), dim=-1).detach()


def marginal_log_likelihood(log_gate: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``log sum_k w_k sigma(Delta_k)`` per pair, shape (B,)."""
    return torch.logsumexp(log_gate + F.logsigmoid(delta), dim=-1)


def marginal_nll(log_gate: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The direct objective ``-mean_i log sum_k w_k(x_i) sigma(Delta_k,i)`` (option and test oracle)."""
    return -marginal_log_likelihood(log_gate, delta).mean()


def em_losses(log_gate: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One stochastic-EM step: ``(expert_loss, gate_loss, q)``.

    ``expert_loss = -mean_i sum_k q_ik log sigma(Delta_ik)`` (responsibility-weighted DPO);
    ``gate_loss = -mean_i sum_k q_ik log w_k(x_i)`` (cross-entropy of the gate to q). Their sum has the
    gradient of the ELBO at q, which equals that of :func:`marginal_nll` (q is the posterior).
    """
    q = responsibilities(log_gate, delta)
    expert_loss = -(q * F.logsigmoid(delta)).sum(dim=-1).mean()
    gate_loss = -(q * log_gate).sum(dim=-1).mean()
    return expert_loss, gate_loss, q


def mix_weights_update(weights: torch.Tensor, q: torch.Tensor, rate: float) -> torch.Tensor:
    """Mix-DPO's closed-form M-step for input-independent weights, made stochastic:
    ``w <- (1 - rho) w + rho mean_batch q`` (rho = 1 on the full data set gives ``w_k = mean_i q_ik``)."""
    return (1.0 - rate) * weights + rate * q.detach().mean(dim=0)


def gate_entropy(log_gate: torch.Tensor) -> torch.Tensor:
    """``-sum_k w_k log w_k`` per pair, shape (B,)."""
    return -(log_gate.exp() * log_gate).sum(dim=-1)


def load_balance(log_gate: torch.Tensor) -> torch.Tensor:
    """``K sum_k mean_i(w_ik)^2``: 1 when the batch spreads evenly over the experts, K when it all goes
    to one (spec 1.5's optional regulariser)."""
    mean_weights = log_gate.exp().mean(dim=0)
    return log_gate.shape[-1] * (mean_weights ** 2).sum()


def preference_accuracy(log_gate: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_k w_ik 1[Delta_ik > 0]``: the gate-weighted share of experts that rank y+ first (spec 1.5)."""
    return (log_gate.exp() * (delta > 0).to(log_gate.dtype)).sum(dim=-1).mean()


def moe_dpo_loss(
    log_gate: torch.Tensor,
    delta: torch.Tensor,
    *,
    objective: str = "em",
    train_gate: bool = True,
    gate_entropy_coeff: float = 0.0,
    load_balance_coeff: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The total loss of one batch and its parts (for logging).

    ``objective``: ``"em"`` (explicit E/M-step, the default) or ``"marginal"`` (autograd of
    :func:`marginal_nll`). ``train_gate``: False for Mix-DPO, whose weights are a buffer updated in
    closed form from the returned ``q``. The entropy bonus is subtracted (it rewards spread gates);
    the load-balance term is added. Both are off by default (spec 1.5 suggests 1e-3 and 1e-2).
    """
    if objective not in ("em", "marginal"):
        raise ValueError(f"objective must be 'em' or 'marginal', got {objective!r}")
    expert_loss, gate_loss, q = em_losses(log_gate, delta)
    if objective == "em":
        total = expert_loss + (gate_loss if train_gate else 0.0)
    else:
        total = marginal_nll(log_gate if train_gate else log_gate.detach(), delta)
    entropy = gate_entropy(log_gate)
    balance = load_balance(log_gate)
    if train_gate and gate_entropy_coeff:
        total = total - gate_entropy_coeff * entropy.mean()
    if train_gate and load_balance_coeff:
        total = total + load_balance_coeff * balance
    parts = {
        "expert_loss": expert_loss.detach(), "gate_loss": gate_loss.detach(), "responsibilities": q,
        "log_likelihood": marginal_log_likelihood(log_gate, delta).detach().mean(),
        "gate_entropy": entropy.detach().mean(), "load_balance": balance.detach(),
        "preference_accuracy": preference_accuracy(log_gate.detach(), delta.detach()),
    }
    return total, parts
