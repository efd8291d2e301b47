"""PPO on the execution envs: RLlib's own ``PPO`` with rlexec's networks and spec-2.2 settings.

Nothing is re-implemented: the config class is RLlib's ``PPOConfig``. What makes it OPD's PPO is the
YAML (``configs/ppo.yaml``, ``configs/opd_teacher.yaml``): the OPD network of
:mod:`rlexec.algorithms.opd.module` (or RLlib's default MLP for the plain PPO baseline), gamma and
GAE lambda 1 (episodic Monte-Carlo returns), clip 0.3, lr 1e-4, entropy 0.01, KL 0.5 / target 0.01,
gradient-norm clip 100. The **teacher** is this algorithm with ``env_config.oracle: true`` and
``model_config.oracle: true`` (set automatically from ``env_config``).
"""

from rlexec.algorithms.registry import AlgorithmEntry, register_algorithm

register_algorithm(AlgorithmEntry(
    name="ppo", config_class="ray.rllib.algorithms.ppo:PPOConfig",
    description="RLlib PPO (spec 2.2 settings in configs/ppo.yaml); the OPD teacher with oracle: true",
))
