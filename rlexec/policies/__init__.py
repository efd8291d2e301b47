"""Policies: what a trained run leaves behind and how anything acts with it. Loads and runs without Ray.

* :mod:`.checkpoints`: which checkpoint a path means, the run's config, the RLModule in it
* :mod:`.trained`: :class:`TrainedPolicy`, a run's model plus the env it was trained on
* :mod:`.actors`: greedy, seeded-sampled and expected-fraction actors over any model; ``log_probs``
* :mod:`.expert`: :class:`ExpertPolicy`, an exported differentiable expert with ``log_prob``
"""
