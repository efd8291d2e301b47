"""Stage 2 of MoE-DPO: the Sequential Information Projection (SIP) mixture of the broker experts (spec 1.3).

* :mod:`.update`: ``SIPConfig`` and the weight update (KL I-projection with bisection for lambda,
  target from kappa, lambda cap, fixed share; ``mode: hedge`` the ablation), pure numpy
* :mod:`.mixture`: the three executions of a weighted mixture of experts: per-episode draw, per-step
  mixture, deterministic blend (actors for :func:`rlexec.evaluation.run_episodes`)
* :mod:`.gate`: ``Gate``, context features -> expert weights, fitted to the SIP weights (initialises the MoE-DPO gate)
* :mod:`.driver`: fits SIP weights per regime from the experts' episodes and saves them with the gate

SIP is a driver-side loop over evaluated episodes, not an RLlib algorithm, so it registers nothing in
:mod:`rlexec.algorithms.registry`; ``rlexec sip CONFIG`` runs it (:mod:`rlexec.cli.sip`). Importing
this package imports neither Ray nor torch.
"""
