"""Learning algorithms on RLlib's new API stack: one folder per method, each registering itself.

* :mod:`rlexec.algorithms.ppo`: PPO on the execution envs (spec 2), the OPD teacher
* :mod:`rlexec.algorithms.opd`: the OPD student and its OPDS ablation (spec 2.2), the OPD RLModule (spec 2.3)
* :mod:`rlexec.algorithms.qlearning`: tabular Q-learning of the four LOB broker experts (spec 1.1) and
  their export to differentiable :class:`~rlexec.policies.expert.ExpertPolicy` experts

A folder holds its config (an RLlib ``AlgorithmConfig``), learner (the loss only), module and
connectors, and registers them in :mod:`rlexec.algorithms.registry`, the only list the training
driver reads. Importing this package (or the registry) does not import Ray.
"""
