"""Tabular Q-learning of the LOB broker experts (spec 1.1) as an RLlib new-API-stack algorithm.

Method (Stage 1 of "Learning to Trade with Preferences", spec 1.1). The broker rule of the env
(``twap``, ``vwap``, ``is``, ``pov``) sizes each child order; a Q-table chooses how to place it
(0 market, 1 limit at the near touch, 2 hold). One table per broker (and regime) is one expert::

    Q(s,a) <- Q(s,a) + alpha_k [ r + gamma max_a' Q(s',a') - Q(s,a) ]      (0 bootstrap at termination)

Spec defaults [CODE, spec 1.1]: gamma 0.9; alpha_0 0.1, alpha <- max(0.01, 0.995 alpha) "every
update"; epsilon_0 0.9, epsilon <- max(0.1, 0.995 epsilon) "every action", epsilon-greedy.

rlexec's choices [DEFAULT], all configurable through ``TabularQConfig.training(...)``:

* **State.** The source hashes ``tuple(state.astype(int))``, which collapses almost every continuous
  feature to 0 (spec 1.1 rlexec note 1). We bin explicitly (:class:`StateBinning`): holdings_pct and
  time_pct in 10 equal bins, diff_pct in 5, imbalance_1 in 3, spread_bps in 3, return lags dropped;
  the state index is the mixed-radix number of the bin indices (first feature most significant):
  10 x 10 x 5 x 3 x 3 = 4,500 states. Edges (measured on regime ``baseline``, all four brokers):

  - diff_pct = executed/Q - elapsed: (-0.05, -0.005, 0.005, 0.05). TWAP/VWAP sit within 0.04 of
    schedule (the broker catches up each step), IS is ahead by up to 0.19 (front-loaded), POV
    ranges over +-0.6; the bins read "far behind / behind / on schedule / ahead / far ahead".
  - imbalance_1 in [-1, 1]: (-1/3, 1/3), roughly terciles (quartiles measured at -0.42 / +0.40).
  - spread_bps: (1.5, 2.5), i.e. 1 tick / 2 ticks / 3+ ticks at the simulator's ~$100 price (1 tick
    = 1 bp); measured quartiles 1.0 / 2.0 / 3.0 bp.

  Bin k of a feature covers ``[edges[k-1], edges[k])``; values outside the edges fall in the end bins.
* **Batched, synchronous update.** RLlib samples a batch of transitions from the EnvRunners; the
  Learner minimises ``0.5 sum_i (target_i - Q(s_i,a_i))^2 / n(s_i,a_i)`` by plain SGD with learning
  rate alpha, where ``n(s,a)`` is how often (s,a) occurs in the batch and the target uses the
  table before the update (no gradient through it). The gradient step is then exactly
  ``Q(s,a) += alpha * mean_i(target_i - Q(s,a))`` for each visited pair: the tabular update with
  the pair's targets averaged over the batch. Without the 1/n weighting a pair seen n times would
  move by ``n alpha`` (unstable once ``n alpha > 2``).
* **alpha decay unit = one such batched update** (one ``Learner.update`` per training iteration,
  ``num_epochs`` passes each): ``alpha_k = max(alpha_final, alpha * alpha_decay**k)``. Decaying per
  transition, as the source's one-transition updates do, would reach the 0.01 floor after 460
  transitions, less than one 780-step LOB episode. The update count is a module buffer, so it is
  checkpointed with the table.
* **epsilon decay unit = one env step (action)**, as the spec says, but applied per iteration:
  the Algorithm computes ``max(epsilon_final, epsilon * epsilon_decay**N)`` from N = env steps
  sampled so far and writes it into the module's ``epsilon`` buffer; the weight sync ships it to
  the EnvRunners. Note that with the spec defaults epsilon reaches its floor after 439 actions, within
  the first LOB episode (780 decisions of 30 s): in practice training explores at epsilon = 0.1.
* Exploration samples from the epsilon-greedy distribution ``eps/A + (1-eps) 1[a greedy]/n_greedy``
  (ties among greedy actions are broken at random; at Q = 0 every action is greedy); inference is
  the argmax of Q (lowest index on ties).

How to run (the ``rlexec train`` driver builds exactly this)::

    from rlexec.algorithms.qlearning import TabularQConfig
    from rlexec.envs.lob_env import LOBExecutionEnv
    config = (TabularQConfig().environment(LOBExecutionEnv, env_config={"regime": "baseline", "broker": "twap"})
              .env_runners(num_env_runners=2).training(gamma=0.9).debugging(seed=0))
    algo = config.build_algo(); algo.train()

* **Export** (:func:`after_training`): 20 episodes of the trained epsilon-greedy policy give the
  states; ``softmax(Q / expert_temperature)`` (spec: tau_Q = 1) is distilled into a 2 x 64 MLP
  (:mod:`rlexec.algorithms.expert_policy`), saved in ``<run>/expert``.

Results to expect (``configs/qlearning_twap.yaml``: 60 iterations, 120 baseline episodes, seed 0;
20 evaluation episodes on the same seeds for every policy). Episode returns swing by ~20 bp with
the market's drift while the placement choice is worth ~1 bp, so compare on paired seeds. Greedy
table - always-market: +0.26 +- 0.30 bp; greedy - always-limit: -1.0 +- 0.3 bp (gamma 0.99: +0.33 +-
0.15 and -0.95 +- 0.15). The greedy policy holds in ~42% of steps and sends market orders in ~30%:
with ~5 visits per (state, market/limit) pair the table does not resolve a 1.5 bp / 780-step edge
through per-step reward noise; spec 1.1 note 2 suggests ~2,000 episodes per expert. With Q gaps of
~0.01 (reward unit bp), tau_Q = 1 gives a near-uniform Boltzmann expert (max probability ~0.35).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from typing_extensions import Self

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.connectors.learner import (
    AddNextObservationsFromEpisodesToTrainBatch,
    AddObservationsFromEpisodesToBatch,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rlexec.envs.lob_env import OBSERVATION_NAMES
from rlexec.errors import ConfigError

QF_PREDS = "q_values"  # forward_train output: Q(s, .) for every observation, shape (B, num_actions)
STATE_INDEX = "state_index"  # forward_train output: the binned state index of every observation


# ---- state binning ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class FeatureBins:
    """One observation feature cut into ``len(edges) + 1`` bins."""

    name: str  # label (a LOB ``OBSERVATION_NAMES`` entry for the LOB env)
    index: int  # position of the feature in the observation vector
    edges: tuple[float, ...]  # strictly increasing cut points, in the feature's unit; bin k = [edges[k-1], edges[k])

    def __post_init__(self) -> None:
        edges = tuple(float(e) for e in self.edges)
        object.__setattr__(self, "edges", edges)
        if self.index < 0:
            raise ConfigError(f"binning.{self.name}.index must be >= 0, got {self.index}")
        if any(not math.isfinite(e) for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ConfigError(f"binning.{self.name}.edges must be finite and strictly increasing, got {list(edges)}")

    @property
    def num_bins(self) -> int:
        return len(self.edges) + 1


def _lob_feature(name: str, edges: Sequence[float]) -> FeatureBins:
    return FeatureBins(name=name, index=OBSERVATION_NAMES.index(name), edges=tuple(edges))


DECILES = tuple(k / 10 for k in range(1, 10))
# rlexec defaults (spec 1.1 rlexec note 1 gives the bin counts; the edges are ours, see module docstring).
DEFAULT_LOB_EDGES: Mapping[str, tuple[float, ...]] = MappingProxyType({
    "holdings_pct": DECILES,  # executed / Q, 10 equal bins
    "time_pct": DECILES,  # elapsed fraction, 10 equal bins
    "diff_pct": (-0.05, -0.005, 0.005, 0.05),  # holdings - time: far behind / behind / on / ahead / far ahead
    "imbalance_1": (-1 / 3, 1 / 3),  # top-of-book (bid - ask) / (bid + ask): ask-heavy / balanced / bid-heavy
    "spread_bps": (1.5, 2.5),  # 1 tick / 2 ticks / 3+ ticks at ~$100
})


@dataclass(frozen=True)
class StateBinning:
    """Observation -> state index: per-feature bins combined as a mixed-radix number.

    >>> x, y = FeatureBins(name="x", index=0, edges=(0.5,)), FeatureBins(name="y", index=1, edges=(0.0, 1.0))
    >>> b = StateBinning((x, y))
    >>> b.num_states, b.index(np.array([[1.0, 0.5], [-3.0, 9.0]])).tolist()
    (6, [4, 2])
    """

    features: tuple[FeatureBins, ...] = field(
        default_factory=lambda: tuple(_lob_feature(n, e) for n, e in DEFAULT_LOB_EDGES.items())
    )

    def __post_init__(self) -> None:
        if not self.features:
            raise ConfigError("binning: at least one feature is needed")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ConfigError(f"binning: feature names must be unique, got {names}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(f.num_bins for f in self.features)

    @property
    def num_states(self) -> int:
        return int(np.prod(self.shape))

    @property
    def strides(self) -> tuple[int, ...]:
        """Place values of the mixed-radix index (the last feature varies fastest)."""
        return tuple(int(np.prod(self.shape[k + 1:])) for k in range(len(self.shape)))

    def bins(self, observations: np.ndarray) -> np.ndarray:
        """Per-feature bin numbers, shape (N, num_features)."""
        obs = np.atleast_2d(np.asarray(observations))
        if not np.issubdtype(obs.dtype, np.floating):
            obs = obs.astype(np.float64)
        # Edges in the observations' precision, as in index_torch, so that both agree at the edges.
        return np.stack([np.digitize(obs[:, f.index], np.asarray(f.edges, dtype=obs.dtype)) for f in self.features],
                        axis=-1)

    def index(self, observations: np.ndarray) -> np.ndarray:
        """State index of each observation row (int64, shape (N,))."""
        return (self.bins(observations) * np.asarray(self.strides)).sum(axis=-1).astype(np.int64)

    def index_torch(self, observations: torch.Tensor) -> torch.Tensor:
        """The same index computed in torch (``bucketize(right=True)`` == ``np.digitize``)."""
        obs = observations.reshape(-1, observations.shape[-1])
        index = torch.zeros(obs.shape[0], dtype=torch.long, device=obs.device)
        for feature, stride in zip(self.features, self.strides):
            edges = torch.tensor(feature.edges, dtype=obs.dtype, device=obs.device)
            index += torch.bucketize(obs[:, feature.index].contiguous(), edges, right=True) * stride
        return index

    def to_dict(self) -> dict[str, Any]:
        return {"features": [{"name": f.name, "index": f.index, "edges": list(f.edges)} for f in self.features]}

    @classmethod
    def from_any(cls, value: Any) -> "StateBinning":
        """A StateBinning, ``{"features": [{name, index, edges}, ...]}`` / a list of such features (any
        env), or a mapping ``{lob_feature_name: edges}`` that edits the LOB default: a named default
        feature gets new edges, another LOB observation name is added, ``None`` drops a feature."""
        if isinstance(value, StateBinning):
            return value
        if isinstance(value, Mapping) and "features" in value:
            value = value["features"]
        if isinstance(value, Mapping):
            edges = dict(DEFAULT_LOB_EDGES)
            for name, new in value.items():
                if name not in OBSERVATION_NAMES:
                    raise ConfigError(f"binning: unknown LOB feature {name!r}; known: {list(OBSERVATION_NAMES)}")
                if new is None:
                    edges.pop(name, None)
                else:
                    edges[name] = tuple(new)
            return cls(tuple(_lob_feature(n, e) for n, e in edges.items()))
        if isinstance(value, Sequence) and not isinstance(value, str):
            try:
                return cls(tuple(f if isinstance(f, FeatureBins) else FeatureBins(**f) for f in value))
            except TypeError as exc:
                raise ConfigError(f"binning: each feature needs name, index and edges ({exc})") from None
        raise ConfigError(f"binning: expected a StateBinning, a list of features or a mapping, got {value!r}")


# ---- the RLModule: a Q-table -------------------------------------------------------------------------
class TabularQModule(TorchRLModule):
    """Q-table over binned observations, ``model_config``: ``binning`` (``StateBinning.to_dict()``) and
    ``epsilon`` (initial exploration rate).

    State (all in ``state_dict``, so weight syncs and checkpoints carry it): ``q_table`` (the only
    parameter, zeros at start), ``epsilon`` (set by the Algorithm), ``num_updates`` (batched updates
    done, for the alpha schedule), ``update_counts`` (TD terms applied per (s, a), for diagnostics).
    """

    @override(TorchRLModule)
    def setup(self) -> None:
        self.binning = StateBinning.from_any(self.model_config["binning"])
        obs_dim = int(np.prod(self.observation_space.shape))
        too_far = [f.name for f in self.binning.features if f.index >= obs_dim]
        if too_far:
            raise ConfigError(f"binning: feature(s) {too_far} index past the {obs_dim}-dim observation")
        num_actions = int(self.action_space.n)
        self.q_table = torch.nn.Parameter(torch.zeros(self.binning.num_states, num_actions))
        self.register_buffer("epsilon", torch.tensor(float(self.model_config.get("epsilon", 0.0))))
        self.register_buffer("num_updates", torch.tensor(0, dtype=torch.long))
        self.register_buffer("update_counts", torch.zeros(self.binning.num_states, num_actions))

    def state_index(self, obs: torch.Tensor) -> torch.Tensor:
        return self.binning.index_torch(obs)

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Q(s, .) for a batch of raw observations, shape (B, num_actions)."""
        return self.q_table[self.state_index(torch.as_tensor(obs, dtype=torch.float32))]

    @override(TorchRLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # Greedy: RLlib's default GetActions connector takes the argmax of these logits.
        with torch.no_grad():
            return {Columns.ACTION_DIST_INPUTS: self.q_values(batch[Columns.OBS])}

    @override(TorchRLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # Epsilon-greedy as a categorical distribution, so GetActions samples it and records logp.
        # (Returning Columns.ACTIONS directly also works in 2.60: GetActions passes it through.)
        with torch.no_grad():
            q = self.q_values(batch[Columns.OBS])
            greedy = (q == q.max(dim=-1, keepdim=True).values).float()
            eps = self.epsilon.clamp(0.0, 1.0)
            probs = eps / q.shape[-1] + (1.0 - eps) * greedy / greedy.sum(dim=-1, keepdim=True)
            return {Columns.ACTION_DIST_INPUTS: torch.log(probs.clamp_min(1e-30))}

    @override(TorchRLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        index = self.state_index(batch[Columns.OBS])
        return {QF_PREDS: self.q_table[index], STATE_INDEX: index}

    def set_epsilon(self, value: float) -> None:
        self.epsilon.fill_(float(value))


# ---- the Learner: the tabular TD update as an SGD step ------------------------------------------------
class TabularQLearner(TorchLearner):
    """Loss = count-weighted half squared TD error; SGD at lr alpha = the batched tabular update."""

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        # The targets need s' of every transition: RLlib's own piece, placed right after the OBS piece
        # (as DQN does), adds Columns.NEXT_OBS from the episodes.
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.insert_after(
                AddObservationsFromEpisodesToBatch, AddNextObservationsFromEpisodesToTrainBatch()
            )

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        # Plain SGD, no momentum: one step = Q += lr * (-grad). lr is set per update (alpha schedule),
        # so no RLlib lr scheduler is registered.
        params = self.get_parameters(self.module[module_id])
        self.register_optimizer(module_id=module_id, optimizer=torch.optim.SGD(params, lr=self.config.alpha),
                                params=params, lr_or_lr_schedule=None)

    @override(TorchLearner)
    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            module = self.module[module_id].unwrapped()
            alpha = self.config.alpha_at(int(module.num_updates))
            self._set_optimizer_lr(self.get_optimizer(module_id), lr=alpha)
            self.metrics.log_value((module_id, "alpha"), alpha, window=1)

    @override(TorchLearner)
    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            self.module[module_id].unwrapped().num_updates += 1

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        q = fwd_out[QF_PREDS]
        actions = batch[Columns.ACTIONS].long()
        q_taken = q.gather(-1, actions.unsqueeze(-1)).squeeze(-1)

        # Target r + gamma max_a' Q(s', a') from the table before this update; 0 bootstrap at termination
        # (a truncated or chunked episode still bootstraps from its last observation).
        with torch.no_grad():
            q_next = module.q_values(batch[Columns.NEXT_OBS]).max(dim=-1).values
            not_done = 1.0 - batch[Columns.TERMINATEDS].float()
            target = batch[Columns.REWARDS].float() + config.gamma * not_done * q_next
        td = target - q_taken

        # Weight each term by 1/n(s,a) so the SGD step moves each visited pair by alpha * mean TD error
        # (module docstring); the sum, not the mean, keeps alpha the per-pair step size.
        pair = fwd_out[STATE_INDEX] * q.shape[-1] + actions
        count = torch.bincount(pair)[pair].float()
        loss = 0.5 * (td.pow(2) / count).sum()

        with torch.no_grad():
            module.update_counts.view(-1).index_add_(0, pair, torch.ones_like(td))
        self.metrics.log_value((module_id, "td_error"), td.abs().mean().item(), window=1)
        self.metrics.log_value((module_id, "q_taken_mean"), q_taken.mean().item(), window=1)
        self.metrics.log_value((module_id, "state_action_pairs_in_batch"), int(torch.unique(pair).numel()), window=1)
        return loss


# ---- config and algorithm -----------------------------------------------------------------------------
class TabularQConfig(AlgorithmConfig):
    """Config of :class:`TabularQ`; see the module docstring for what each default means."""

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or TabularQ)
        self.gamma: float = 0.9  # spec 1.1
        self.alpha: float = 0.1  # spec 1.1: initial learning rate
        self.alpha_decay: float = 0.995  # spec 1.1: factor per batched update (rlexec: the decay unit)
        self.alpha_final: float = 0.01  # spec 1.1: floor
        self.epsilon: float = 0.9  # spec 1.1: initial exploration rate
        self.epsilon_decay: float = 0.995  # spec 1.1: factor per env step (action)
        self.epsilon_final: float = 0.1  # spec 1.1: floor
        self.binning: StateBinning = StateBinning()  # rlexec default, spec 1.1 rlexec note 1
        self.train_batch_size_per_learner: int = 1560  # rlexec: two 780-step LOB episodes per update
        self.num_epochs: int = 1  # one synchronous sweep of TD targets per batch
        # Export to a differentiable expert (after_training), spec 1.1 [DEFAULT] and rlexec defaults:
        self.expert_temperature: float = 1.0  # spec 1.1: tau_Q of softmax(Q / tau_Q), in reward units (bp)
        self.expert_episodes: int = 20  # rlexec: rollouts of the trained epsilon-greedy policy for the states
        self.expert_epochs: int = 60  # rlexec: distillation epochs over those states

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        alpha: float = NotProvided,
        alpha_decay: float = NotProvided,
        alpha_final: float = NotProvided,
        epsilon: float = NotProvided,
        epsilon_decay: float = NotProvided,
        epsilon_final: float = NotProvided,
        binning: Any = NotProvided,
        expert_temperature: float = NotProvided,
        expert_episodes: int = NotProvided,
        expert_epochs: int = NotProvided,
        **kwargs,
    ) -> Self:
        """Q-learning settings; ``gamma``, ``train_batch_size_per_learner``, ``num_epochs`` go to RLlib's.

        Args:
            alpha, alpha_decay, alpha_final: learning rate schedule, per batched update.
            epsilon, epsilon_decay, epsilon_final: exploration schedule, per env step sampled.
            binning: a :class:`StateBinning`, a list of ``{name, index, edges}`` features, or a mapping
                ``{lob_feature: edges | None}`` editing the LOB default.
            expert_temperature, expert_episodes, expert_epochs: the expert export of ``after_training``.
        """
        super().training(**kwargs)
        for name, value in (("alpha", alpha), ("alpha_decay", alpha_decay), ("alpha_final", alpha_final),
                            ("epsilon", epsilon), ("epsilon_decay", epsilon_decay),
                            ("epsilon_final", epsilon_final)):
            if value is not NotProvided:
                setattr(self, name, float(value))
        if binning is not NotProvided:
            self.binning = StateBinning.from_any(binning)
        if expert_temperature is not NotProvided:
            self.expert_temperature = float(expert_temperature)
        if expert_episodes is not NotProvided:
            self.expert_episodes = int(expert_episodes)
        if expert_epochs is not NotProvided:
            self.expert_epochs = int(expert_epochs)
        return self

    @override(AlgorithmConfig)
    def validate(self) -> None:
        super().validate()
        checks = {
            "gamma": (0.0 <= self.gamma <= 1.0, "in [0, 1]"),
            "alpha": (0.0 < self.alpha <= 1.0, "in (0, 1]"),
            "alpha_decay": (0.0 < self.alpha_decay <= 1.0, "in (0, 1] (1 = constant)"),
            "alpha_final": (0.0 <= self.alpha_final <= self.alpha, "in [0, alpha]"),
            "epsilon": (0.0 <= self.epsilon <= 1.0, "in [0, 1]"),
            "epsilon_decay": (0.0 < self.epsilon_decay <= 1.0, "in (0, 1] (1 = constant)"),
            "epsilon_final": (0.0 <= self.epsilon_final <= self.epsilon, "in [0, epsilon]"),
            "expert_temperature": (self.expert_temperature > 0.0, "> 0"),
            "expert_episodes": (self.expert_episodes >= 1, ">= 1"),
            "expert_epochs": (self.expert_epochs >= 1, ">= 1"),
        }
        for name, (ok, rule) in checks.items():
            if not ok:
                raise ConfigError(f"TabularQConfig.training({name}=...): must be {rule}, got {getattr(self, name)}")

    def alpha_at(self, num_updates: int) -> float:
        """Learning rate of the (num_updates + 1)-th batched update."""
        return max(self.alpha_final, self.alpha * self.alpha_decay ** num_updates)

    def epsilon_at(self, env_steps: int) -> float:
        """Exploration rate after ``env_steps`` sampled actions."""
        return max(self.epsilon_final, self.epsilon * self.epsilon_decay ** env_steps)

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {"binning": self.binning.to_dict(), "epsilon": self.epsilon}

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=TabularQModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self) -> type[TabularQLearner]:
        return TabularQLearner


class TabularQ(Algorithm):
    """Sample on the EnvRunners -> one batched TD update -> new epsilon -> sync the table."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> TabularQConfig:
        return TabularQConfig()

    @override(Algorithm)
    def training_step(self) -> None:
        # 1. Rollouts fan out over the remote EnvRunners (the local one when num_env_runners = 0).
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                max_env_steps=self.config.total_train_batch_size,
                sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
        if not episodes:
            return
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        env_steps = int(self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0))

        # 2. One synchronous tabular update on all sampled transitions.
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: env_steps},
                num_epochs=self.config.num_epochs,
            )
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

        # 3. Per-action epsilon decay from the lifetime step count, written into the Learner's module;
        #    the weight sync below carries it (and the table) to every EnvRunner.
        epsilon = self.config.epsilon_at(env_steps)
        self.learner_group.foreach_learner(
            lambda learner: [learner.module[mid].unwrapped().set_epsilon(epsilon) for mid in learner.module.keys()]
        )
        self.metrics.log_value("epsilon", epsilon, window=1)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)


CONFIG_CLASS = TabularQConfig


# ---- after training: visited states -> distilled differentiable expert ------------------------------
def collect_observations(
    env, q_table: np.ndarray, binning: StateBinning, *, num_episodes: int, epsilon: float, seed: int
) -> tuple[np.ndarray, list[float]]:
    """Roll out the epsilon-greedy table policy in ``env``; returns all observations met and episode returns.

    Greedy = argmax of the Q row (lowest index on ties), as in inference; the table is read directly
    (no RLlib per-step overhead).
    """
    rng = np.random.default_rng(seed)
    observations, returns = [], []
    for _ in range(num_episodes):
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        done, total = False, 0.0
        while not done:
            observations.append(obs)
            if rng.random() < epsilon:
                action = int(rng.integers(q_table.shape[1]))
            else:
                action = int(np.argmax(q_table[binning.index(obs[None])[0]]))
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return np.asarray(observations, dtype=np.float32), returns


def after_training(
    algo: Algorithm, run_dir: Path, *, num_episodes: int | None = None, temperature: float | None = None,
    epochs: int | None = None, seed: int | None = None,
) -> dict[str, Any]:
    """Collect states with the trained epsilon-greedy policy, distil the Boltzmann policy
    ``softmax(Q/temperature)`` into an :class:`~rlexec.algorithms.expert_policy.ExpertPolicy` (spec
    1.1 [DEFAULT]) and save it to ``run_dir / "expert"``; returns the distillation figures.

    Unset arguments come from the config (``expert_episodes``, ``expert_temperature``,
    ``expert_epochs``; ``seed`` from ``debugging(seed=...)``).
    """
    from rlexec.algorithms.expert_policy import distill_expert

    config = algo.config
    num_episodes = config.expert_episodes if num_episodes is None else num_episodes
    temperature = config.expert_temperature if temperature is None else temperature
    epochs = config.expert_epochs if epochs is None else epochs
    module = algo.get_module()
    q_table, binning, epsilon = module.q_table.detach().cpu().numpy().copy(), module.binning, float(module.epsilon)
    seed = int(config.seed or 0) if seed is None else seed
    env = algo.env_creator(dict(config.env_config))
    observations, returns = collect_observations(env, q_table, binning, num_episodes=num_episodes,
                                                 epsilon=epsilon, seed=seed + 10_007)
    states = binning.index(observations)
    q_fn = lambda obs: q_table[binning.index(obs)]  # noqa: E731  (table lookup for raw observations)
    metadata = {
        "algorithm": "qlearning", "env_config": dict(config.env_config), "seed": seed,
        "binning": binning.to_dict(), "iterations": int(algo.iteration),
    }
    policy = distill_expert(q_fn, observations, temperature=temperature, epochs=epochs, seed=seed, metadata=metadata)
    policy.save(Path(run_dir) / "expert")
    visited = int(np.unique(states).size)
    figures = dict(policy.metadata["distillation"])
    figures.update({
        "num_states_visited": visited,
        "fraction_states_visited": visited / binning.num_states,
        "num_observations": int(len(observations)),
        "collection_epsilon": epsilon,
        "collection_return_mean": float(np.mean(returns)),
        "state_action_pairs_trained": int((module.update_counts > 0).sum()),
        "expert_path": str(Path(run_dir) / "expert"),
    })
    return figures
