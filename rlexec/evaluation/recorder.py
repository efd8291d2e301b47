"""Per-step trajectories of any strategy on any venue, with the log-probability of each action under
any policies passed in: what evaluation reports drill into and what preference data is built from.

One row per (order, step) while the order's episode runs::

    order  step  observation (list<float32>)  action  child  filled  cash  price  reward  fill_rate  logp_<policy> ...

``price`` is the step's average fill price (NaN without fills). ``logp_<name>`` is
``log pi_name(action | observation)`` for every policy in ``policies`` (models with logits: RLModules
or exported experts); it is only defined for discrete actions, and left out for fraction actions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rlexec.evaluation.episodes import StepRecord
from rlexec.policies.actors import log_probs
from rlexec.provenance import write_atomic


class TrajectoryRecorder:
    def __init__(self, policies: dict[str, Any] | None = None):
        self.policies = dict(policies or {})
        self._parts: list[dict[str, np.ndarray]] = []
        self._step = 0

    def start(self) -> None:
        """A new set of episodes: steps count from 0 again."""
        self._step = 0

    def record(self, observations: np.ndarray, actions: np.ndarray, step: StepRecord) -> None:
        rows = np.flatnonzero(step.active)
        actions = np.asarray(actions)
        discrete = np.issubdtype(actions.dtype, np.integer)
        flat_actions = actions.reshape(len(step.active), -1)[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            price = np.where(step.filled > 0, step.cash / step.filled, np.nan)
        part = {
            "order": rows.astype(np.int64), "step": np.full(rows.size, self._step, dtype=np.int64),
            "observation": np.asarray(observations, dtype=np.float32)[rows],
            "action": flat_actions[rows].astype(np.int64 if discrete else np.float64),
            "child": step.child[rows], "filled": step.filled[rows], "cash": step.cash[rows], "price": price[rows],
            "reward": np.asarray(step.reward, dtype=np.float64)[rows], "fill_rate": step.fill_rate[rows],
        }
        if discrete:
            for name, model in self.policies.items():
                part[f"logp_{name}"] = log_probs(model, part["observation"], part["action"])
        self._parts.append(part)
        self._step += 1

    def to_table(self) -> pa.Table:
        if not self._parts:
            return pa.table({})
        columns: dict[str, Any] = {}
        for key in self._parts[0]:
            values = np.concatenate([p[key] for p in self._parts])
            if key == "observation":
                width = values.shape[1]
                columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), width)
            else:
                columns[key] = pa.array(values)
        return pa.table(columns)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the trajectories as parquet (atomically: a crash leaves the previous file or none)."""
        return write_atomic(Path(path), lambda tmp: pq.write_table(self.to_table(), tmp))
