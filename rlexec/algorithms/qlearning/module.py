"""The Q-table as an RLlib RLModule: greedy inference, epsilon-greedy exploration, (Q, state index) for training."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override

from rlexec.algorithms.qlearning.binning import StateBinning
from rlexec.errors import ConfigError

QF_PREDS = "q_values"  # forward_train output: Q(s, .) for every observation, shape (B, num_actions)
STATE_INDEX = "state_index"  # forward_train output: the binned state index of every observation


class TabularQModule(TorchRLModule):
    """Q-table over binned observations, ``model_config``: ``binning`` (``StateBinning.to_dict()``) and
    ``epsilon`` (initial exploration rate).

    State (all in ``state_dict``, so weight syncs and checkpoints carry it): ``q_table`` (the only
    parameter, zeros at start), ``epsilon`` (set by the Algorithm), ``num_updates`` (batched updates
    done, for the alpha schedule), ``update_counts`` (TD terms applied per (s, a), for diagnostics).
    """

    @override(TorchRLModule)
    def setup(self) -> None:
        self.binning = StateBinning.from_any(self.model_config["binning"])
        obs_dim = int(np.prod(self.observation_space.shape))
        too_far = [f.name for f in self.binning.features if f.index >= obs_dim]
        if too_far:
            raise ConfigError(f"binning: feature(s) {too_far} index past the {obs_dim}-dim observation")
        num_actions = int(self.action_space.n)
        self.q_table = torch.nn.Parameter(torch.zeros(self.binning.num_states, num_actions))
        self.register_buffer("epsilon", torch.tensor(float(self.model_config.get("epsilon", 0.0))))
        self.register_buffer("num_updates", torch.tensor(0, dtype=torch.long))
        self.register_buffer("update_counts", torch.zeros(self.binning.num_states, num_actions))

    def state_index(self, obs: torch.Tensor) -> torch.Tensor:
        return self.binning.index_torch(obs)

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Q(s, .) for a batch of raw observations, shape (B, num_actions)."""
        return self.q_table[self.state_index(torch.as_tensor(obs, dtype=torch.float32))]

    @override(TorchRLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # Greedy: RLlib's default GetActions connector takes the argmax of these logits.
        with torch.no_grad():
            return {Columns.ACTION_DIST_INPUTS: self.q_values(batch[Columns.OBS])}

    @override(TorchRLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # Epsilon-greedy as a categorical distribution, so GetActions samples it and records logp.
        # (Returning Columns.ACTIONS directly also works in 2.60: GetActions passes it through.)
        with torch.no_grad():
            q = self.q_values(batch[Columns.OBS])
            greedy = (q == q.max(dim=-1, keepdim=True).values).float()
            eps = self.epsilon.clamp(0.0, 1.0)
            probs = eps / q.shape[-1] + (1.0 - eps) * greedy / greedy.sum(dim=-1, keepdim=True)
            return {Columns.ACTION_DIST_INPUTS: torch.log(probs.clamp_min(1e-30))}

    @override(TorchRLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        index = self.state_index(batch[Columns.OBS])
        return {QF_PREDS: self.q_table[index], STATE_INDEX: index}

    def set_epsilon(self, value: float) -> None:
        self.epsilon.fill_(float(value))
