"""The MoE-DPO TorchLearner: the stochastic-EM loss of :mod:`.losses` on a batch of preference pairs."""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from rlexec.algorithms.moe_dpo.losses import (
    implicit_reward_differences,
    mix_weights_update,
    moe_dpo_loss,
)
from rlexec.algorithms.moe_dpo.module import (
    CHOSEN_MASK,
    LOG_GATE,
    LOGP_CHOSEN,
    LOGP_REJECTED,
    REF_LOGP_CHOSEN,
    REF_LOGP_REJECTED,
    REGIME,
    REJECTED_MASK,
)

AVERAGE_WEIGHTS_RATE = 0.05  # rlexec: EMA rate of the context-free inference weights (module.average_weights)


def reward_differences(config, batch: dict[str, Any], fwd_out: dict[str, Any]) -> torch.Tensor:
    """``Delta_k`` (B, K) of a batch of pairs from the module's trajectory log-probabilities and the cache."""
    logp_chosen, logp_rejected = fwd_out[LOGP_CHOSEN], fwd_out[LOGP_REJECTED]
    normalise = config.per_step_normalise
    return implicit_reward_differences(
        logp_chosen, batch[REF_LOGP_CHOSEN].to(logp_chosen.dtype),
        logp_rejected, batch[REF_LOGP_REJECTED].to(logp_rejected.dtype), beta=config.beta,
        chosen_length=batch[CHOSEN_MASK].sum(-1) if normalise else None,
        rejected_length=batch[REJECTED_MASK].sum(-1) if normalise else None,
    )


class MoEDPOLearner(TorchLearner):
    """Experts by Adam at ``expert_lr``, the MoE gate by Adam at ``gate_lr`` (spec 1.5: 1e-4 / 1e-3).

    ``regime_names`` (set by the Algorithm from the preference set) names the per-regime gate logs.
    """

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        self.regime_names: list[str] = []

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        module = self.module[module_id].unwrapped()
        experts = list(module.experts.parameters())
        self.register_optimizer(module_id=module_id, optimizer_name="experts",
                                optimizer=torch.optim.Adam(experts, lr=config.expert_lr), params=experts,
                                lr_or_lr_schedule=config.expert_lr)
        if module.gate_kind == "moe":
            gate = list(module.gate.parameters())
            self.register_optimizer(module_id=module_id, optimizer_name="gate",
                                    optimizer=torch.optim.Adam(gate, lr=config.gate_lr), params=gate,
                                    lr_or_lr_schedule=config.gate_lr)

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch: dict[str, Any], fwd_out: dict[str, Any]) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        delta = reward_differences(config, batch, fwd_out)
        log_gate = fwd_out[LOG_GATE]
        loss, parts = moe_dpo_loss(log_gate, delta, objective=config.objective, train_gate=module.gate_kind == "moe",
                                   gate_entropy_coeff=config.gate_entropy_coeff,
                                   load_balance_coeff=config.load_balance_coeff)

        with torch.no_grad():
            weights = log_gate.exp()
            if module.gate_kind == "mix":  # Mix-DPO's closed-form M-step for the weights
                module.set_mix_weights(mix_weights_update(weights[0], parts["responsibilities"], config.mix_rate))
            module.average_weights.mul_(1 - AVERAGE_WEIGHTS_RATE).add_(AVERAGE_WEIGHTS_RATE * weights.mean(0))
            self._log_figures(module_id, module, parts, weights, batch, fwd_out)
        return loss

    def _log_figures(self, module_id, module, parts, weights, batch, fwd_out) -> None:
        def log(name: str, value) -> None:
            self.metrics.log_value((module_id, name), float(value), window=1)

        for name in ("log_likelihood", "preference_accuracy", "gate_entropy", "load_balance", "expert_loss",
                     "gate_loss"):
            log(name, parts[name])
        # Per expert, the mean per-step log-probability of the preferred and of the rejected actions
        # (the seed's Figure 2: preferred rising, rejected falling).
        per_step_chosen = fwd_out[LOGP_CHOSEN] / batch[CHOSEN_MASK].sum(-1).clamp_min(1).unsqueeze(-1)
        per_step_rejected = fwd_out[LOGP_REJECTED] / batch[REJECTED_MASK].sum(-1).clamp_min(1).unsqueeze(-1)
        for k, expert in enumerate(module.expert_names):
            log(f"logp_chosen/{expert}", per_step_chosen[:, k].mean())
            log(f"logp_rejected/{expert}", per_step_rejected[:, k].mean())
            log(f"gate_weight/{expert}", weights[:, k].mean())
        regimes = batch[REGIME].long()
        for r in torch.unique(regimes).tolist():
            regime = self.regime_names[r] if r < len(self.regime_names) else f"regime_{r}"
            in_regime = weights[regimes == r].mean(0)
            for k, expert in enumerate(module.expert_names):
                log(f"gate_weight/{regime}/{expert}", in_regime[k])
