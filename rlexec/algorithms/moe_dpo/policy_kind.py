"""The trained MoE-DPO mixture as a policy of ``rlexec regimes`` (``kind: moe_dpo``).

```yaml
- {name: moe_dpo_quality, kind: moe_dpo, run: runs/train/moe_dpo_quality, act: greedy, gating: soft}
```

``run`` is an ``rlexec train`` run of ``configs/moe_dpo_*.yaml`` (a run folder, a folder of runs: the
newest, or a checkpoint); only its weights-only copy is read (:func:`rlexec.policies.checkpoints.load_module`,
no unpickling). The actor is ``pi(.|s, x) = sum_k w_k(x) pi_k(.|s)``: ``act`` ``greedy`` (default,
the mode of the mixture) or ``sampled`` (seeded by ``sample_seed``, default the regime's first
episode seed); ``gating`` ``soft`` (default, the weights ``w(x)``) or ``hard`` (only ``argmax_k
w_k(x)``; default: what the run was trained with).

The gate input x of episode row i is :func:`rlexec.algorithms.sip.gate.context_features` (the same
function the preference set was built with) of what is known at that episode's window start: its
first observation (the observation of the first ``actions`` call after the actor is built, or
:meth:`MoEDPOActor.bind`), the regime, and the order's side, quantity and window start, which the
actor reads by resetting the regime's env with the episode's seed (``context.seed + i``, the seed of
episode row i in ``rlexec regimes``). Later observations never change the weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlexec.errors import ConfigError

ACTS, GATINGS = ("greedy", "sampled"), ("soft", "hard")
REGIME_PREFIX = "regime_"  # rlexec.algorithms.sip.gate.context_names


class MoEDPOActor:
    """The mixture for a batch of episode rows; weights per row fixed by each row's context.

    ``identity(rows)`` gives the rows' ``side``, ``quantity`` and ``window_start_s`` (as
    :meth:`rlexec.evaluation.episodes.LOBEpisodes.identity`); it is called once, at the first
    observation.
    """

    def __init__(self, module: Any, *, regime: str, identity, act: str = "greedy", hard: bool | None = None,
                 seed: int = 0, name: str = "moe_dpo"):
        from rlexec.algorithms.sip.gate import context_names

        if act not in ACTS:
            raise ConfigError(f"policy {name!r}: act must be one of {list(ACTS)}, got {act!r}")
        self.module, self.name, self.act, self.regime = module, name, act, regime
        if hard is not None:
            module.hard_gating = bool(hard)
        self.expert_names = list(module.expert_names)
        names = list(module.model_config.get("context_names") or [])
        self.regimes = [n[len(REGIME_PREFIX):] for n in names if n.startswith(REGIME_PREFIX)]
        if module.gate_kind == "moe" and names != context_names(self.regimes):
            raise ConfigError(f"policy {name!r}: the run's gate was trained on context features {names or '(unrecorded)'}, "
                              f"not rlexec's context_features; retrain on preferences built by this rlexec")
        if module.gate_kind == "moe" and regime not in self.regimes:
            raise ConfigError(f"policy {name!r}: the run's gate knows the regimes {self.regimes}, not {regime!r}")
        self._identity = identity
        self._generator = torch.Generator().manual_seed(int(seed))
        self._log_weights: torch.Tensor | None = None  # (E, K) log w_k(x_i), fixed at the first observation

    def context(self, first_observations: np.ndarray) -> np.ndarray:
        """(E, d) gate inputs x of the episode rows whose first observations these are."""
        from rlexec.algorithms.sip.gate import context_features, lob_observation_names

        obs = np.asarray(first_observations, dtype=np.float64)
        return context_features(obs, lob_observation_names(obs.shape[1]), self._identity(len(obs)), self.regime,
                                self.regimes)

    def bind(self, first_observations: np.ndarray) -> None:
        """Fix each episode row's gate weights from its first observation."""
        with torch.no_grad():
            if self.module.gate_kind == "moe":
                x = torch.as_tensor(self.context(first_observations), dtype=torch.float32)
                self._log_weights = self.module.log_gate(x, len(x))
            else:
                self._log_weights = self.module.log_gate(None, len(first_observations))

    def _log_probs(self, observations: np.ndarray) -> torch.Tensor:
        """(E, A) ``log pi(a|s_i, x_i)``; the first call binds the rows' contexts."""
        if self._log_weights is None:
            self.bind(observations)
        if len(observations) != len(self._log_weights):
            raise ConfigError(f"policy {self.name!r}: {len(observations)} observations for "
                              f"{len(self._log_weights)} episode rows (one row per episode)")
        obs = torch.as_tensor(np.asarray(observations, dtype=np.float32))
        with torch.no_grad():
            return self.module.mixture_log_probs(obs, self._log_weights)

    def actions(self, observations: np.ndarray) -> np.ndarray:
        log_probs = self._log_probs(observations)
        if self.act == "greedy":
            return log_probs.argmax(dim=-1).numpy()
        return torch.multinomial(log_probs.exp(), 1, generator=self._generator).squeeze(-1).numpy()

    def log_probs(self, observations: np.ndarray, actions) -> np.ndarray:
        """(E,) ``log pi(a_i|s_i, x_i)`` of one step of every episode row."""
        index = torch.as_tensor(np.asarray(actions, dtype=np.int64).reshape(-1, 1))
        return self._log_probs(observations).gather(-1, index).squeeze(-1).numpy().astype(np.float64)

    def gate_weights(self) -> np.ndarray:
        """(E, K) ``w(x_i)`` of every episode row (soft, whatever ``gating`` acts with)."""
        if self._log_weights is None:
            raise ConfigError(f"policy {self.name!r}: no episode seen yet (the weights come from the first observation)")
        return self._log_weights.exp().numpy().astype(np.float64)

    def mixture_weights(self) -> dict[str, np.ndarray]:
        """Each expert's gate weight over the episodes (for the regimes plot)."""
        weights = self.gate_weights()
        return {name: weights[:, k] for k, name in enumerate(self.expert_names)}


def lob_identity(env_config: Any, seed: int):
    """``identity(rows)`` of the LOB episodes ``seed, seed + 1, ...`` of ``env_config`` (reset, not run)."""

    def identity(rows: int) -> dict[str, list]:
        from rlexec.evaluation.episodes import LOBEpisodes

        episodes = LOBEpisodes(env_config, episodes=rows, seed=seed)
        episodes.reset()
        return episodes.identity().to_pydict()

    return identity


def load_moe_dpo_module(run: Any, *, policy: str) -> Any:
    """The trained module of an ``rlexec train`` run of MoE-DPO, weights only; a one-line ConfigError otherwise."""
    from rlexec.algorithms.moe_dpo.module import MoEDPOModule
    from rlexec.policies.checkpoints import CheckpointError, load_module

    try:
        module = load_module(run)
    except CheckpointError as exc:
        raise ConfigError(f"policy {policy!r}: run {run}: {exc}") from None
    if not isinstance(module, MoEDPOModule):
        raise ConfigError(f"policy {policy!r}: run {run} is not a MoE-DPO run (its module is {type(module).__name__})")
    return module.eval()


def moe_dpo_policy(spec: Any, context: Any) -> MoEDPOActor:
    """Factory of ``kind: moe_dpo`` (see the module docstring)."""
    run = context.path(spec.param("run"), policy=spec.name)
    module = load_moe_dpo_module(run, policy=spec.name)
    gating = spec.param("gating", None)
    if gating is not None and gating not in GATINGS:
        raise ConfigError(f"policy {spec.name!r}: gating must be one of {list(GATINGS)}, got {gating!r}")
    return MoEDPOActor(module, regime=context.regime, identity=lob_identity(context.env_config, context.seed),
                       act=spec.param("act", "greedy"), hard=None if gating is None else gating == "hard",
                       seed=int(spec.param("sample_seed", context.seed)), name=spec.name)
