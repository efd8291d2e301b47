"""N parent orders executed in lockstep, one decision per step: the view the evaluation loop runs on.

Both venues serve the same :class:`Episodes` protocol, so one loop (:func:`rlexec.evaluation.runner.run_episodes`),
one trajectory recorder and one metrics path serve both:

* :class:`BarEpisodes`: a batch of orders on minute bars, stepped by the vectorised batch engine with
  the bar env's own observation interpreter, action interpreters and reward (so a policy sees exactly
  what it saw in training); actions are indices into ``action_values`` (integers, read by the
  config's action interpreter: fractions of Q or multiples of the TWAP pace) or fractions of Q
  (floats), e.g. a broker strategy's ``fractions(state)``.
* :class:`LOBEpisodes`: one LOB execution env per episode seed (common random numbers: episode e of
  every strategy replays seed ``seed + e``), stepped together; actions are placements (0 market,
  1 limit at the near touch, 2 hold) of the child order that the env's broker sizes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from rlexec.data.orders import orders_table
from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import BatchExecutionEngine, ExecState, OrderBatch
from rlexec.envs.interpreters import ObservationInterpreter, action_interpreter
from rlexec.envs.lob_env import LOBExecutionConfig, LOBExecutionEnv
from rlexec.envs.reward import PriceAdvantagePenaltyReward
from rlexec.evaluation.metrics import OrderOutcomes

NS_PER_MINUTE = 60_000_000_000


@dataclass(frozen=True)
class StepRecord:
    """One decision of N orders; ``active`` is False for orders whose episode had already ended."""

    active: np.ndarray  # (N,) bool
    child: np.ndarray  # (N,) shares the decision asked for
    filled: np.ndarray  # (N,) shares filled during the step
    cash: np.ndarray  # (N,) sum of fill qty x price during the step (USD)
    reward: np.ndarray  # (N,) reward of the step
    fill_rate: np.ndarray  # (N,) executed / Q after the step


class Episodes(Protocol):
    """What the evaluation loop needs of a venue."""

    def reset(self) -> np.ndarray:
        """Start every episode; returns the first observations, (N, obs_dim)."""

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, StepRecord]:
        """Apply one decision per order; returns the next observations and what the step did."""

    @property
    def done(self) -> bool: ...

    @property
    def state(self) -> Any:
        """What a broker strategy acts on (the bar engine's :class:`ExecState`); None where brokers live in the env."""

    def outcomes(self) -> OrderOutcomes:
        """The finished orders (episode rewards are added by the loop)."""

    def identity(self) -> pa.Table:
        """One row per order: what it was (symbol, date, side, quantity, ... or episode, seed, ...)."""

    def curve_minutes(self, steps: int) -> np.ndarray:
        """(K,) minutes since the order start of each fill-curve point."""

    def fill_curve(self, records: list[StepRecord]) -> np.ndarray:
        """(N, K) fraction of Q filled by each point of :meth:`curve_minutes`."""

    def decision_minutes(self, steps: int) -> np.ndarray:
        """Minutes since the order start of each decision, for the plots."""


class BarEpisodes:
    def __init__(self, batch: OrderBatch, config: ExecutionConfig, *, oracle: bool = False):
        self.batch, self.config = batch, config
        self.engine = BatchExecutionEngine(config)
        self.observe = ObservationInterpreter(config, oracle=oracle)
        self.to_fraction = action_interpreter(config)
        self.reward_fn = PriceAdvantagePenaltyReward(config.reward)

    @property
    def state(self) -> ExecState:
        return self.engine.state

    @property
    def done(self) -> bool:
        return self.engine.state.done

    def reset(self) -> np.ndarray:
        return self.observe(self.engine.reset(self.batch)).copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, StepRecord]:
        actions = np.asarray(actions)
        state = self.engine.state
        if np.issubdtype(actions.dtype, np.integer):
            fractions = self.to_fraction(actions.reshape(-1), state)
        else:  # a broker strategy's fractions of Q, whatever the action interpreter
            fractions = np.clip(actions.reshape(-1).astype(np.float64), 0.0, 1.0)
        remaining, cash_before = state.remaining.copy(), state.cash.copy()
        last = state.t == state.n_steps - 1
        # the last step asks for all that remains whatever the action (the kernel's rule); force_remainder
        # only decides whether what the cap leaves of it trades anyway
        child = remaining if last else np.minimum(fractions * self.batch.quantity, remaining)
        outcome = self.engine.step(fractions)
        state = self.engine.state
        record = StepRecord(
            active=np.ones(len(self.batch), dtype=bool), child=child, filled=outcome.quantity.copy(),
            cash=state.cash - cash_before, reward=self.reward_fn(outcome, self.batch.quantity),
            fill_rate=state.fill_rate.copy(),
        )
        return self.observe(state).copy(), record

    def outcomes(self) -> OrderOutcomes:
        b, s = self.batch, self.engine.state
        return OrderOutcomes(sigma=b.sigma, quantity=b.quantity, executed=s.executed, cash=s.cash,
                             reference_price=b.reference_price, twap_price=b.twap_price, market_vwap=b.market_vwap,
                             reward=np.zeros(len(b)))

    def identity(self) -> pa.Table:
        return orders_table(list(self.batch.orders))

    def curve_minutes(self, steps: int) -> np.ndarray:
        return np.arange(1, self.config.horizon_minutes + 1, dtype=np.float64)

    def fill_curve(self, records: list[StepRecord]) -> np.ndarray:
        return np.cumsum(self.engine.state.minute_fills, axis=1) / self.batch.quantity[:, None]

    def decision_minutes(self, steps: int) -> np.ndarray:
        return np.arange(self.config.n_steps, dtype=np.float64) * self.config.step_minutes


class LOBEpisodes:
    def __init__(self, config: LOBExecutionConfig, *, episodes: int, seed: int, broker: str | None = None):
        if broker is not None:
            config = dataclasses.replace(config, broker=dataclasses.replace(config.broker, name=broker))
        self.config, self.seeds = config, [seed + e for e in range(episodes)]
        self.envs = [LOBExecutionEnv(config) for _ in self.seeds]
        self._finished = np.zeros(len(self.envs), dtype=bool)

    state = None  # the broker lives inside the env: strategies are placements, not fractions

    @property
    def done(self) -> bool:
        return bool(self._finished.all())

    def reset(self) -> np.ndarray:
        self._finished[:] = False
        return np.stack([env.reset(seed=s)[0] for env, s in zip(self.envs, self.seeds)])

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, StepRecord]:
        actions = np.asarray(actions).reshape(-1)
        n = len(self.envs)
        observations = np.zeros((n, *self.envs[0].observation_space.shape), dtype=np.float32)
        child, filled, cash, reward = (np.zeros(n) for _ in range(4))
        active = ~self._finished
        for i, env in enumerate(self.envs):
            if not active[i]:
                observations[i] = self._last_obs[i]
                continue
            executed, spent = env.executed, env.cash
            observations[i], reward[i], terminated, truncated, _ = env.step(int(actions[i]))
            child[i] = env.last_child
            filled[i], cash[i] = env.executed - executed, env.cash - spent
            self._finished[i] = terminated or truncated
        self._last_obs = observations
        fill_rate = np.array([env.executed / env.quantity for env in self.envs])
        return observations, StepRecord(active, child, filled, cash, reward, fill_rate)

    def outcomes(self) -> OrderOutcomes:
        envs = self.envs
        vwaps = [env.venue.vwap_between(env.window_start, env.window_end) for env in envs]
        return OrderOutcomes(
            sigma=[env.sigma for env in envs], quantity=[env.quantity for env in envs],
            executed=[env.executed for env in envs], cash=[env.cash for env in envs],
            reference_price=[env.arrival_price for env in envs], twap_price=[window_twap_price(env) for env in envs],
            market_vwap=[v * env.venue.tick_size if v is not None else np.nan for v, env in zip(vwaps, envs)],
            reward=np.zeros(len(envs)),
        )

    def identity(self) -> pa.Table:
        envs = self.envs
        return pa.table({
            "episode": np.arange(len(envs)), "seed": self.seeds,
            "side": ["sell" if env.sigma > 0 else "buy" for env in envs],
            "quantity": [float(env.quantity) for env in envs],
            "window_start_s": [env.window_start / 1e9 for env in envs],
            "window_end_s": [env.window_end / 1e9 for env in envs],
        })

    def curve_minutes(self, steps: int) -> np.ndarray:
        return np.arange(1, steps + 1) * self.config.decision_interval_s / 60.0

    def fill_curve(self, records: list[StepRecord]) -> np.ndarray:
        return np.stack([r.fill_rate for r in records], axis=1)

    def decision_minutes(self, steps: int) -> np.ndarray:
        minutes = self.curve_minutes(steps)
        return minutes - minutes[0]


def window_twap_price(env: LOBExecutionEnv) -> float:
    """Mean of the one-minute trade VWAPs over the episode's window, in dollars (spec 0's p_twap)."""
    venue = env.venue
    vwaps = []
    for start in range(env.window_start, env.window_end, NS_PER_MINUTE):
        vwap = venue.vwap_between(start, min(start + NS_PER_MINUTE, env.window_end) - 1)
        if vwap is not None:
            vwaps.append(vwap)
    return float(np.mean(vwaps)) * venue.tick_size if vwaps else float("nan")
