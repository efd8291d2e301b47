"""Oracle Policy Distillation (Fang et al., AAAI 2021; spec 2.2) on RLlib's PPO, new API stack.

The whole method, top to bottom:

1. **Teacher.** Plain PPO (``algorithm: ppo``) on the oracle observation: the env is built with
   ``oracle: true`` and the :class:`~rlexec.algorithms.opd.module.OPDRecurrentModule` with
   ``oracle: true`` reads the whole horizon, future included. Nothing here is needed for it.
2. **Student.** PPO on the ordinary (past-only) observation, plus a distillation term::

       L(theta) = L_PPO(theta) + mu * L_d,    L_d = -E_t[ log pi_theta(a~_t | s_t) ]

   where ``a~_t`` is the frozen teacher's greedy action on the oracle view of the same state.
3. **How the teacher's action reaches the batch** (:mod:`.connectors`, :mod:`.learner`). The student's env runs with
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

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.utils.annotations import override

from rlexec.algorithms.opd.learner import OPDLearner
from rlexec.errors import ConfigError


class OPDConfig(PPOConfig):
    """PPOConfig plus ``distillation_coeff`` (mu, spec 2.2: 0.01) and ``teacher_checkpoint``."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or OPD)
        self.distillation_coeff = 0.01  # spec 2.2, OPD code sup_coef
        self.teacher_checkpoint: str | None = None  # an rlexec run folder or RLlib checkpoint of the teacher

    @override(PPOConfig)
    def training(self, *, distillation_coeff: float = NotProvided, teacher_checkpoint: str | None = NotProvided,
                 **kwargs) -> "OPDConfig":
        super().training(**kwargs)
        if distillation_coeff is not NotProvided:
            self.distillation_coeff = distillation_coeff
        if teacher_checkpoint is not NotProvided:
            self.teacher_checkpoint = teacher_checkpoint
        return self

    @override(PPOConfig)
    def get_default_learner_class(self):
        return OPDLearner

    @override(PPOConfig)
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
    @override(PPO)
    def get_default_config(cls) -> OPDConfig:
        return OPDConfig()
