"""rlexec: reinforcement learning for optimal trade execution.

Layers, each importing only from itself and the ones before it (checked by ``tests/test_layering.py``)::

    errors, configs, provenance -> data, market -> strategies -> envs -> policies -> evaluation
                                -> algorithms -> training -> cli
"""

__version__ = "0.1.0"
