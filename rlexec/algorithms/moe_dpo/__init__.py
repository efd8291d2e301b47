"""MoE-DPO (spec 1.4-1.6): fine-tunes a mixture of broker experts from trajectory-level preferences by
stochastic EM on a Mixture-of-Bradley-Terry likelihood (Stage 3 of "Learning to Trade with Preferences").

* :mod:`.losses`: the whole loss, one readable file (Delta_k, E-step, M-step, Mix and MoE, marginal oracle)
* :mod:`.preferences`: preference pairs from grouped trajectories (quality / speed labels), parquet I/O,
  a synthetic generator for the tests
* :mod:`.module`: ``MoEDPOModule`` (K experts, frozen references, gate) and ``MixturePolicy`` (inference)
* :mod:`.learner`: ``MoEDPOLearner`` (the loss on a batch of pairs, the per-iteration figures)
* :mod:`.config`: ``MoEDPOConfig`` / ``MoEDPO`` (offline: reads pair batches, no env sampling)
* :mod:`.plots`: the training figures (log-probability dynamics, gate per regime; drawn after every run)
  and one episode's gate weights and posterior responsibilities
"""

from rlexec.algorithms.registry import AlgorithmEntry, register_algorithm

register_algorithm(AlgorithmEntry(
    name="moe_dpo", config_class="rlexec.algorithms.moe_dpo.config:MoEDPOConfig",
    after_training="rlexec.algorithms.moe_dpo.plots:after_training",
    description="MoE-DPO / Mix-DPO fine-tuning of the broker experts from preference pairs (spec 1.5)",
))
