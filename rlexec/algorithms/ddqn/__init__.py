"""DDQN on the execution envs: RLlib's own DQN (new API stack) with double Q learning held on.

Nothing is re-implemented: :class:`rlexec.algorithms.ddqn.config.DDQNConfig` is RLlib's ``DQNConfig``
with ``double_q`` fixed to true (the online network picks the next action, the target network
values it; van Hasselt et al. 2016), the baseline "DDQN" of the OPD paper's table (spec 2.5). The
module is RLlib's default DQN RLModule (an MLP Q-network, ``dueling: false`` in configs/ddqn.yaml:
plain DDQN); its inference forward returns the greedy action ``argmax_a Q(s, a)``, which is what
``rlexec evaluate --policy`` acts with (the greedy actor). See configs/ddqn.yaml and docs/ddqn.md.
"""

from rlexec.algorithms.registry import AlgorithmEntry, register_algorithm

register_algorithm(AlgorithmEntry(
    name="ddqn", config_class="rlexec.algorithms.ddqn.config:DDQNConfig",
    description="RLlib DQN with double Q (new API stack); settings in configs/ddqn.yaml",
))
