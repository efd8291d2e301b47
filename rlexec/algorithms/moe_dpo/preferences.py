"""Preference data for MoE-DPO (spec 1.4): grouped trajectories -> labelled pairs -> parquet.

Input: for each *context* (regime, seed, side, Q, window start) the trajectories that were rolled out
on it with common random numbers (one per expert plus mixture samples), each a :class:`Trajectory`
with its per-step observations and actions, its outcome (price advantage A in bp, fill rate FR,
completion time) and, where known, its log-probability under each expert's frozen reference.

Labels (spec 1.4, all [DEFAULT], every constant configurable in :class:`LabelRule`):

* quality ``U_q(y) = A(y) - lambda_F (1 - FR(y))`` in bp, lambda_F = 50; margin 0.5 bp;
* speed ``U_s(y) = -t_done(y)/T + kappa_C A(y)/1e4``, ``t_done`` = first time FR = 1, else
  ``T (2 - FR)``; kappa_C = 1 (quality breaks ties); margin 0.02 (2 % of T);
* a pair (i, j) of one context is kept when ``|U_i - U_j| > margin``; ``y+`` is the higher U, or, with
  the noisy labeller (``temperature > 0``), ``y+ = i`` with probability ``sigma((U_i - U_j)/temperature)``.

On disk a preference set is a folder (:func:`write_preferences` / :func:`read_preferences`)::

    preferences.json     format, version, criterion, label rule, expert_names, obs_dim, num_actions,
                         context_names
    trajectories.parquet one row per trajectory:
        trajectory_id int64 (0..N-1, the row), context_id string, regime string, policy string,
        context list<float32> (gate input x, known at the window start), num_steps int64,
        observations list<float32> (num_steps * obs_dim, row-major), actions list<int64>,
        price_advantage_bps float64, fill_rate float64, t_done float64 (NaN: never completed),
        horizon float64 (T, same unit as t_done), ref_logp list<float64> (K, expert order of
        preferences.json; null where not cached)
    pairs.parquet        one row per labelled pair: context_id string, chosen int64, rejected int64
        (trajectory ids), utility_chosen float64, utility_rejected float64

Trajectories are stored once and referenced by the pairs (one context's M trajectories give up to
M(M-1)/2 pairs). :func:`synthetic_preferences` makes a small set with a known best expert per regime
for the tests.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rlexec.errors import ConfigError, DataFileError
from rlexec.provenance import write_atomic, write_json_atomic

FORMAT, FORMAT_VERSION = "rlexec.moe_dpo_preferences", 1
META_FILE, TRAJECTORIES_FILE, PAIRS_FILE = "preferences.json", "trajectories.parquet", "pairs.parquet"
CRITERIA = ("quality", "speed")


@dataclass(frozen=True, kw_only=True)
class Trajectory:
    """One rolled-out trajectory of one context; ``observations`` (T, obs_dim), ``actions`` (T,)."""

    context_id: str
    regime: str
    policy: str
    context: np.ndarray
    observations: np.ndarray
    actions: np.ndarray
    price_advantage_bps: float  # A, spec 1.2: positive = better than arrival
    fill_rate: float  # FR in [0, 1]
    t_done: float  # first time FR = 1 (NaN: never completed), in the unit of horizon
    horizon: float  # T
    ref_logp: np.ndarray | None = None  # (K,) sum_t log pi_ref,k(a_t|s_t), expert order of the set

    @property
    def num_steps(self) -> int:
        return len(self.actions)


@dataclass(frozen=True, kw_only=True)
class LabelRule:
    """How a pair is labelled (spec 1.4 defaults, all rlexec's [DEFAULT] choices)."""

    criterion: str = "quality"  # "quality" (U_q) or "speed" (U_s)
    margin: float | None = None  # None: 0.5 bp (quality) or 0.02 (speed, 2 % of T)
    unfilled_penalty_bps: float = 50.0  # lambda_F
    speed_quality_weight: float = 1.0  # kappa_C
    temperature: float = 0.0  # noisy labeller T_lab (0: deterministic labels)

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise ConfigError(f"preferences.criterion must be one of {list(CRITERIA)}, got {self.criterion!r}")
        if self.margin is not None and self.margin < 0:
            raise ConfigError(f"preferences.margin must be >= 0, got {self.margin}")
        if self.temperature < 0:
            raise ConfigError(f"preferences.temperature must be >= 0, got {self.temperature}")

    @property
    def resolved_margin(self) -> float:
        if self.margin is not None:
            return float(self.margin)
        return 0.5 if self.criterion == "quality" else 0.02

    def utility(self, trajectory: Trajectory) -> float:
        quality = trajectory.price_advantage_bps - self.unfilled_penalty_bps * (1.0 - trajectory.fill_rate)
        if self.criterion == "quality":
            return float(quality)
        done = trajectory.t_done
        if done is None or not math.isfinite(done):
            done = trajectory.horizon * (2.0 - trajectory.fill_rate)
        return float(-done / trajectory.horizon + self.speed_quality_weight * trajectory.price_advantage_bps / 1e4)


@dataclass(frozen=True)
class PreferenceSet:
    """Trajectories plus pairs of row indices into them (``chosen[i]`` preferred to ``rejected[i]``)."""

    trajectories: list[Trajectory]
    chosen: np.ndarray
    rejected: np.ndarray
    expert_names: list[str]
    rule: LabelRule = field(default_factory=LabelRule)
    context_names: list[str] = field(default_factory=list)
    utility_chosen: np.ndarray | None = None
    utility_rejected: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.chosen)

    @property
    def obs_dim(self) -> int:
        return int(self.trajectories[0].observations.shape[1])

    @property
    def context_dim(self) -> int:
        return len(self.trajectories[0].context)

    def without_reference_cache(self) -> PreferenceSet:
        """The same set with every ``ref_logp`` dropped (the learner then scores with its own references)."""
        trajectories = [_with_ref_logp(t, None) for t in self.trajectories]
        return PreferenceSet(trajectories, self.chosen, self.rejected, self.expert_names, self.rule,
                             self.context_names, self.utility_chosen, self.utility_rejected)

    @property
    def regimes(self) -> list[str]:
        """Regime names in order of first appearance (the order of the per-regime gate logs)."""
        return list(dict.fromkeys(t.regime for t in self.trajectories))


def label_pairs(groups: Iterable[Sequence[Trajectory]], rule: LabelRule, *,
                rng: np.random.Generator | None = None) -> tuple[list[Trajectory], np.ndarray, np.ndarray,
                                                                   np.ndarray, np.ndarray]:
    """All pairs within each context whose utilities differ by more than the margin, labelled by ``rule``.

    Returns (trajectories, chosen, rejected, utility_chosen, utility_rejected); the index arrays point
    into the returned trajectory list. The noisy labeller needs ``rng``.
    """
    if rule.temperature > 0 and rng is None:
        raise ConfigError("the noisy labeller (temperature > 0) needs a seeded rng")
    trajectories: list[Trajectory] = []
    chosen, rejected, u_chosen, u_rejected = [], [], [], []
    for group in groups:
        start = len(trajectories)
        trajectories.extend(group)
        utilities = [rule.utility(t) for t in group]
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                gap = utilities[i] - utilities[j]
                if abs(gap) <= rule.resolved_margin:
                    continue
                if rule.temperature > 0:
                    i_wins = rng.random() < 1.0 / (1.0 + math.exp(-gap / rule.temperature))
                else:
                    i_wins = gap > 0
                win, lose = (i, j) if i_wins else (j, i)
                chosen.append(start + win)
                rejected.append(start + lose)
                u_chosen.append(utilities[win])
                u_rejected.append(utilities[lose])
    as_int = lambda v: np.asarray(v, dtype=np.int64)
    return (trajectories, as_int(chosen), as_int(rejected), np.asarray(u_chosen, dtype=np.float64),
            np.asarray(u_rejected, dtype=np.float64))


def build_preferences(groups: Iterable[Sequence[Trajectory]], rule: LabelRule, *, expert_names: Sequence[str],
                      reference_log_prob: Callable[[int, np.ndarray, np.ndarray], float] | None = None,
                      context_names: Sequence[str] = (), rng: np.random.Generator | None = None) -> PreferenceSet:
    """Label the pairs of every context and cache each trajectory's reference log-probabilities.

    ``reference_log_prob(k, observations, actions)`` -> ``sum_t log pi_ref,k(a_t|s_t)`` (e.g. expert k's
    ``trajectory_log_prob``); when None, the trajectories' own ``ref_logp`` is kept (possibly None, and
    then the learner computes it once from its frozen references).
    """
    trajectories, chosen, rejected, u_chosen, u_rejected = label_pairs(groups, rule, rng=rng)
    if reference_log_prob is not None:
        trajectories = [
            _with_ref_logp(t, [reference_log_prob(k, t.observations, t.actions) for k in range(len(expert_names))])
            for t in trajectories
        ]
    return PreferenceSet(trajectories, chosen, rejected, list(expert_names), rule, list(context_names),
                         u_chosen, u_rejected)


def _with_ref_logp(t: Trajectory, values: Sequence[float] | None) -> Trajectory:
    return Trajectory(**{**t.__dict__, "ref_logp": None if values is None else np.asarray(values, dtype=np.float64)})


# ---- files ----------------------------------------------------------------------------------------------
def write_preferences(preferences: PreferenceSet, folder: str | os.PathLike) -> Path:
    """Write the three files (module docstring); the JSON last, so a folder with it is complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ts = preferences.trajectories
    obs_dim = preferences.obs_dim
    ref = [None if t.ref_logp is None else np.asarray(t.ref_logp, dtype=np.float64).tolist() for t in ts]
    trajectories = pa.table({
        "trajectory_id": pa.array(np.arange(len(ts), dtype=np.int64)),
        "context_id": pa.array([t.context_id for t in ts], pa.string()),
        "regime": pa.array([t.regime for t in ts], pa.string()),
        "policy": pa.array([t.policy for t in ts], pa.string()),
        "context": pa.array([np.asarray(t.context, dtype=np.float32) for t in ts], pa.list_(pa.float32())),
        "num_steps": pa.array([t.num_steps for t in ts], pa.int64()),
        "observations": pa.array([np.asarray(t.observations, dtype=np.float32).reshape(-1) for t in ts],
                                 pa.list_(pa.float32())),
        "actions": pa.array([np.asarray(t.actions, dtype=np.int64) for t in ts], pa.list_(pa.int64())),
        "price_advantage_bps": pa.array([t.price_advantage_bps for t in ts], pa.float64()),
        "fill_rate": pa.array([t.fill_rate for t in ts], pa.float64()),
        "t_done": pa.array([t.t_done for t in ts], pa.float64()),
        "horizon": pa.array([t.horizon for t in ts], pa.float64()),
        "ref_logp": pa.array(ref, pa.list_(pa.float64())),
    })
    pairs = pa.table({
        "context_id": pa.array([ts[i].context_id for i in preferences.chosen], pa.string()),
        "chosen": pa.array(preferences.chosen, pa.int64()),
        "rejected": pa.array(preferences.rejected, pa.int64()),
        "utility_chosen": pa.array(_or_nan(preferences.utility_chosen, len(preferences)), pa.float64()),
        "utility_rejected": pa.array(_or_nan(preferences.utility_rejected, len(preferences)), pa.float64()),
    })
    write_atomic(folder / TRAJECTORIES_FILE, lambda tmp: pq.write_table(trajectories, tmp))
    write_atomic(folder / PAIRS_FILE, lambda tmp: pq.write_table(pairs, tmp))
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "label_rule": preferences.rule.__dict__,
            "expert_names": list(preferences.expert_names), "obs_dim": obs_dim,
            "context_dim": preferences.context_dim, "context_names": list(preferences.context_names),
            "num_trajectories": len(ts), "num_pairs": len(preferences), "regimes": preferences.regimes}
    write_json_atomic(meta, folder / META_FILE)
    return folder


def _or_nan(values: np.ndarray | None, n: int) -> np.ndarray:
    return np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)


def read_preferences(folder: str | os.PathLike) -> PreferenceSet:
    """Read a folder written by :func:`write_preferences`; a bad file, row or field raises DataFileError naming it."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise DataFileError(str(meta_path), "preference set metadata not found (write it with write_preferences)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(str(meta_path), f"corrupt JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise DataFileError(str(meta_path), f"not an rlexec preference set ({FORMAT!r} version {FORMAT_VERSION} expected)")
    expert_names = list(meta.get("expert_names") or [])
    obs_dim = meta.get("obs_dim")
    if not expert_names or not isinstance(obs_dim, int) or obs_dim < 1:
        raise DataFileError(str(meta_path), "needs a non-empty expert_names and a positive integer obs_dim")
    rule = LabelRule(**(meta.get("label_rule") or {}))
    trajectories = _read_trajectories(folder / TRAJECTORIES_FILE, obs_dim, len(expert_names))
    pairs_path = folder / PAIRS_FILE
    pairs = _read_table(pairs_path, ("chosen", "rejected"))
    chosen = np.asarray(pairs.column("chosen").to_numpy(zero_copy_only=False), dtype=np.int64)
    rejected = np.asarray(pairs.column("rejected").to_numpy(zero_copy_only=False), dtype=np.int64)
    for name, ids in (("chosen", chosen), ("rejected", rejected)):
        bad = np.flatnonzero((ids < 0) | (ids >= len(trajectories)))
        if bad.size:
            raise DataFileError(str(pairs_path), f"trajectory id {ids[bad[0]]} is not in {TRAJECTORIES_FILE} "
                                f"(0..{len(trajectories) - 1})", row=int(bad[0]) + 1, field=name)
    same_context = [trajectories[c].context_id == trajectories[r].context_id for c, r in zip(chosen, rejected)]
    if not all(same_context):
        row = same_context.index(False) + 1
        raise DataFileError(str(pairs_path), "chosen and rejected come from different contexts", row=row)
    utilities = {name: pairs.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
                 for name in ("utility_chosen", "utility_rejected") if name in pairs.column_names}
    return PreferenceSet(trajectories, chosen, rejected, expert_names, rule, list(meta.get("context_names") or []),
                         utilities.get("utility_chosen"), utilities.get("utility_rejected"))


TRAJECTORY_COLUMNS = ("context_id", "regime", "policy", "context", "num_steps", "observations", "actions",
                      "price_advantage_bps", "fill_rate", "t_done", "horizon", "ref_logp")


def _read_table(path: Path, columns: Sequence[str]) -> pa.Table:
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise DataFileError(str(path), "file not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(str(path), f"not a readable parquet file ({exc})") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataFileError(str(path), f"missing column(s) {missing}", field=missing[0])
    return table


def _fail(source: str, row: int, field_name: str, message: str):
    raise DataFileError(source, message, row=row, field=field_name)


def _read_trajectories(path: Path, obs_dim: int, num_experts: int) -> list[Trajectory]:
    table = _read_table(path, TRAJECTORY_COLUMNS)
    rows = table.to_pylist()
    trajectories = []
    context_dim = None
    for row_index, row in enumerate(rows, start=1):
        fail = partial(_fail, str(path), row_index)

        steps = row["num_steps"]
        if not isinstance(steps, int) or steps < 1:
            fail("num_steps", f"must be a positive integer, got {steps!r}")
        observations = np.asarray(row["observations"] or [], dtype=np.float32)
        if observations.size != steps * obs_dim:
            fail("observations", f"holds {observations.size} values, num_steps x obs_dim = {steps * obs_dim}")
        if not np.all(np.isfinite(observations)):
            fail("observations", "holds NaN or infinite values")
        actions = np.asarray(row["actions"] or [], dtype=np.int64)
        if actions.size != steps or (actions < 0).any():
            fail("actions", f"must be {steps} non-negative action ids")
        context = np.asarray(row["context"] or [], dtype=np.float32)
        if context_dim is None:
            context_dim = context.size
        if context.size != context_dim or not np.all(np.isfinite(context)):
            fail("context", f"must be {context_dim} finite numbers (as in row 1)")
        ref = row["ref_logp"]
        if ref is not None and len(ref) != num_experts:
            fail("ref_logp", f"must hold one value per expert ({num_experts}), got {len(ref)}")
        horizon = row["horizon"]
        if horizon is None or not horizon > 0:
            fail("horizon", f"must be > 0, got {horizon!r}")
        fill_rate = row["fill_rate"]
        if fill_rate is None or not 0.0 <= fill_rate <= 1.0:
            fail("fill_rate", f"must be in [0, 1], got {fill_rate!r}")
        trajectories.append(Trajectory(
            context_id=str(row["context_id"]), regime=str(row["regime"]), policy=str(row["policy"]), context=context,
            observations=observations.reshape(steps, obs_dim), actions=actions,
            price_advantage_bps=float(row["price_advantage_bps"]), fill_rate=float(fill_rate),
            t_done=math.nan if row["t_done"] is None else float(row["t_done"]), horizon=float(horizon),
            ref_logp=None if ref is None else np.asarray(ref, dtype=np.float64),
        ))
    if not trajectories:
        raise DataFileError(str(path), "holds no trajectories")
    return trajectories


# ---- synthetic data for the tests ------------------------------------------------------------------------
def synthetic_preferences(*, num_contexts: int = 64, num_experts: int = 3, num_actions: int = 4, obs_dim: int = 3,
                          num_steps: int = 6, regimes: Sequence[str] = ("calm", "volatile", "thin"),
                          criterion: str = "quality", seed: int = 0) -> tuple[PreferenceSet, dict[str, int]]:
    """A tiny problem with a known best expert per regime; returns (preference set, best expert per regime).

    Expert k (synthetic, not a trained network) plays action k. In regime r the outcome of a trajectory
    is the share of its steps that played action ``best[r] = r mod K`` (A in bp = 10 x share), so the
    trajectory rolled out by the best expert of the context's regime wins every comparison. Each
    context yields one trajectory per expert, each taking its own action with probability 0.7 and a
    uniform one otherwise. The context x is the regime's one-hot plus noise: a gate on x can learn
    which expert the regime prefers. The cached ``ref_logp`` is that of a uniform reference policy,
    ``T log(1/A)`` for every expert: experts that start as specialists (expert k favouring action k)
    then have ``Delta_k > 0`` exactly where their action wins.
    """
    rng = np.random.default_rng(seed)
    best = {regime: r % num_experts for r, regime in enumerate(regimes)}
    groups = []
    for c in range(num_contexts):
        regime_index = c % len(regimes)
        regime = regimes[regime_index]
        context = np.eye(len(regimes), dtype=np.float32)[regime_index] + rng.normal(0, 0.1, len(regimes)).astype(np.float32)
        group = []
        for k in range(num_experts):
            actions = np.where(rng.random(num_steps) < 0.7, k, rng.integers(0, num_actions, num_steps)).astype(np.int64)
            share = float(np.mean(actions == best[regime]))
            group.append(Trajectory(
                context_id=f"c{c}", regime=regime, policy=f"expert{k}", context=context,
                observations=rng.normal(size=(num_steps, obs_dim)).astype(np.float32), actions=actions,
                price_advantage_bps=10.0 * share, fill_rate=1.0, t_done=float(num_steps) * (1.0 - 0.5 * share),
                horizon=float(num_steps), ref_logp=np.full(num_experts, num_steps * math.log(1.0 / num_actions))))
        groups.append(group)
    rule = LabelRule(criterion=criterion)
    names = [f"expert{k}" for k in range(num_experts)]
    context_names = [f"regime_{r}" for r in regimes]
    return build_preferences(groups, rule, expert_names=names, context_names=context_names), best


# ---- from the trajectory store of `rlexec regimes --store` -----------------------------------------------
def groups_from_store(store, *, advantage_metric: str = "arrival_advantage_bps",
                      regimes: Sequence[str] | None = None,
                      only_regimes: Sequence[str] | None = None) -> tuple[list[list[Trajectory]], list[str]]:
    """The store's contexts (regime, seed) as groups of :class:`Trajectory`, and the context feature names.

    ``store``: a :class:`rlexec.evaluation.trajectory_store.TrajectoryStore`. A is ``advantage_metric``
    (spec 1.2's A is the advantage over the arrival price); the horizon T is the order's window
    (``window_end_s - window_start_s``) and ``t_done`` the store's ``t_done_s``, both in seconds. The
    reference cache ``ref_logp`` is the store's ``logp_<expert>`` columns summed over the steps, in
    ``store.experts`` order (the references are the exported experts the store scored with).

    Gate input x: :func:`rlexec.algorithms.sip.gate.context_features` (the one context function of
    rlexec, shared with the SIP gate and the ``kind: moe_dpo`` actor) of the first observation (the
    state before any action: the same for every policy of a context under common random numbers) and
    the episode's side, quantity and window start. ``regimes`` orders the regime one-hot (default: the
    store's regimes, sorted); give an ``rlexec sip`` run's regimes to initialise the gate from its gate.
    ``only_regimes`` keeps the contexts of those regimes only (a per-regime preference set, for a run
    over that regime's own experts); the one-hot keeps every regime of ``regimes``.
    """
    from rlexec.algorithms.sip.gate import (
        context_features,
        context_names,
        lob_observation_names,
    )

    stored = sorted({regime for regime, _ in store.contexts()})
    regimes = list(regimes) if regimes is not None else stored
    unknown = [r for r in stored if r not in regimes]
    if unknown:
        raise ConfigError(f"preferences: the store's regimes {unknown} are not in the gate's regimes {regimes}")
    if only_regimes is not None:
        missing = [r for r in only_regimes if r not in stored]
        if missing:
            raise ConfigError(f"preferences: regimes {missing} are not in the store (it has {stored})")
    groups = []
    for (regime, seed), by_policy in sorted(store.by_context().items()):
        if only_regimes is not None and regime not in only_regimes:
            continue
        group = []
        for policy in sorted(by_policy):
            t = by_policy[policy]
            outcome = t.outcome
            for field_name in (advantage_metric, "fill_rate", "window_start_s", "window_end_s", "side", "quantity"):
                if outcome.get(field_name) is None:
                    raise DataFileError("episodes.parquet", f"context ({regime}, {seed}), policy {policy}: missing",
                                        field=field_name)
            start, end = float(outcome["window_start_s"]), float(outcome["window_end_s"])
            first_obs = np.asarray(t.observations[:1], dtype=np.float64)
            identity = {"side": [outcome["side"]], "quantity": [outcome["quantity"]], "window_start_s": [start]}
            context = context_features(first_obs, lob_observation_names(first_obs.shape[1]), identity, regime,
                                       regimes)[0].astype(np.float32)
            t_done = outcome.get("t_done_s")
            group.append(Trajectory(
                context_id=f"{regime}/{seed}", regime=regime, policy=policy, context=context,
                observations=np.asarray(t.observations, dtype=np.float32), actions=np.asarray(t.actions, dtype=np.int64),
                price_advantage_bps=float(outcome[advantage_metric]), fill_rate=float(outcome["fill_rate"]),
                t_done=math.nan if t_done is None else float(t_done), horizon=end - start,
                ref_logp=np.asarray([t.log_prob(e) for e in store.experts], dtype=np.float64)))
        groups.append(group)
    return groups, context_names(regimes)


def preferences_from_store(store_folder: str | os.PathLike, rule: LabelRule, *, seed: int = 0,
                           advantage_metric: str = "arrival_advantage_bps",
                           regimes: Sequence[str] | None = None,
                           only_regimes: Sequence[str] | None = None) -> PreferenceSet:
    """Label every context of a trajectory store by ``rule`` (the noisy labeller draws from ``seed``);
    ``regimes`` orders the gate's regime one-hot, ``only_regimes`` keeps those regimes' contexts
    (:func:`groups_from_store`)."""
    from rlexec.evaluation.trajectory_store import TrajectoryStore

    store = TrajectoryStore.read(store_folder)
    if not store.experts:
        raise ConfigError(f"{store_folder}: the store scored no experts (run `rlexec regimes --store` with experts)")
    groups, context_names = groups_from_store(store, advantage_metric=advantage_metric, regimes=regimes,
                                              only_regimes=only_regimes)
    return build_preferences(groups, rule, expert_names=store.experts, context_names=context_names,
                             rng=np.random.default_rng(seed))
