"""``DDQNConfig``: RLlib's ``DQNConfig`` that refuses to run without double Q learning."""

from __future__ import annotations

from ray.rllib.algorithms.dqn import DQNConfig

from rlexec.errors import ConfigError


class DDQNConfig(DQNConfig):
    """RLlib's DQN with ``double_q`` true, set here rather than trusting RLlib's default to stay so.

    Every other key is RLlib's (``training``: ``replay_buffer_config``, ``epsilon``,
    ``target_network_update_freq``, ``n_step``, ``dueling``, ...); configs/ddqn.yaml sets them.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self.double_q = True

    def validate(self) -> None:
        super().validate()
        if not self.double_q:
            raise ConfigError("algorithm 'ddqn': training.double_q must be true (it is what makes DQN double); "
                              "for plain DQN name 'ray.rllib.algorithms.dqn:DQNConfig' as the algorithm")
