"""Policies x market regimes on common seeds: the MoE-DPO seed's Table 1 analogue (spec 1.2, 1.6).

A :class:`RegimesConfig` names regimes and policies. In every regime, every policy runs the same
episodes (episode e replays seed ``seed + e``: common random numbers), through the one evaluation
loop (:func:`rlexec.evaluation.runner.evaluate_runs`). :func:`run_regimes` runs the regimes in
parallel as Ray tasks (one per regime) or serially; both give identical numbers, because a regime's
result depends only on the config, never on which process ran it or in which order.

Policies come from a registry of *kinds* (:data:`POLICY_KINDS`). A kind is a factory
``factory(spec: PolicySpec, context: PolicyContext) -> actor``; the actor is anything with
``name`` and ``actions(observations) -> actions`` (the evaluation's actors). Optional attributes of
the actor that this module reads:

* ``broker`` (str): with the env's ``placement`` action space the env's broker sizes every child
  order, so the episodes of this policy run with that broker (default: the spec's ``broker`` key);
* ``model``: something :func:`rlexec.policies.actors.log_probs` can score (an RLModule or an
  exported expert): the trajectory store writes ``logp_<policy>`` columns for such policies;
* ``mixture_weights() -> {expert: (E,) array}``: a mixture's weight of each expert over the
  episodes; plotted per regime.

Built-in kinds: ``broker`` (a broker with a fixed placement, market or limit) and ``expert`` (a
trained expert by run folder or exported-expert folder). Other kinds (SIP, MoE-DPO) are added with
:func:`register_policy_kind` or named in the YAML as ``kind: package.module:factory``.

Seeds. Training resets its envs with seeds inside :data:`TRAINING_SEED_RANGES` (see the comment
there); evaluation seeds must lie outside them (:func:`check_evaluation_seeds`), default from
:data:`DEFAULT_SEED` on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rlexec.configs import read_yaml_mapping
from rlexec.envs.lob_interpreters import LIMIT, MARKET
from rlexec.errors import ConfigError, RlexecError
from rlexec.evaluation.runner import Evaluation, FixedAction, Run, evaluate_runs
from rlexec.evaluation.stats import mean_se, paired_difference

PLACEMENTS = {"market": MARKET, "limit": LIMIT}

# Reset seeds that RLlib training uses with rlexec's training configs (seed = 0..99,999 in every
# shipped YAML): EnvRunner i resets its sub-env k with ``seed + i + k`` and evaluation EnvRunners with
# ``seed + i + k + 1e6`` (ray.rllib.env.env_runner, RLlib 2.60); later training episodes draw from
# ``SeedSequence(seed, spawn_key=(stream, iteration, runner, k))`` streams (rlexec.training.runner),
# which never equal a ``reset(seed=s)`` stream (its spawn key is empty). Evaluation stays outside.
TRAINING_SEED_RANGES: tuple[tuple[int, int], ...] = ((0, 100_000), (1_000_000, 1_100_000))
DEFAULT_SEED = 10_000_000  # rlexec default: first evaluation seed, far from the training ranges
DEFAULT_EPISODES = 100  # rlexec default (the seed reports 100 out-of-sample trajectories per regime)

# What the table reports, in order: metric of rlexec.evaluation.metrics -> (column title, unit, + means)
TABLE_METRICS: dict[str, tuple[str, str, str]] = {
    "profit_usd": ("profit ($)", "USD per parent order", "+ = gain vs arrival price"),
    "execution_cost_usd": ("execution cost ($)", "USD per parent order", "+ = cost vs arrival price"),
    "implementation_shortfall_bps": ("slippage (bp)", "bp of the arrival price", "+ = worse"),
    "price_advantage_bps": ("PA (bp)", "bp of the window's TWAP price", "+ = better"),
    "fill_rate": ("fill rate", "executed / Q", "1 = all filled"),
    "quality_bps": ("quality U_q (bp)", "bp", "+ = better; charges unfilled shares"),
    "completion_min": ("completion (min)", "minutes from the window start; unfilled: T (2 - FR)", "- = sooner"),
}
# The best single expert of a regime has the highest mean U_q, not the lowest cost: cost counts the
# filled shares only, so a policy that leaves the order unfilled would otherwise look cheapest.
RANKING_METRIC = "quality_bps"


def completion_minutes(fill_curve: np.ndarray, curve_minutes: np.ndarray) -> np.ndarray:
    """Minutes from the window start to the first decision after which the whole order is filled.

    An order never completed counts ``T (2 - FR)`` (T = the last curve minute, the window's length), the
    speed criterion's ``t_done`` (spec 1.4, rlexec.algorithms.moe_dpo.preferences.LabelRule): later than
    any completed order, and the later the less it filled."""
    fill_curve = np.asarray(fill_curve, dtype=np.float64)
    curve_minutes = np.asarray(curve_minutes, dtype=np.float64)
    complete = fill_curve >= 1.0 - 1e-12
    horizon = curve_minutes[-1]
    first = np.argmax(complete, axis=1)
    final = fill_curve[:, -1]
    return np.where(complete.any(axis=1), curve_minutes[first], horizon * (2.0 - final))


def quality_bps(metrics: Mapping[str, np.ndarray], unfilled_penalty_bps: float) -> np.ndarray:
    """Spec 1.4's U_q = A - lambda_F (1 - FR): arrival advantage (bp) less lambda_F bp per unfilled share of Q.

    lambda_F is the env's ``unfilled_penalty_bps`` (rlexec default 50, spec 1.3/1.4); an episode
    without fills has no price, its A counts as 0 so that it still scores -lambda_F."""
    advantage = np.nan_to_num(np.asarray(metrics["arrival_advantage_bps"], dtype=np.float64), nan=0.0)
    return advantage - unfilled_penalty_bps * (1.0 - np.asarray(metrics["fill_rate"], dtype=np.float64))


# ---- the config ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicySpec:
    """One entry of ``policies:``: its name, kind, role and the kind's own parameters."""

    name: str
    kind: str
    role: str  # "broker", "expert" or "mixture": who counts as a "single expert" for the paired table
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def compare_with(self) -> tuple[str, ...]:
        """Policies this one is compared with, pair by pair (the ``compare_with`` parameter)."""
        return tuple(self.params.get("compare_with") or ())

    def param(self, key: str, default: Any = ..., *, source: str = "") -> Any:
        if key in self.params:
            return self.params[key]
        if default is ...:
            raise ConfigError(f"{source or 'policies'}: policy {self.name!r} (kind {self.kind}) needs '{key}'")
        return default


@dataclass(frozen=True)
class RegimesConfig:
    regimes: tuple[str, ...]
    policies: tuple[PolicySpec, ...]
    episodes: int = DEFAULT_EPISODES
    seed: int = DEFAULT_SEED
    execution: dict[str, Any] = field(default_factory=dict)  # LOBExecutionConfig fields, regime aside
    reference: str | None = None  # a policy every other is also compared with (e.g. SIP)
    best_of: tuple[str, ...] = ()  # candidates for "best single expert"; default: role expert, else broker
    base_dir: str = "."  # relative policy paths are read from here (absolute; default the working directory)
    source: str = "regimes config"

    regime_execution: dict[str, dict[str, Any]] = field(default_factory=dict)  # regime -> execution overrides

    TOP_LEVEL = ("regimes", "policies", "episodes", "seed", "execution", "regime_execution", "reference", "best_of")

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> RegimesConfig:
        return cls.from_dict(read_yaml_mapping(path), source=str(path), **overrides)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "regimes config", base_dir: str | None = None,
                  **overrides: Any) -> RegimesConfig:
        """``base_dir``: where relative policy paths are read from (default the working directory, as
        every rlexec path argument; made absolute here, because Ray workers may run elsewhere)."""
        from rlexec.market.regimes import LEVELLED_REGIMES, REGIMES, is_regime

        unknown = sorted(set(data) - set(cls.TOP_LEVEL))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {list(cls.TOP_LEVEL)}")
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        regimes = data.get("regimes")
        if not isinstance(regimes, list) or not regimes or not all(isinstance(r, str) for r in regimes):
            raise ConfigError(f"{source}: 'regimes' must be a non-empty list of regime names ({', '.join(REGIMES)})")
        bad = [r for r in regimes if not is_regime(r)]
        if bad or len(set(regimes)) != len(regimes):
            raise ConfigError(f"{source}: regimes: unknown or repeated {bad or regimes}; choose from {list(REGIMES)} "
                              f"or a level of {list(LEVELLED_REGIMES)} (e.g. volatility_ramp@2)")
        policies = tuple(_policy_spec(entry, i, source) for i, entry in enumerate(data.get("policies") or []))
        if not policies:
            raise ConfigError(f"{source}: 'policies' must be a non-empty list of mappings with 'name' and 'kind'")
        names = [p.name for p in policies]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: policies: repeated name(s) {sorted({n for n in names if names.count(n) > 1})}")
        episodes, seed = data.get("episodes", DEFAULT_EPISODES), data.get("seed", DEFAULT_SEED)
        for key, value, least in (("episodes", episodes, 1), ("seed", seed, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"{source}: '{key}' must be an integer >= {least}, got {value!r}")
        check_evaluation_seeds(seed, episodes, source=source)
        execution = data.get("execution") or {}
        if not isinstance(execution, dict) or "regime" in execution:
            raise ConfigError(f"{source}: 'execution' must be a mapping of LOBExecutionConfig fields without "
                              "'regime' (the regimes list sets it)")
        regime_execution = data.get("regime_execution") or {}
        if not isinstance(regime_execution, dict) or not all(
                r in regimes and isinstance(v, dict) and "regime" not in v for r, v in regime_execution.items()):
            raise ConfigError(f"{source}: 'regime_execution' must map regimes of the list to mappings of "
                              "LOBExecutionConfig fields (without 'regime')")
        reference = data.get("reference")
        best_of = tuple(data.get("best_of") or ())
        compared = [n for p in policies for n in p.compare_with]
        for key, wanted in (("reference", [reference] if reference else []), ("best_of", list(best_of)),
                            ("compare_with", compared)):
            missing = [n for n in wanted if n not in names]
            if missing:
                raise ConfigError(f"{source}: {key}: no policy named {missing}; policies are {names}")
        config = cls(regimes=tuple(regimes), policies=policies, episodes=episodes, seed=seed, execution=dict(execution),
                     reference=reference, best_of=best_of, base_dir=str(Path(base_dir or ".").resolve()), source=source,
                     regime_execution={r: dict(v) for r, v in regime_execution.items()})
        for regime in regimes:  # a bad execution field fails now, naming the file, not inside a Ray task
            for spec in policies:
                env = config.env_config(regime, spec)
                if not env.replay and (env.window_start is not None or env.window_minutes is not None):
                    from rlexec.envs.lob_env import execution_window

                    try:
                        execution_window(regime, env.window_start, env.window_minutes)
                    except ConfigError as exc:
                        raise ConfigError(f"{source}: execution of regime {regime!r}: {exc}") from None
        return config

    def env_config(self, regime: str, policy: PolicySpec | None = None):
        """The env of ``regime`` (and of ``policy``): ``execution``, then the regime's and the policy's
        ``execution`` overrides. Policies may differ in how they act (action space, broker), never in
        the market: episode e is the same simulated day for all of them."""
        from rlexec.envs.lob_env import LOBExecutionConfig

        own = (policy.params.get("execution") or {}) if policy is not None else {}
        if not isinstance(own, dict) or "regime" in own:
            raise ConfigError(f"{self.source}: policy {policy.name!r}: 'execution' must be a mapping of "
                              "LOBExecutionConfig fields without 'regime'")
        try:
            return LOBExecutionConfig.from_dict(
                {**self.execution, **self.regime_execution.get(regime, {}), **own, "regime": regime})
        except ConfigError as exc:
            raise ConfigError(f"{self.source}: execution of regime {regime!r}"
                              f"{f', policy {policy.name!r}' if own else ''}: {exc}") from None

    @property
    def seeds(self) -> tuple[int, int]:
        """First and last episode seed (inclusive)."""
        return self.seed, self.seed + self.episodes - 1

    @property
    def candidates(self) -> tuple[str, ...]:
        """The policies among which each regime's best single expert is chosen."""
        if self.best_of:
            return self.best_of
        for role in ("expert", "broker"):
            names = tuple(p.name for p in self.policies if p.role == role)
            if names:
                return names
        return ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "regimes": list(self.regimes), "episodes": self.episodes, "seed": self.seed,
            "execution": dict(self.execution), "regime_execution": dict(self.regime_execution),
            "reference": self.reference, "best_of": list(self.best_of),
            "policies": [{"name": p.name, "kind": p.kind, "role": p.role, **p.params} for p in self.policies],
        }


DEFAULT_ROLES = {"broker": "broker", "expert": "expert"}  # any other kind is a mixture unless it says


def _policy_spec(entry: Any, index: int, source: str) -> PolicySpec:
    where = f"{source}: policies[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with 'name' and 'kind', got {entry!r}")
    name, kind = entry.get("name"), entry.get("kind")
    if not isinstance(name, str) or not name or not isinstance(kind, str) or not kind:
        raise ConfigError(f"{where}: 'name' and 'kind' must be non-empty strings")
    role = entry.get("role", DEFAULT_ROLES.get(kind, "mixture"))
    if role not in ("broker", "expert", "mixture"):
        raise ConfigError(f"{where}: role must be broker, expert or mixture, got {role!r}")
    resolve_kind(kind, where=where)
    compare_with = entry.get("compare_with", [])
    if not isinstance(compare_with, list) or not all(isinstance(n, str) for n in compare_with):
        raise ConfigError(f"{where}: compare_with must be a list of policy names, got {compare_with!r}")
    params = {k: v for k, v in entry.items() if k not in ("name", "kind", "role")}
    return PolicySpec(name=name, kind=kind, role=role, params=params)


def check_evaluation_seeds(seed: int, episodes: int, *, source: str = "seed") -> None:
    """Refuse episode seeds ``[seed, seed + episodes)`` that training resets envs with (out-of-sample)."""
    last = seed + episodes - 1
    for low, high in TRAINING_SEED_RANGES:
        if seed < high and last >= low:
            raise ConfigError(
                f"{source}: episode seeds {seed}..{last} overlap the training seeds {low}..{high - 1}; "
                f"evaluation must be out of sample: use a seed >= {TRAINING_SEED_RANGES[-1][1]} (default {DEFAULT_SEED})")


# ---- policy kinds -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyContext:
    """What a policy factory may use: the regime, its env config, the episodes and where paths are read.

    ``regime`` is the regime's family (``volatility_ramp`` for ``volatility_ramp@2``): what a policy
    was trained on (expert folders, SIP weights, the gate's regime one-hot) serves every level of its
    regime; the market of the level is ``env_config.regime``."""

    regime: str
    env_config: Any  # LOBExecutionConfig of this regime
    seed: int
    episodes: int
    base_dir: Path

    def path(self, value: Any, *, policy: str) -> Path:
        """A policy's path parameter: a string (``{regime}`` is filled in) or a mapping regime -> path."""
        if isinstance(value, Mapping):
            if self.regime not in value:
                raise ConfigError(f"policy {policy!r}: no path for regime {self.regime!r} (has {sorted(value)})")
            value = value[self.regime]
        if not isinstance(value, str):
            raise ConfigError(f"policy {policy!r}: path must be a string or a mapping regime -> path, got {value!r}")
        path = Path(value.format(regime=self.regime))
        return path if path.is_absolute() else self.base_dir / path


PolicyFactory = Callable[[PolicySpec, PolicyContext], Any]
# Kinds as "module:function" so that Ray workers import them on their own.
POLICY_KINDS: dict[str, str | PolicyFactory] = {
    "broker": "rlexec.evaluation.regime_table:broker_policy",
    "expert": "rlexec.evaluation.regime_table:expert_policy",
    "sip": "rlexec.algorithms.sip.policy_kind:sip_policy",
    "moe_dpo": "rlexec.algorithms.moe_dpo.policy_kind:moe_dpo_policy",
}


def register_policy_kind(kind: str, factory: str | PolicyFactory) -> None:
    """Add a kind; prefer ``"package.module:function"`` (a callable registered at run time is unknown
    to Ray workers unless the module that registers it is imported there too)."""
    POLICY_KINDS[kind] = factory


def resolve_kind(kind: str, *, where: str = "policies", kinds: Mapping[str, str | PolicyFactory] | None = None
                 ) -> PolicyFactory:
    target = (POLICY_KINDS if kinds is None else kinds).get(kind, kind)
    if callable(target):
        return target
    if ":" not in target:
        raise ConfigError(f"{where}: unknown policy kind {kind!r}; known: {sorted(POLICY_KINDS)} "
                          "or 'package.module:factory'")
    module, _, attr = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: policy kind {kind!r}: cannot import {target} ({exc})") from None
    if not callable(factory):
        raise ConfigError(f"{where}: policy kind {kind!r}: {target} is not callable")
    return factory


@dataclass(frozen=True)
class BrokerPlacement(FixedAction):
    """Placement mode: the env's ``broker`` sizes each child order, placed always the same way."""

    broker: str = "twap"


def broker_policy(spec: PolicySpec, context: PolicyContext) -> Any:
    """A broker whose every child order is placed the same way (``placement: market`` or ``limit``)."""
    from rlexec.envs.lob_env import BROKERS

    broker, placement = spec.param("broker"), spec.param("placement", "market")
    if broker not in BROKERS or placement not in PLACEMENTS:
        raise ConfigError(f"policy {spec.name!r}: broker must be one of {list(BROKERS)} and placement one of "
                          f"{list(PLACEMENTS)}, got {broker!r}, {placement!r}")
    if context.env_config.action_space == "shared":
        from rlexec.policies.expert import BrokerActor

        return BrokerActor(broker, PLACEMENTS[placement], name=spec.name)
    return BrokerPlacement(spec.name, PLACEMENTS[placement], broker)  # the env's broker sizes the child


def expert_policy(spec: PolicySpec, context: PolicyContext) -> Any:
    """A trained expert: ``path`` is an exported expert folder (policy.json) or a training run folder /
    checkpoint; ``actor``: greedy (default) or sampled (seeded by ``sample_seed``, default the
    config's seed); ``exported: true`` prefers a run's exported expert over its Q-table."""
    from rlexec.policies.actors import make_actor

    path = context.path(spec.param("path"), policy=spec.name)
    kind = spec.param("actor", "greedy")
    seed = int(spec.param("sample_seed", context.seed))
    if (path / "policy.json").exists():
        from rlexec.policies.expert import ExpertPolicy

        model = ExpertPolicy.load(path)
        broker = spec.param("broker", getattr(model, "broker", None))  # a shared expert knows its broker
    else:
        from rlexec.policies.trained import TrainedPolicy

        trained = TrainedPolicy.load(path, name=spec.name, prefer_expert=bool(spec.param("exported", False)))
        trained.require_env("lob")
        model = trained.model
        broker = trained.env_config.get("broker", "twap")
        broker = spec.param("broker", broker.get("name", "twap") if isinstance(broker, dict) else broker)
    wanted = action_count(context.env_config)
    if getattr(model, "num_actions", wanted) != wanted:
        raise ConfigError(f"policy {spec.name!r}: {path} has {model.num_actions} actions, the env's "
                          f"{context.env_config.action_space!r} action space {wanted}; set execution.action_space")
    actor = make_actor(model, kind, seed=seed, name=spec.name)
    actor.broker = broker
    return actor


def action_count(env_config: Any) -> int:
    """Actions of the LOB env under ``env_config``: 3 placements, or the 1 + 2 S shared actions."""
    from rlexec.envs.lob_interpreters import num_shared_actions

    return num_shared_actions(len(env_config.size_multipliers)) if env_config.action_space == "shared" else 3


# ---- running ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegimeResult:
    regime: str
    evaluation: Evaluation  # every policy on the regime's common seeds
    weights: dict[str, dict[str, np.ndarray]]  # mixture -> expert -> (E,) weight over episodes
    trajectories: dict[str, pa.Table]  # policy -> per-step records (only when recording)


def build_policies(config: RegimesConfig, regime: str, kinds: Mapping[str, str | PolicyFactory] | None = None
                   ) -> list[tuple[PolicySpec, Any]]:
    from rlexec.market.regimes import regime_family

    built = []
    for spec in config.policies:
        context = PolicyContext(regime=regime_family(regime), env_config=config.env_config(regime, spec), seed=config.seed,
                                episodes=config.episodes, base_dir=Path(config.base_dir))
        try:
            actor = resolve_kind(spec.kind, where=config.source, kinds=kinds)(spec, context)
        except ConfigError as exc:  # name the file the policy came from
            message = str(exc)
            raise ConfigError(message if message.startswith(config.source) else
                              f"{config.source}: regime {regime!r}: {message}") from None
        if not callable(getattr(actor, "actions", None)):
            raise ConfigError(f"{config.source}: policy {spec.name!r}: kind {spec.kind!r} built "
                              f"{type(actor).__name__}, which has no actions(observations)")
        built.append((spec, actor))
    return built


def run_regime(config: RegimesConfig, regime: str, *, record: bool = False,
               logp_policies: Sequence[str] | None = None,
               kinds: Mapping[str, str | PolicyFactory] | None = None) -> RegimeResult:
    """Every policy on the regime's common seeds, through the one evaluation loop.

    ``record``: also keep each policy's per-step records with ``logp_<name>`` for every policy in
    ``logp_policies`` (default: every policy whose actor has a ``model``). ``kinds``: the policy
    kinds to build from (default :data:`POLICY_KINDS` of this process)."""
    from rlexec.evaluation.episodes import LOBEpisodes
    from rlexec.evaluation.recorder import TrajectoryRecorder

    built = build_policies(config, regime, kinds)
    runs = []
    for spec, actor in built:
        broker = getattr(actor, "broker", None) or spec.params.get("broker")
        runs.append(Run(spec.name, actor, lambda env=config.env_config(regime, spec), broker=broker: LOBEpisodes(
            env, episodes=config.episodes, seed=config.seed, broker=broker)))
    recorders = {}
    if record:
        models = {spec.name: actor.model for spec, actor in built if hasattr(actor, "model")}
        if logp_policies is not None:
            missing = [n for n in logp_policies if n not in models]
            if missing:
                raise ConfigError(f"{config.source}: logp policies {missing} have no model to score actions with")
            models = {n: models[n] for n in logp_policies}
        recorders = {spec.name: TrajectoryRecorder(models) for spec, _ in built}
    evaluation = evaluate_runs(runs, recorders=recorders)
    for spec, r in zip(config.policies, evaluation.results):  # U_q and completion next to the registered metrics
        r.metrics["quality_bps"] = quality_bps(r.metrics, config.env_config(regime, spec).unfilled_penalty_bps)
        r.metrics["completion_min"] = completion_minutes(r.fill_curve, evaluation.curve_minutes)
    weights = {spec.name: {k: np.asarray(v, dtype=np.float64) for k, v in actor.mixture_weights().items()}
               for spec, actor in built if callable(getattr(actor, "mixture_weights", None))}
    return RegimeResult(regime, evaluation, weights, {name: r.to_table() for name, r in recorders.items()})


def run_regimes(config: RegimesConfig, *, parallel: bool = True, record: bool = False,
                logp_policies: Sequence[str] | None = None,
                on_done: Callable[[str], None] | None = None) -> list[RegimeResult]:
    """Each regime in its own Ray task (``parallel``; Ray must be initialised) or one after another;
    the results are in the config's regime order either way, and identical."""
    if not parallel:
        results = []
        for regime in config.regimes:
            results.append(run_regime(config, regime, record=record, logp_policies=logp_policies))
            if on_done:
                on_done(regime)
        return results
    import ray

    task = ray.remote(num_cpus=1)(run_regime)
    # The driver's kinds that the config uses travel with each task: kinds registered at run time are
    # known there too (a callable must be importable in the workers; a "module:function" always is).
    kinds = {spec.kind: POLICY_KINDS.get(spec.kind, spec.kind) for spec in config.policies}
    pending = {task.remote(config, regime, record=record, logp_policies=logp_policies, kinds=kinds): regime
               for regime in config.regimes}
    done: dict[str, RegimeResult] = {}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        regime = pending.pop(ready[0])
        try:
            done[regime] = ray.get(ready[0])
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, RlexecError):  # a user's mistake: its one line, not a remote traceback
                raise exc.cause from None
            raise
        if on_done:
            on_done(regime)
    return [done[r] for r in config.regimes]


# ---- the tables ---------------------------------------------------------------------------------------
def best_single(result: RegimeResult, candidates: Sequence[str]) -> str | None:
    """The candidate with the highest mean quality U_q in this regime (the first on a tie)."""
    if not candidates:
        return None
    scores = [float(np.mean(result.evaluation.result(n).metrics[RANKING_METRIC])) for n in candidates]
    return candidates[int(np.argmax([v if np.isfinite(v) else -np.inf for v in scores]))]


def summary_table(results: Sequence[RegimeResult], config: RegimesConfig) -> pa.Table:
    """One row per (regime, policy, metric): mean, standard error (ddof 1), n, unit."""
    rows: dict[str, list] = {k: [] for k in ("regime", "policy", "role", "metric", "unit", "mean", "se", "n")}
    roles = {p.name: p.role for p in config.policies}
    for result in results:
        for r in result.evaluation.results:
            for metric, (_, unit, _) in TABLE_METRICS.items():
                value = mean_se(r.metrics[metric])
                for key, v in zip(rows, (result.regime, r.name, roles[r.name], metric, unit, value.mean, value.se,
                                         value.n)):
                    rows[key].append(v)
    return pa.table({**rows, "n": pa.array(rows["n"], pa.int64())})


def paired_table(results: Sequence[RegimeResult], config: RegimesConfig, confidence: float = 0.95) -> pa.Table:
    """One row per (regime, comparison, policy, metric): policy minus the comparison's policy on the
    same seeds; mean, SE, two-sided t confidence interval. Comparisons: ``best_single`` (the regime's
    best single expert, named in ``against_policy``), ``reference`` (the config's reference) and
    ``compare_with`` (each policy against the policies its ``compare_with`` lists, e.g. an expert
    against its own broker's fixed placements)."""
    rows: dict[str, list] = {k: [] for k in ("regime", "against", "against_policy", "policy", "metric", "mean", "se",
                                             "low", "high", "n", "significant")}
    for result in results:
        pairs = []  # (label, policy, base)
        for label, base in (("best_single", best_single(result, config.candidates)), ("reference", config.reference)):
            if base is not None:
                pairs += [(label, r.name, base) for r in result.evaluation.results if r.name != base]
        pairs += [("compare_with", spec.name, base) for spec in config.policies for base in spec.compare_with]
        for label, name, base_name in pairs:
            policy, base = result.evaluation.result(name), result.evaluation.result(base_name)
            for metric in TABLE_METRICS:
                d = paired_difference(policy.metrics[metric], base.metrics[metric], confidence)
                for key, v in zip(rows, (result.regime, label, base_name, name, metric, d.mean, d.se, d.low,
                                         d.high, d.n, d.significant)):
                    rows[key].append(v)
    return pa.table({**rows, "n": pa.array(rows["n"], pa.int64())})


def per_episode_table(results: Sequence[RegimeResult]) -> pa.Table:
    """Every (regime, policy, episode): the episode's identity (seed, side, ...) and every metric."""
    parts = []
    for result in results:
        table = result.evaluation.per_order_table()
        parts.append(table.add_column(0, "regime", pa.array([result.regime] * table.num_rows, pa.string())))
    return pa.concat_tables(parts)


# ---- printed tables -----------------------------------------------------------------------------------
DIGITS = {"fill_rate": 3}  # every other table metric: 2 decimals
PAIRED_SHOWN = ("execution_cost_usd", "quality_bps")  # printed; the CSV has every metric
COMPARED_SHOWN = ("price_advantage_bps", "quality_bps")  # issue 9's test: an expert vs its own broker, in PA


def text_tables(summary: pa.Table, paired: pa.Table, config: RegimesConfig) -> list:
    """The printed Table 1 analogue: one table per metric (policies x regimes, mean ± SE), then the
    paired differences against the best single expert, the reference and each policy's
    ``compare_with``, as plain-text cells."""
    from rlexec.evaluation.tables import TextTable

    first, last = config.seeds
    on = f"{config.episodes} episodes per regime, seeds {first}..{last} (the same in every regime and policy)"
    cells = {(row["regime"], row["policy"], row["metric"]): row for row in summary.to_pylist()}
    names = [p.name for p in config.policies]
    out = []
    for metric, (header, unit, sign) in TABLE_METRICS.items():
        digits = DIGITS.get(metric, 2)
        rows = tuple((name, *(_mean_se_text(cells[(regime, name, metric)], digits) for regime in config.regimes))
                     for name in names)
        out.append(TextTable(title=f"{header}: mean ± SE, {unit}", columns=("policy", *config.regimes), rows=rows,
                             caption=f"{sign}; {on}"))
    pairs = {(row["regime"], row["against"], row["policy"], row["metric"], row["against_policy"]): row
             for row in paired.to_pylist()}
    against_names = {(row["regime"], row["against"]): row["against_policy"] for row in paired.to_pylist()
                     if row["against"] != "compare_with"}
    for against, label in (("best_single", "the regime's best single expert"), ("reference", config.reference)):
        if not any(key[1] == against for key in against_names):
            continue
        for metric in PAIRED_SHOWN:
            header, unit, sign = TABLE_METRICS[metric]
            rows = []
            for name in names:
                row = [name]
                for regime in config.regimes:
                    base = against_names.get((regime, against))
                    pair = pairs.get((regime, against, name, metric, base))
                    row.append("(itself)" if base == name else _paired_text(pair))
                rows.append(tuple(row))
            bases = ", ".join(f"{r}: {against_names[(r, against)]}" for r in config.regimes if (r, against) in against_names)
            out.append(TextTable(
                title=f"{header}, policy − {label}: paired mean [95% CI], {unit}",
                columns=("policy", *config.regimes), rows=tuple(rows),
                caption=f"{sign}; * = CI excludes 0; compared with {bases}; best single = highest mean U_q among "
                        f"{', '.join(config.candidates)}"))
    own = [row for row in paired.to_pylist() if row["against"] == "compare_with"]
    couples = list(dict.fromkeys((row["policy"], row["against_policy"]) for row in own))
    for metric in COMPARED_SHOWN if couples else ():
        header, unit, sign = TABLE_METRICS[metric]
        rows = tuple((f"{name} − {base}", *(_paired_text(pairs.get((regime, "compare_with", name, metric, base)))
                                            for regime in config.regimes)) for name, base in couples)
        out.append(TextTable(title=f"{header}, policy − the policies it is compared with: paired mean [95% CI], {unit}",
                             columns=("policy − compared with", *config.regimes), rows=rows,
                             caption=f"{sign}; * = CI excludes 0; {on}"))
    return out


def _mean_se_text(row: dict, digits: int) -> str:
    if row["mean"] is None or not np.isfinite(row["mean"]):
        return "n/a"
    se = row["se"]
    return f"{row['mean']:.{digits}f} ± {se:.{digits}f}" if se is not None and np.isfinite(se) else f"{row['mean']:.{digits}f}"


def _paired_text(row: dict | None) -> str:
    if row is None or row["mean"] is None or not np.isfinite(row["mean"]):
        return "n/a"
    star = "*" if row["significant"] else ""
    return f"{row['mean']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]{star}"
