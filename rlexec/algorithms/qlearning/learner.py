"""The tabular TD update as one SGD step on a count-weighted squared TD error (see :mod:`.config`)."""

from __future__ import annotations

from typing import Any

import torch

from ray.rllib.connectors.learner import (
    AddNextObservationsFromEpisodesToTrainBatch,
    AddObservationsFromEpisodesToBatch,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from rlexec.algorithms.qlearning.module import QF_PREDS, STATE_INDEX


class TabularQLearner(TorchLearner):
    """Loss = count-weighted half squared TD error; SGD at lr alpha = the batched tabular update."""

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        # The targets need s' of every transition: RLlib's own piece, placed right after the OBS piece
        # (as DQN does), adds Columns.NEXT_OBS from the episodes.
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.insert_after(
                AddObservationsFromEpisodesToBatch, AddNextObservationsFromEpisodesToTrainBatch()
            )

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        # Plain SGD, no momentum: one step = Q += lr * (-grad). lr is set per update (alpha schedule),
        # so no RLlib lr scheduler is registered.
        params = self.get_parameters(self.module[module_id])
        self.register_optimizer(module_id=module_id, optimizer=torch.optim.SGD(params, lr=self.config.alpha),
                                params=params, lr_or_lr_schedule=None)

    @override(TorchLearner)
    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            module = self.module[module_id].unwrapped()
            alpha = self.config.alpha_at(int(module.num_updates))
            self._set_optimizer_lr(self.get_optimizer(module_id), lr=alpha)
            self.metrics.log_value((module_id, "alpha"), alpha, window=1)

    @override(TorchLearner)
    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            self.module[module_id].unwrapped().num_updates += 1

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        q = fwd_out[QF_PREDS]
        actions = batch[Columns.ACTIONS].long()
        q_taken = q.gather(-1, actions.unsqueeze(-1)).squeeze(-1)

        # Target r + gamma max_a' Q(s', a') from the table before this update; 0 bootstrap at termination
        # (a truncated or chunked episode still bootstraps from its last observation).
        with torch.no_grad():
            q_next = module.q_values(batch[Columns.NEXT_OBS]).max(dim=-1).values
            not_done = 1.0 - batch[Columns.TERMINATEDS].float()
            target = batch[Columns.REWARDS].float() + config.gamma * not_done * q_next
        td = target - q_taken

        # Weight each term by 1/n(s,a) so the SGD step moves each visited pair by alpha * mean TD error
        # (module docstring); the sum, not the mean, keeps alpha the per-pair step size.
        pair = fwd_out[STATE_INDEX] * q.shape[-1] + actions
        count = torch.bincount(pair)[pair].float()
        loss = 0.5 * (td.pow(2) / count).sum()

        with torch.no_grad():
            module.update_counts.view(-1).index_add_(0, pair, torch.ones_like(td))
        self.metrics.log_value((module_id, "td_error"), td.abs().mean().item(), window=1)
        self.metrics.log_value((module_id, "q_taken_mean"), q_taken.mean().item(), window=1)
        self.metrics.log_value((module_id, "state_action_pairs_in_batch"), int(torch.unique(pair).numel()), window=1)
        return loss
