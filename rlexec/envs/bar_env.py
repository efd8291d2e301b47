"""Gymnasium view of one parent order on the batch engine (the OPD execution MDP, spec 2.1)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlexec.data import MarketData, load_sample, read_many
from rlexec.data.orders import Order, OrderGenerator, read_orders
from rlexec.data.splits import DataSplit
from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import BatchExecutionEngine, ExecState, OrderBatch, prepare_orders
from rlexec.envs.interpreters import ObservationInterpreter, action_interpreter
from rlexec.envs.reward import PriceAdvantagePenaltyReward


ORACLE_OBS = "oracle_obs"  # info key of the teacher's observation (env_config teacher_observation: true)


class BarExecutionEnv(gym.Env):
    """Execute one parent order over ``n_steps`` intervals of minute bars.

    ## Action Space
    ``Discrete(len(action_values))``: trade ``action_values[a] * Q`` (at most what remains) in the next
    interval; default {0, 0.25, 0.5, 0.75, 1}. With ``execution.action_interpreter: twap_relative``:
    trade ``action_values[a] * remaining / steps_left`` (a multiple of the TWAP pace of what remains;
    default {0, 0.5, 1, 1.5, 2}). With ``continuous=True`` (fraction interpreter only):
    ``Box(0, 1, (1,))``, the fraction itself. The last interval trades the whole remainder whatever the action.

    ## Observation Space
    ``Box(-inf, inf, (3 + 6 * (lookback + horizon),), float32)``:

    | index | meaning |
    |---|---|
    | 0 | remaining shares / Q |
    | 1 | elapsed steps / n_steps |
    | 2 | side: +1 sell, -1 buy |
    | 3.. | minute features (OHLC, typical price as % from the arrival price; log volume), past only |

    With ``oracle=True`` the minute features cover the whole window, future included (the OPD teacher).

    ## Reward
    ``scale * (PA_t - alpha * concentration_t)``, see :class:`rlexec.envs.config.RewardConfig`.

    ## Episode End
    Terminates after ``n_steps`` steps; never truncates. ``info`` carries the fills so far.

    ## Config (RLlib ``env_config`` or keywords)
    ``execution`` (dict for :class:`ExecutionConfig`), ``oracle``, ``continuous``, ``data`` (bar files;
    default: the shipped sample), ``split`` and ``part`` (a :class:`rlexec.data.splits.DataSplit`
    mapping or ``{"preset": name}``, and which part hosts the orders: train, validation or test),
    ``orders`` (an order file; default: random orders drawn with the env's seed), ``size_fraction``,
    ``symbols``, ``order_pool_size``, ``teacher_observation`` (put the oracle observation in
    ``info["oracle_obs"]`` for OPD distillation; the observation itself stays the student's).

    >>> env = BarExecutionEnv()
    >>> obs, info = env.reset(seed=0)
    >>> total = 0.0
    >>> for _ in range(8):
    ...     obs, reward, terminated, truncated, info = env.step(1)  # 25% of Q per step
    ...     total += reward
    >>> terminated, round(info["fill_rate"], 6)
    (True, 1.0)
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        market: MarketData | None = None,
        orders: list[Order] | None = None,
        execution: ExecutionConfig | None = None,
    ):
        config = dict(config or {})
        self.execution = execution or ExecutionConfig.from_dict(config.get("execution", {}))
        split = DataSplit.from_dict(config["split"]) if config.get("split") else None
        if market is None:
            data = config.get("data")
            if split is not None:
                market = split.market()
            else:
                market = MarketData.from_table(read_many(list(data)), source="env data") if data else load_sample()
        self.market = market
        if orders is None and config.get("orders"):
            orders = read_orders(config["orders"])
        self._fixed_orders = orders
        self.generator = OrderGenerator(
            horizon_minutes=self.execution.horizon_minutes,
            size_fraction=tuple(config.get("size_fraction", (0.001, 0.01))),
            symbols=tuple(config["symbols"]) if config.get("symbols") else None,
            sessions=split.sessions(market, config.get("part", "train")) if split is not None else None,
        )
        self.pool_size = int(config.get("order_pool_size", 1024))
        self.engine = BatchExecutionEngine(self.execution)
        self.observe = ObservationInterpreter(self.execution, oracle=bool(config.get("oracle", False)))
        # OPD distillation: the teacher's (oracle) view travels in ``info``, never in the observation.
        self.observe_oracle = (
            ObservationInterpreter(self.execution, oracle=True) if config.get("teacher_observation") else None
        )
        self.interpret_action = action_interpreter(self.execution, continuous=bool(config.get("continuous", False)))
        self.reward_fn = PriceAdvantagePenaltyReward(self.execution.reward)
        self.observation_space = self.observe.space()
        self.action_space = self.interpret_action.space()
        self._pool: OrderBatch | None = None
        if orders is not None:
            self._pool = prepare_orders(self.market, orders, self.execution)

    @property
    def state(self) -> ExecState:
        """The engine state of the current order (what broker strategies act on)."""
        return self.engine.state

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = options or {}
        if "order" in options:
            super().reset(seed=seed)
            batch = prepare_orders(self.market, [options["order"]], self.execution)
        else:
            index = self.next_order_index(seed=seed)
            batch = self._pool.select(np.array([options.get("order_index", index)]))
        state = self.engine.reset(batch)
        return self.observe(state)[0].copy(), self._info(state)

    def next_order_index(self, *, seed: int | None = None) -> int:
        """The random draws of :meth:`reset` without the episode: reseed (if ``seed``), draw the order
        pool when reset would, and return the next order's index in :attr:`order_pool`.

        The batched rollout path (rlexec.training.batched_runner) calls this once per episode, so its
        orders are the ones this env's successive resets would host.
        """
        super().reset(seed=seed)
        if self._pool is None or (seed is not None and self._fixed_orders is None):
            orders = self.generator.sample(self.market, self.np_random, self.pool_size)
            self._pool = prepare_orders(self.market, orders, self.execution)
        return int(self.np_random.integers(len(self._pool)))

    @property
    def order_pool(self) -> OrderBatch | None:
        """The prepared orders resets draw from (None until the first reset of a randomly drawn pool)."""
        return self._pool

    def step(self, action):
        fractions = self.interpret_action(action, self.engine.state)
        outcome = self.engine.step(fractions)
        state = self.engine.state
        reward = float(self.reward_fn(outcome, state.batch.quantity)[0])
        obs = self.observe(state)[0].copy()
        return obs, reward, state.done, False, self._info(state)

    def _info(self, state: ExecState) -> dict[str, Any]:
        executed = float(state.executed[0])
        info = {
            "executed": executed,
            "remaining": float(state.remaining[0]),
            "fill_rate": executed / float(state.batch.quantity[0]),
            # 0 until the first fill, not NaN: NaN != NaN breaks equality checks on info dicts.
            "average_price": float(state.cash[0] / executed) if executed > 0 else 0.0,
            "step": state.t,
        }
        if self.observe_oracle is not None:
            info[ORACLE_OBS] = self.observe_oracle(state)[0].copy()
        return info
