"""Oracle Policy Distillation (Fang et al., AAAI 2021; spec 2.2) on RLlib's PPO, new API stack.

The whole method, top to bottom:

1. **Teacher.** Plain PPO (``algorithm: ppo``) on the oracle observation: the env is built with
   ``oracle: true`` and the :class:`~rlexec.algorithms.opd_network.OPDRecurrentModule` with
   ``oracle: true`` reads the whole horizon, future included. Nothing here is needed for it.
2. **Student.** PPO on the ordinary (past-only) observation, plus a distillation term::

       L(theta) = L_PPO(theta) + mu * L_d,    L_d = -E_t[ log pi_theta(a~_t | s_t) ]

   where ``a~_t`` is the frozen teacher's greedy action on the oracle view of the same state.
3. **How the teacher's action reaches the batch.** The student's env runs with
   ``teacher_observation: true``: each step's ``info`` carries the oracle observation, while the
   observation the student acts on stays the past-only one. On the Learner,
   :class:`TeacherActionConnector` (a learner ``ConnectorV2`` piece) runs the frozen teacher on those
   oracle views and writes column ``teacher_actions``. The student's network never receives them.
4. **OPDS** (the ablation, student only) is the same code with ``distillation_coeff: 0``: no teacher
   is loaded, no column is added, and the loss is exactly PPO's.

The OPD code's extras (entropy bonus 0.01, adaptive KL penalty 0.5 with target 0.01) are RLlib PPO's
``entropy_coeff``, ``kl_coeff`` and ``kl_target``: set them in ``training`` (spec 2.2 table).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.connectors.learner import AddObservationsFromEpisodesToBatch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

from rlexec.envs.bar_env import ORACLE_OBS
from rlexec.errors import ConfigError

TEACHER_ACTIONS = "teacher_actions"
DISTILLATION_LOSS = "distillation_loss"


class OPDConfig(PPOConfig):
    """PPOConfig plus ``distillation_coeff`` (mu, spec 2.2: 0.01) and ``teacher_checkpoint``."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or OPD)
        self.distillation_coeff = 0.01  # spec 2.2, OPD code sup_coef
        self.teacher_checkpoint: str | None = None  # an rlexec run folder or RLlib checkpoint of the teacher

    def training(self, *, distillation_coeff: float = NotProvided, teacher_checkpoint: str | None = NotProvided,
                 **kwargs) -> "OPDConfig":
        super().training(**kwargs)
        if distillation_coeff is not NotProvided:
            self.distillation_coeff = distillation_coeff
        if teacher_checkpoint is not NotProvided:
            self.teacher_checkpoint = teacher_checkpoint
        return self

    def get_default_learner_class(self):
        return OPDLearner

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.distillation_coeff, (int, float)) or self.distillation_coeff < 0:
            raise ConfigError(f"training.distillation_coeff must be a number >= 0, got {self.distillation_coeff!r}")
        if self.distillation_coeff > 0:
            if not self.teacher_checkpoint:
                raise ConfigError("training.teacher_checkpoint is required when distillation_coeff > 0 "
                                  "(set distillation_coeff: 0 for OPDS)")
            if not (self.env_config or {}).get("teacher_observation"):
                raise ConfigError("distillation needs env_config.teacher_observation: true (the teacher's view "
                                  "travels in info, not in the student's observation)")
            if (self.env_config or {}).get("oracle"):
                raise ConfigError("the OPD student must not use env_config.oracle: true (that is the teacher's view)")


class OPD(PPO):
    @classmethod
    def get_default_config(cls) -> OPDConfig:
        return OPDConfig()


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
            from rlexec.training.checkpoints import load_module

            self._teacher = load_module(self.teacher_checkpoint)
            self._teacher.eval()
        return self._teacher

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, explore=None, shared_data=None, **kwargs):
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            infos = episode.get_infos(slice(0, len(episode)))
            if not all(ORACLE_OBS in info for info in infos):
                raise ConfigError(f"TeacherActionConnector: an episode's info lacks {ORACLE_OBS!r}; "
                                  "set env_config.teacher_observation: true")
            oracle_obs = torch.from_numpy(np.stack([info[ORACLE_OBS] for info in infos]).astype(np.float32))
            with torch.no_grad():
                logits = self.teacher.forward_inference({Columns.OBS: oracle_obs})[Columns.ACTION_DIST_INPUTS]
            self.add_n_batch_items(batch, TEACHER_ACTIONS, items_to_add=logits.argmax(-1).numpy(),
                                   num_items=len(episode), single_agent_episode=episode)
        return batch


class OPDLearner(PPOTorchLearner):
    """PPO's loss plus ``mu * NLL(teacher action)`` over the real (unmasked) timesteps."""

    def build(self) -> None:
        super().build()
        if self.config.distillation_coeff > 0 and self._learner_connector is not None:
            self._learner_connector.insert_before(
                AddObservationsFromEpisodesToBatch,
                TeacherActionConnector(teacher_checkpoint=self.config.teacher_checkpoint),
            )

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


CONFIG_CLASS = OPDConfig
