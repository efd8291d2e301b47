"""Training driver: YAML -> RLlib config, run folders, checkpoints, resume, Tune sweeps. Names no algorithm: it reads rlexec.algorithms.registry."""
