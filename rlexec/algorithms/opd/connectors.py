"""The OPD learner connector: the frozen teacher's greedy action for every timestep of the student's batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override

from rlexec.envs.bar_env import ORACLE_OBS
from rlexec.errors import ConfigError

TEACHER_ACTIONS = "teacher_actions"


class TeacherActionConnector(ConnectorV2):
    """Learner piece: the frozen teacher's greedy action for every timestep, from the oracle view in ``info``.

    Emits ``len(episode)`` items per episode (PPO has already appended its artificial bootstrap
    step, whose row the loss masks out).
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *, teacher_checkpoint: str, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.teacher_checkpoint = teacher_checkpoint
        self._teacher: RLModule | None = None

    @property
    def teacher(self) -> RLModule:
        if self._teacher is None:  # loaded where the Learner runs, once
            from rlexec.policies.checkpoints import load_module

            self._teacher = load_module(self.teacher_checkpoint)
            self._teacher.eval()
        return self._teacher

    @override(ConnectorV2)
    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, explore=None, shared_data=None, **kwargs):
        episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        if not episodes:
            return batch
        oracle_obs = []
        for episode in episodes:
            infos = episode.get_infos(slice(0, len(episode)))
            if not all(ORACLE_OBS in info for info in infos):
                raise ConfigError(f"TeacherActionConnector: an episode's info lacks {ORACLE_OBS!r}; "
                                  "set env_config.teacher_observation: true")
            oracle_obs.extend(info[ORACLE_OBS] for info in infos)
        # One teacher forward for the whole batch: per-episode forwards of ~9 rows cost more than the update.
        with torch.no_grad():
            logits = self.teacher.forward_inference(
                {Columns.OBS: torch.from_numpy(np.stack(oracle_obs).astype(np.float32, copy=False))}
            )[Columns.ACTION_DIST_INPUTS]
        actions = logits.argmax(-1).numpy()
        start = 0
        for episode in episodes:
            self.add_n_batch_items(batch, TEACHER_ACTIONS, items_to_add=actions[start : start + len(episode)],
                                   num_items=len(episode), single_agent_episode=episode)
            start += len(episode)
        return batch
