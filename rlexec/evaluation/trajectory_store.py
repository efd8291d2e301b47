"""The trajectory store: policies rolled out on common seeds, every step kept, every expert's log-probability.

Written by :func:`write_store` from the results of :func:`rlexec.evaluation.regime_table.run_regimes`
with ``record=True`` (one Ray task per regime), read back by :class:`TrajectoryStore`. A folder holds:

``steps.parquet``, one row per (regime, policy, episode, step) while the episode runs::

    regime  policy  episode  seed  step  observation (fixed-size list<float32>)  action  child  filled  cash
    price  reward  fill_rate  logp_<expert> ...

(the columns after ``step`` are :class:`~rlexec.evaluation.recorder.TrajectoryRecorder`'s;
``logp_<expert>`` = log pi_expert(action | observation), natural log, for every scored expert).

``episodes.parquet``, one row per (regime, policy, episode): the episode's identity (seed, side,
quantity, window) and every per-order metric of :mod:`rlexec.evaluation.metrics`, plus ``steps`` and
``t_done_s`` (seconds from the window start to the end of the decision interval in which the order
was complete; NaN if it never was).

``store.json``: format version, the experts scored, the config that made it, the provenance record.

A *context* is (regime, seed): all policies of one context saw the same market until their
actions first differed (common random numbers), so their trajectories can be compared in pairs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rlexec.errors import ConfigError
from rlexec.evaluation.regime_table import RegimeResult, RegimesConfig, per_episode_table
from rlexec.provenance import write_atomic, write_json_atomic

FORMAT, FORMAT_VERSION = "rlexec.trajectory_store", 1
STEPS_FILE, EPISODES_FILE, META_FILE = "steps.parquet", "episodes.parquet", "store.json"
LOGP_PREFIX = "logp_"


def steps_table(results: Sequence[RegimeResult]) -> pa.Table:
    """The recorded steps of every regime and policy, with their context columns in front."""
    parts = []
    for result in results:
        seeds = np.asarray(result.evaluation.orders.column("seed").to_numpy(), dtype=np.int64)
        for policy, table in result.trajectories.items():
            episode = table.column("order").to_numpy()
            table = table.rename_columns(["episode" if c == "order" else c for c in table.column_names])
            table = table.add_column(0, "regime", pa.array([result.regime] * table.num_rows, pa.string()))
            table = table.add_column(1, "policy", pa.array([policy] * table.num_rows, pa.string()))
            table = table.add_column(3, "seed", pa.array(seeds[episode], pa.int64()))
            parts.append(table)
    if not parts:
        raise ConfigError("trajectory store: nothing was recorded (run the regimes with record=True)")
    return pa.concat_tables(parts)


def completion_times(steps: pa.Table, decision_interval_s: float) -> dict[tuple[str, str, int], float]:
    """(regime, policy, episode) -> seconds to completion (end of the first step with fill rate >= 1)."""
    done = steps.filter(pc.greater_equal(steps["fill_rate"], 1.0 - 1e-12))
    first: dict[tuple[str, str, int], float] = {}
    for regime, policy, episode, step in zip(*(done[c].to_pylist() for c in ("regime", "policy", "episode", "step"))):
        key = (regime, policy, episode)
        first[key] = min(first.get(key, np.inf), (step + 1) * decision_interval_s)
    return first


def episodes_table(results: Sequence[RegimeResult], steps: pa.Table, decision_interval_s: float) -> pa.Table:
    table = per_episode_table(results)
    table = table.rename_columns(["policy" if c == "strategy" else c for c in table.column_names])
    keys = list(zip(*(table[c].to_pylist() for c in ("regime", "policy", "episode"))))
    counts = steps.group_by(["regime", "policy", "episode"]).aggregate([("step", "count")])
    n_steps = dict(zip(zip(*(counts[c].to_pylist() for c in ("regime", "policy", "episode"))),
                       counts["step_count"].to_pylist()))
    done = completion_times(steps, decision_interval_s)
    table = table.append_column("steps", pa.array([n_steps.get(k, 0) for k in keys], pa.int64()))
    return table.append_column("t_done_s", pa.array([done.get(k, np.nan) for k in keys], pa.float64()))


def write_store(results: Sequence[RegimeResult], config: RegimesConfig, folder: str | Path,
                record: dict[str, Any] | None = None) -> Path:
    """Write steps.parquet, episodes.parquet and store.json into ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    steps = steps_table(results)
    interval = float(config.env_config(config.regimes[0]).decision_interval_s)
    episodes = episodes_table(results, steps, interval)
    write_atomic(folder / STEPS_FILE, lambda tmp: pq.write_table(steps, tmp))
    write_atomic(folder / EPISODES_FILE, lambda tmp: pq.write_table(episodes, tmp))
    experts = [c[len(LOGP_PREFIX):] for c in steps.column_names if c.startswith(LOGP_PREFIX)]
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "experts": experts, "decision_interval_s": interval,
            "config": config.to_dict(), "record": record or {}}
    write_json_atomic(meta, folder / META_FILE)
    return folder


@dataclass(frozen=True)
class Trajectory:
    """One policy's episode in one context."""

    regime: str
    seed: int
    policy: str
    observations: np.ndarray  # (T, obs_dim) float32
    actions: np.ndarray  # (T,)
    logp: dict[str, np.ndarray]  # expert -> (T,) log pi_expert(a_t | s_t)
    steps: pa.Table  # the T rows of steps.parquet
    outcome: dict[str, Any]  # the row of episodes.parquet (metrics, t_done_s, side, ...)

    def log_prob(self, expert: str) -> float:
        """log pi_expert(trajectory) = sum_t log pi_expert(a_t | s_t) (the dynamics cancel in every ratio)."""
        return float(self.logp[expert].sum())


class TrajectoryStore:
    def __init__(self, steps: pa.Table, episodes: pa.Table, meta: dict[str, Any]):
        self.steps, self.episodes, self.meta = steps, episodes, meta

    @classmethod
    def read(cls, folder: str | Path) -> TrajectoryStore:
        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{folder / META_FILE}: not a trajectory store (file missing)") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{folder / META_FILE}: corrupt store metadata ({exc})") from None
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise ConfigError(f"{folder / META_FILE}: not a version-{FORMAT_VERSION} rlexec trajectory store")
        tables = []
        for name in (STEPS_FILE, EPISODES_FILE):
            try:
                tables.append(pq.read_table(folder / name))
            except FileNotFoundError:
                raise ConfigError(f"{folder / name}: trajectory store file missing") from None
            except pa.ArrowInvalid as exc:
                raise ConfigError(f"{folder / name}: corrupt parquet ({exc})") from None
        return cls(*tables, meta)

    @property
    def experts(self) -> list[str]:
        return [c[len(LOGP_PREFIX):] for c in self.steps.column_names if c.startswith(LOGP_PREFIX)]

    @property
    def policies(self) -> list[str]:
        return sorted(set(self.steps["policy"].to_pylist()))

    def contexts(self) -> list[tuple[str, int]]:
        """Every (regime, seed), sorted."""
        return sorted(set(zip(self.episodes["regime"].to_pylist(), self.episodes["seed"].to_pylist())))

    def by_context(self) -> dict[tuple[str, int], dict[str, Trajectory]]:
        """(regime, seed) -> policy -> its trajectory there."""
        steps = self.steps.sort_by([("regime", "ascending"), ("seed", "ascending"), ("policy", "ascending"),
                                    ("step", "ascending")])
        keys = list(zip(*(steps[c].to_pylist() for c in ("regime", "seed", "policy"))))
        observations = np.array(steps["observation"].combine_chunks().flatten().to_numpy(zero_copy_only=False),
                                  dtype=np.float32).reshape(steps.num_rows, -1)
        actions = steps["action"].to_numpy().copy()  # writable: torch refuses read-only arrays
        logp = {e: steps[LOGP_PREFIX + e].to_numpy().copy() for e in self.experts}
        outcomes = {(row["regime"], row["seed"], row["policy"]): row for row in self.episodes.to_pylist()}
        grouped: dict[tuple[str, int], dict[str, Trajectory]] = {}
        start = 0
        for end in range(1, len(keys) + 1):
            if end < len(keys) and keys[end] == keys[start]:
                continue
            regime, seed, policy = keys[start]
            grouped.setdefault((regime, seed), {})[policy] = Trajectory(
                regime=regime, seed=seed, policy=policy, observations=observations[start:end],
                actions=actions[start:end], logp={e: v[start:end] for e, v in logp.items()},
                steps=steps.slice(start, end - start), outcome=outcomes[(regime, seed, policy)])
            start = end
        return grouped
