"""The Q-table's state binning; it lives in :mod:`rlexec.policies.binning` so that exported experts
(policies layer, no Ray) index states with the very code the Q-learner used."""

from rlexec.policies.binning import DECILES, DEFAULT_LOB_EDGES, FeatureBins, StateBinning

__all__ = ["DECILES", "DEFAULT_LOB_EDGES", "FeatureBins", "StateBinning"]
