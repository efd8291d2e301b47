"""Tabular Q-learning of the LOB broker experts (spec 1.1) as an RLlib new-API-stack algorithm.

* :mod:`.binning`: observation -> state index (named features cut into bins)
* :mod:`.module`: ``TabularQModule``, the Q-table as an RLModule (epsilon-greedy exploration)
* :mod:`.learner`: ``TabularQLearner``, the batched tabular TD update as one SGD step
* :mod:`.config`: ``TabularQConfig`` / ``TabularQ`` (sampling -> update -> epsilon -> weight sync)
* :mod:`.export`: after training, the table distilled into a differentiable
  :class:`~rlexec.policies.expert.ExpertPolicy` saved in ``<run>/expert``
"""

from rlexec.algorithms.registry import AlgorithmEntry, register_algorithm

register_algorithm(AlgorithmEntry(
    name="qlearning", config_class="rlexec.algorithms.qlearning.config:TabularQConfig",
    after_training="rlexec.algorithms.qlearning.export:after_training",
    description="tabular Q-learning of a LOB broker expert (spec 1.1), exported to a differentiable expert",
))
