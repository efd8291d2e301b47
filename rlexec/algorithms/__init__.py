"""Learning algorithms on RLlib's new API stack, one module per method.

* :mod:`rlexec.algorithms.qlearning`: tabular Q-learning of the four LOB broker experts (spec 1.1)
* :mod:`rlexec.algorithms.expert_policy`: a Q-expert distilled into a differentiable policy
* :mod:`rlexec.algorithms.ppo`: PPO on the bar env (spec 2), the OPD teacher
* :mod:`rlexec.algorithms.opd`: the OPD student and its OPDS ablation (spec 2.2)
* :mod:`rlexec.algorithms.opd_network`: the OPD RLModule (spec 2.3)

Each module defines ``CONFIG_CLASS`` (its RLlib ``AlgorithmConfig``) and may define
``after_training(algo, run_dir) -> dict`` that ``rlexec train`` calls at the end of a run.
Importing this package does not import Ray.
"""
