"""MoE-DPO (Stage 3 of "Learning to Trade with Preferences", spec 1.5) on RLlib's new API stack.

The method, top to bottom:

1. **Data.** A preference set (:mod:`.preferences`, spec 1.4): trajectories grouped by context, pairs
   ``(x, y+, y-)`` labelled by execution quality or speed, each trajectory's reference log-probability
   under every expert cached (computed once here from the frozen references where the set has none).
2. **Model** (:mod:`.module`). K experts ``pi_k`` initialised from the exported Stage-1 experts
   (``experts:`` folders of :class:`~rlexec.policies.expert.ExpertPolicy`), frozen copies as
   ``pi_ref,k``, and a gate: ``gate: moe`` (an MLP on x, started at ``initial_weights``, e.g. SIP's)
   or ``gate: mix`` (input-independent weights).
3. **Loss** (:mod:`.losses`, :mod:`.learner`). Stochastic EM on the Mixture-of-Bradley-Terry
   likelihood: E-step responsibilities in log space with stop-gradient, M-step responsibility-weighted
   DPO for the experts plus the gate cross-entropy (MoE) or the closed-form weight update (Mix);
   ``objective: marginal`` minimises ``-log sum_k w_k sigma(Delta_k)`` directly instead.
4. **Training step** (:class:`MoEDPO`). No env sampling: one iteration is ``num_epochs`` shuffled
   passes over the pairs in minibatches of ``minibatch_size`` pairs, one ``learner_group.update`` per
   minibatch (a minibatch of padded trajectories, never the whole set, is built in memory). Logged per
   iteration (means over the iteration's minibatches): ``log_likelihood``, ``preference_accuracy``,
   ``gate_entropy``, ``gate_weight/<regime>/<expert>``, ``logp_chosen/<expert>``, ``logp_rejected/<expert>``.

Evaluation is by rollout (:class:`~rlexec.algorithms.moe_dpo.module.MixturePolicy`), not here.

Defaults: spec 1.5's table, all [DEFAULT] (the paper's values were not found): beta 0.1, expert Adam
lr 1e-4, gate Adam lr 1e-3, 64 pairs per minibatch, grad clip 1.0, gate 2 x 64, Mix rate 0.05;
regularisers off. Every one is a ``training:`` key.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import LEARNER_RESULTS, LEARNER_UPDATE_TIMER, TIMERS
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger
from typing_extensions import Self

from rlexec.algorithms.moe_dpo import module as columns
from rlexec.algorithms.moe_dpo.learner import MoEDPOLearner, reward_differences
from rlexec.algorithms.moe_dpo.losses import (
    marginal_log_likelihood,
    preference_accuracy,
)
from rlexec.algorithms.moe_dpo.module import MoEDPOModule, sip_gate_network
from rlexec.algorithms.moe_dpo.preferences import (
    META_FILE,
    PreferenceSet,
    read_preferences,
)
from rlexec.errors import ConfigError, DataFileError

# The Learner's figures averaged over an iteration's minibatches (the rest keep the last value).
EPOCH_MEAN_PREFIXES = ("log_likelihood", "preference_accuracy", "gate_entropy", "load_balance", "expert_loss",
                       "gate_loss", "logp_chosen/", "logp_rejected/", "gate_weight/", "total_loss")


class MoEDPOConfig(AlgorithmConfig):
    """Config of :class:`MoEDPO`; ``training(...)`` documents every key."""

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or MoEDPO)
        self._is_online = False  # learns from a stored preference set; no EnvRunners are built
        self.preferences: str | None = None
        self.experts: list[str] | None = None
        self.expert_names: list[str] | None = None
        self.beta: float = 0.1
        self.per_step_normalise: bool = False
        self.objective: str = "em"
        self.gate: str = "moe"
        self.initial_weights: list[float] | None = None
        self.gate_init: str | None = None
        self.gate_hidden: list[int] = [64, 64]
        self.expert_hidden: list[int] = [64, 64]
        self.num_actions: int | None = None
        self.expert_lr: float = 1e-4
        self.gate_lr: float = 1e-3
        self.mix_rate: float = 0.05
        self.gate_entropy_coeff: float = 0.0
        self.load_balance_coeff: float = 0.0
        self.hard_gating: bool = False
        self.recompute_reference: bool = False
        self.validation_preferences: str | None = None
        self.minibatch_size = 64
        self.num_epochs = 1
        self.grad_clip = 1.0
        self.grad_clip_by = "global_norm"

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        preferences: str = NotProvided,
        experts: list[str] | None = NotProvided,
        expert_names: list[str] | None = NotProvided,
        beta: float = NotProvided,
        per_step_normalise: bool = NotProvided,
        objective: str = NotProvided,
        gate: str = NotProvided,
        initial_weights: list[float] | None = NotProvided,
        gate_init: str | None = NotProvided,
        gate_hidden: list[int] = NotProvided,
        expert_hidden: list[int] = NotProvided,
        num_actions: int | None = NotProvided,
        expert_lr: float = NotProvided,
        gate_lr: float = NotProvided,
        mix_rate: float = NotProvided,
        gate_entropy_coeff: float = NotProvided,
        load_balance_coeff: float = NotProvided,
        hard_gating: bool = NotProvided,
        recompute_reference: bool = NotProvided,
        validation_preferences: str | None = NotProvided,
        **kwargs,
    ) -> Self:
        """MoE-DPO settings; ``minibatch_size`` (pairs), ``num_epochs`` (passes per iteration) and
        ``grad_clip`` go to RLlib's.

        Args:
            preferences: folder of a preference set (:func:`~.preferences.write_preferences`).
            experts: K ExpertPolicy folders (initial experts and references); None: fresh MLPs of
                ``expert_hidden`` with ``num_actions`` actions (tests).
            expert_names: names of the K experts; default the preference set's ``expert_names``.
            beta: DPO temperature (spec 1.5: 0.1; sweep 0.01-0.5).
            per_step_normalise: divide each trajectory's log-ratio by its length (rlexec option).
            objective: ``"em"`` (explicit E/M steps) or ``"marginal"`` (direct ``-log sum w sigma(Delta)``).
            gate: ``"moe"`` (MLP on the context) or ``"mix"`` (input-independent weights).
            initial_weights: the gate's start (e.g. SIP's weights); default uniform.
            gate_init: the MoE gate to start from instead: an ``rlexec sip`` run folder (its gate, taken
                over exactly, architecture included, so ``gate_hidden`` is then ignored; the preference set
                must come from ``rlexec preferences`` of this rlexec, whose context features are the SIP
                gate's) or a torch state_dict file of a gate of ``gate_hidden``.
            expert_lr, gate_lr: Adam learning rates (spec 1.5: 1e-4, 1e-3).
            mix_rate: rho of Mix-DPO's ``w <- (1 - rho) w + rho mean q`` (spec 1.5: 0.05).
            gate_entropy_coeff, load_balance_coeff: optional regularisers (spec 1.5 suggests 1e-3, 1e-2).
            hard_gating: inference follows the arg-max expert of the gate only.
            recompute_reference: score every trajectory with this run's frozen references once at setup
                instead of using the set's cached ``ref_logp`` (needed when the cache came from other
                experts, e.g. a store scored with per-regime experts while this run uses one set).
            validation_preferences: a held-out preference set (same experts, same context features):
                after every iteration its ``validation_log_likelihood`` and
                ``validation_preference_accuracy`` are logged (the objective of the beta sweep).
        """
        super().training(**kwargs)
        values = {"preferences": preferences, "experts": experts, "expert_names": expert_names, "beta": beta,
                      "per_step_normalise": per_step_normalise, "objective": objective, "gate": gate,
                      "initial_weights": initial_weights, "gate_init": gate_init, "gate_hidden": gate_hidden,
                      "expert_hidden": expert_hidden, "num_actions": num_actions, "expert_lr": expert_lr, "gate_lr": gate_lr,
                      "mix_rate": mix_rate, "gate_entropy_coeff": gate_entropy_coeff,
                      "load_balance_coeff": load_balance_coeff, "hard_gating": hard_gating,
                      "recompute_reference": recompute_reference, "validation_preferences": validation_preferences}
        for name, value in values.items():
            if value is NotProvided:
                continue
            # Paths are resolved here, in the driver, against the directory the command runs in.
            if name in ("preferences", "gate_init", "validation_preferences") and value:
                value = str(Path(value).expanduser().resolve())
            elif name == "experts" and value:
                value = [expert_folder(v) for v in value]
            setattr(self, name, value)
        return self

    @override(AlgorithmConfig)
    def validate(self) -> None:
        super().validate()
        checks = {
            "beta": (isinstance(self.beta, (int, float)) and self.beta > 0, "> 0"),
            "objective": (self.objective in ("em", "marginal"), "'em' or 'marginal'"),
            "gate": (self.gate in ("moe", "mix"), "'moe' or 'mix'"),
            "expert_lr": (self.expert_lr >= 0, ">= 0"),
            "gate_lr": (self.gate_lr >= 0, ">= 0"),
            "mix_rate": (0 <= self.mix_rate <= 1, "in [0, 1]"),
            "gate_entropy_coeff": (self.gate_entropy_coeff >= 0, ">= 0"),
            "load_balance_coeff": (self.load_balance_coeff >= 0, ">= 0"),
            "minibatch_size": (isinstance(self.minibatch_size, int) and self.minibatch_size >= 1, "a positive integer"),
            "num_epochs": (isinstance(self.num_epochs, int) and self.num_epochs >= 1, "a positive integer"),
        }
        for name, (ok, rule) in checks.items():
            if not ok:
                raise ConfigError(f"MoEDPOConfig.training({name}=...): must be {rule}, got {getattr(self, name)!r}")
        if not self.preferences:
            raise ConfigError("MoEDPOConfig.training(preferences=...): the preference set folder is required")
        meta = self.preference_meta()
        names = self.resolved_expert_names()
        if self.experts is not None and len(self.experts) != len(names):
            raise ConfigError(f"training.experts: {len(self.experts)} folders for {len(names)} experts {names}")
        if self.initial_weights is not None and len(self.initial_weights) != len(names):
            raise ConfigError(f"training.initial_weights: {len(self.initial_weights)} weights for {len(names)} experts")
        if self.gate == "moe" and self.gate_init and Path(self.gate_init).is_dir():
            sip_gate_network(self.gate_init, list(meta.get("context_names") or []), names)  # fail here, not on a Learner
        if self.observation_space is None:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (int(meta["obs_dim"]),), np.float32)
        if self.action_space is None:
            self.action_space = gym.spaces.Discrete(self._num_actions())

    def preference_meta(self) -> dict[str, Any]:
        import json

        path = Path(self.preferences) / META_FILE
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise DataFileError(str(path), "preference set metadata not found (training.preferences)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFileError(str(path), f"corrupt JSON ({exc})") from None

    def resolved_expert_names(self) -> list[str]:
        return list(self.expert_names or self.preference_meta().get("expert_names") or [])

    def _num_actions(self) -> int:
        if self.experts:
            from rlexec.policies.expert import ExpertPolicy

            counts = {path: int(ExpertPolicy.load(path).num_actions) for path in self.experts}
            if len(set(counts.values())) != 1:
                raise ConfigError(f"training.experts: the experts disagree on the number of actions {counts}")
            return next(iter(counts.values()))
        if not self.num_actions or self.num_actions < 2:
            raise ConfigError("training.num_actions (>= 2) is required when no experts are given")
        return int(self.num_actions)

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        meta = self.preference_meta() if self.preferences else {}
        return super()._model_config_auto_includes | {
            "expert_names": self.resolved_expert_names() if self.preferences else list(self.expert_names or []),
            "expert_paths": list(self.experts) if self.experts else None, "expert_hidden": list(self.expert_hidden),
            "gate": self.gate, "context_dim": int(meta.get("context_dim") or 0), "gate_hidden": list(self.gate_hidden),
            "context_names": list(meta.get("context_names") or []),
            "initial_weights": list(self.initial_weights) if self.initial_weights else None,
            "gate_init": self.gate_init, "hard_gating": bool(self.hard_gating),
        }

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=MoEDPOModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self) -> type[MoEDPOLearner]:
        return MoEDPOLearner


def expert_folder(path: str) -> str:
    """An exported expert folder (``policy.json``) as given, or a training run's (or a folder of runs') exported
    expert ``<run>/expert`` of its newest run, as an absolute path; resolved once, when the config is built."""
    from rlexec.policies.checkpoints import CheckpointError, trained_run

    folder = Path(path).expanduser().resolve()
    if (folder / "policy.json").is_file():
        return str(folder)
    try:
        checkpoint, _ = trained_run(folder)
    except CheckpointError as exc:
        raise ConfigError(f"training.experts: {path} is neither an exported expert (policy.json) nor a training run "
                          f"({exc})") from None
    exported = checkpoint.parent.parent / "expert"
    if not (exported / "policy.json").is_file():
        raise ConfigError(f"training.experts: the run {checkpoint.parent.parent} has no exported expert ({exported})")
    return str(exported)


class PairBatches:
    """The preference set as padded minibatches of the Learner's columns (:mod:`.module`)."""

    def __init__(self, preferences: PreferenceSet, reference_log_probs=None):
        self.preferences = preferences
        ts = preferences.trajectories
        self.regime_names = preferences.regimes
        regime_index = {name: i for i, name in enumerate(self.regime_names)}
        self.contexts = np.stack([t.context for t in ts]).astype(np.float32)
        self.regimes = np.asarray([regime_index[t.regime] for t in ts], dtype=np.int64)
        missing = [i for i, t in enumerate(ts) if t.ref_logp is None]
        ref = np.zeros((len(ts), len(preferences.expert_names)))
        for i, t in enumerate(ts):
            if t.ref_logp is not None:
                ref[i] = t.ref_logp
        if missing:  # computed once from the frozen references: the cache the set lacks
            if reference_log_probs is None:
                raise ConfigError("the preference set caches no ref_logp for some trajectories and no reference "
                                  "policies were given to compute them")
            ref[missing] = reference_log_probs(self.padded(missing))
        self.ref_logp = ref.astype(np.float32)

    def __len__(self) -> int:
        return len(self.preferences)

    def padded(self, trajectory_ids) -> dict[str, np.ndarray]:
        ts = [self.preferences.trajectories[i] for i in trajectory_ids]
        steps = max(t.num_steps for t in ts)
        obs = np.zeros((len(ts), steps, ts[0].observations.shape[1]), dtype=np.float32)
        actions = np.zeros((len(ts), steps), dtype=np.int64)
        mask = np.zeros((len(ts), steps), dtype=np.float32)
        for row, t in enumerate(ts):
            obs[row, :t.num_steps], actions[row, :t.num_steps], mask[row, :t.num_steps] = t.observations, t.actions, 1.0
        return {"obs": obs, "actions": actions, "mask": mask}

    def batch(self, pair_ids: np.ndarray) -> dict[str, np.ndarray]:
        chosen, rejected = self.preferences.chosen[pair_ids], self.preferences.rejected[pair_ids]
        y_plus, y_minus = self.padded(chosen), self.padded(rejected)
        return {
            columns.CONTEXT: self.contexts[chosen], columns.REGIME: self.regimes[chosen],
            columns.CHOSEN_OBS: y_plus["obs"], columns.CHOSEN_ACTIONS: y_plus["actions"],
            columns.CHOSEN_MASK: y_plus["mask"],
            columns.REJECTED_OBS: y_minus["obs"], columns.REJECTED_ACTIONS: y_minus["actions"],
            columns.REJECTED_MASK: y_minus["mask"],
            columns.REF_LOGP_CHOSEN: self.ref_logp[chosen], columns.REF_LOGP_REJECTED: self.ref_logp[rejected],
        }


def _reference_log_probs(learner, padded: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    with torch.no_grad():
        return module.trajectory_log_probs(torch.from_numpy(padded["obs"]), torch.from_numpy(padded["actions"]),
                                           torch.from_numpy(padded["mask"]), reference=True).numpy()


def _score_pairs(learner, batch: dict[str, np.ndarray]) -> dict[str, float]:
    import torch


    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    tensors = {key: torch.from_numpy(value) for key, value in batch.items()}
    with torch.no_grad():
        out = module.forward_train(tensors)
        delta = reward_differences(learner.config, tensors, out)
        log_gate = out[columns.LOG_GATE]
        return {"validation_log_likelihood": float(marginal_log_likelihood(log_gate, delta).mean()),
                "validation_preference_accuracy": float(preference_accuracy(log_gate, delta))}


def _set_regime_names(learner, names: list[str]) -> None:
    learner.regime_names = list(names)


class MoEDPO(Algorithm):
    """Offline: each iteration = ``num_epochs`` shuffled passes over the preference pairs."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MoEDPOConfig:
        return MoEDPOConfig()

    @override(Algorithm)
    def setup(self, config: MoEDPOConfig) -> None:
        super().setup(config)
        preferences = read_preferences(self.config.preferences)
        # a run that scores the trajectories with its own references may name its experts as it likes
        if not self.config.recompute_reference and preferences.expert_names != self.config.resolved_expert_names() \
                and any(t.ref_logp is not None for t in preferences.trajectories):
            raise ConfigError(f"training.expert_names {self.config.resolved_expert_names()} differ from the experts "
                              f"whose reference log-probabilities the preference set caches {preferences.expert_names}")
        if not len(preferences):
            raise DataFileError(str(self.config.preferences), "holds no preference pairs")
        self.pairs = self._pair_batches(preferences)
        self.learner_group.foreach_learner(lambda learner: _set_regime_names(learner, self.pairs.regime_names))
        self.validation = None
        if self.config.validation_preferences:
            self.validation = self._pair_batches(read_preferences(self.config.validation_preferences))

    def _pair_batches(self, preferences: PreferenceSet) -> PairBatches:
        if self.config.recompute_reference:
            preferences = preferences.without_reference_cache()
        return PairBatches(preferences, lambda padded: self._on_learner(lambda learner: _reference_log_probs(learner, padded)))

    def _on_learner(self, func):
        """``func(learner)`` on the (first) Learner, its result returned (an error raised here)."""
        return next(iter(self.learner_group.foreach_learner(func))).get()

    @override(Algorithm)
    def restore_from_path(self, path, *args, **kwargs):
        # Algorithm's override syncs the restored weights to EnvRunners, which an offline algorithm
        # has none of (ray_notes: "offline algorithm fails ... on a missing sync_weights target").
        return super(Algorithm, self).restore_from_path(path, *args, **kwargs)

    @override(Algorithm)
    def training_step(self) -> None:
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            # The pass order depends on (seed, iteration) only, so a resumed run shuffles as an unbroken one.
            shuffle = np.random.default_rng(np.random.SeedSequence(self.config.seed or 0, spawn_key=(self.iteration,)))
            for _ in range(self.config.num_epochs):
                order = shuffle.permutation(len(self.pairs))
                for start in range(0, len(order), self.config.minibatch_size):
                    ids = order[start:start + self.config.minibatch_size]
                    batch = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(self.pairs.batch(ids))}, env_steps=len(ids))
                    results = self.learner_group.update(batch=batch)
                    # The loss figures are averaged over the iteration's pairs below (a regime's gate
                    # weights over the minibatches that hold it), not taken from the last minibatch.
                    for learner_results in results:
                        figures = learner_results.get(DEFAULT_MODULE_ID, {})
                        for key in [k for k in figures if isinstance(k, str) and k.startswith(EPOCH_MEAN_PREFIXES)]:
                            sums[key] = sums.get(key, 0.0) + float(figures.pop(key).peek()) * len(ids)
                            counts[key] = counts.get(key, 0) + len(ids)
                    self.metrics.aggregate(results, key=LEARNER_RESULTS)
        means = {key: total / counts[key] for key, total in sums.items()}
        if self.validation is not None:
            means.update(self._validation_figures())
        # Logged through a MetricsLogger of their own and aggregated, as the Learner's figures are.
        iteration_figures = MetricsLogger()
        for key, value in means.items():
            iteration_figures.log_value((DEFAULT_MODULE_ID, key), value, window=1)
        self.metrics.aggregate([iteration_figures.reduce()], key=LEARNER_RESULTS)

    def _validation_figures(self) -> dict[str, float]:
        """Held-out ``log sum_k w_k sigma(Delta_k)`` and preference accuracy, means over the validation pairs."""
        config, validation = self.config, self.validation
        totals = {"validation_log_likelihood": 0.0, "validation_preference_accuracy": 0.0}
        for start in range(0, len(validation), config.minibatch_size):
            ids = np.arange(start, min(start + config.minibatch_size, len(validation)))
            batch = validation.batch(ids)
            figures = self._on_learner(partial(_score_pairs, batch=batch))
            for key in totals:
                totals[key] += figures[key] * len(ids)
        return {key: total / len(validation) for key, total in totals.items()}
