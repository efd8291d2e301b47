"""The OPD student's loss: PPO's plus ``mu * NLL(teacher action)`` (spec 2.2); exactly PPO's at mu = 0 (OPDS)."""

from __future__ import annotations

import torch

from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.learner import AddObservationsFromEpisodesToBatch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.annotations import override

from rlexec.algorithms.opd.connectors import TEACHER_ACTIONS, TeacherActionConnector

DISTILLATION_LOSS = "distillation_loss"


class OPDLearner(PPOTorchLearner):
    """PPO's loss plus ``mu * NLL(teacher action)`` over the real (unmasked) timesteps."""

    @override(PPOTorchLearner)
    def build(self) -> None:
        super().build()
        if self.config.distillation_coeff > 0 and self._learner_connector is not None:
            self._learner_connector.insert_before(
                AddObservationsFromEpisodesToBatch,
                TeacherActionConnector(teacher_checkpoint=self.config.teacher_checkpoint),
            )

    @override(PPOTorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        ppo_loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        if config.distillation_coeff == 0:
            return ppo_loss  # OPDS: exactly PPO
        distillation = distillation_loss(fwd_out[Columns.ACTION_DIST_INPUTS], batch[TEACHER_ACTIONS],
                                         batch.get(Columns.LOSS_MASK))
        self.metrics.log_value((module_id, DISTILLATION_LOSS), distillation.detach(), window=1)
        return ppo_loss + config.distillation_coeff * distillation


def distillation_loss(logits: torch.Tensor, teacher_actions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``-mean_t log softmax(logits_t)[teacher_action_t]`` over the timesteps the mask keeps."""
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, teacher_actions.long().unsqueeze(-1)).squeeze(-1)
    if mask is None:
        return nll.mean()
    return nll[mask].sum() / mask.sum()
