"""Logic-Q (spec section 3): a market-trend program sketch that adjusts frozen policies post hoc.

The generic core, shared by the execution study and the daily trading task:

* :mod:`~rlexec.logicq.features`: the trend inputs vol_g, dr_g, gr_g (spec 3.1) of past closes only;
* :mod:`~rlexec.logicq.sketch`: the five-trend conditional program and its typed holes (13 / 23);
* :mod:`~rlexec.logicq.adjust`: what a trend's hole does to the frozen policy (temperature, ensemble weights);
* :mod:`~rlexec.logicq.search`: Bayesian optimisation of the holes on Ray Tune, with a pluggable objective.
"""
