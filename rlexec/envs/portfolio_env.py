"""Daily multi-asset portfolio env: cash trading of N stocks at the close, no shorting, no leverage.

One step is one trading day. At the close of day t the agent sees only closes up to t and says what
portfolio it wants to hold until the close of day t+1; the env rebalances at day t's close, pays the
transaction cost, and the portfolio then drifts with the close-to-close returns of day t+1.

Action (documented interface): a vector ``a`` of N+1 reals, entry 0 for cash and entry i for stock i.
The target weights are ``softmax(action_scale * clip(a, -1, 1))``: always on the simplex, so no short
position and no leverage can be expressed, and every bounded continuous-action algorithm (PPO, SAC,
APPO with a Box space) fits. ``action_scale`` (rlexec's default 5, configurable) lets one stock reach a
weight e^10 times another's at the bounds. Backtests that already have weights call
:meth:`PortfolioEnv.step_weights` (buy-and-hold, the Logic-Q ensemble), the same accounting as ``step``.

Accounting, with V the portfolio value and w the weights just before the rebalance at t's close
(the previous target drifted by day t's returns)::

    turnover  = sum_i |target_i - w_i|            over the stocks (cash absorbs the difference)
    V'        = V * (1 - cost_bp * 1e-4 * turnover)
    V_{t+1}   = V' * (target_cash + sum_i target_i * close_{t+1,i} / close_{t,i})
    reward    = reward_scale * log(V_{t+1} / V_t)

So the episode's summed reward is ``reward_scale * log(V_end / V_start)``. The cost is charged on the
traded value at the pre-cost value (a first-order approximation; exact to O(cost^2)).
``cost_bp`` (default 10 bp a side) and ``reward_scale`` (default 100: a daily log return of 1% is a
reward of 1) are rlexec's defaults.

Observation: the daily log returns of the ``lookback`` days ending at day t (close_{t-k}/close_{t-k-1}),
N per day, times 10 (so a 1% move is ~0.1), clipped to [-5, 5] (a -39% day, the largest in the
set are spin-off prints). It holds no future close: see ``tests/envs/test_portfolio_env.py``. The
current holdings are not in the observation, so a policy's target is a function of the market alone
(which lets the Logic-Q ensemble mix precomputed sub-policy targets).

Episodes: on ``part: train`` each reset starts at a random date of the part (seeded through
gymnasium's ``np_random``) and runs ``episode_days`` days or to the part's end; on validation / test
(``episode_days: null``) it runs the whole part from its first date, all in cash at the start.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlexec.data.daily import DOW30_UNIVERSE, DailySplit, load_daily
from rlexec.errors import ConfigError

OBS_SCALE, OBS_CLIP = 10.0, 5.0
DEFAULTS: dict[str, Any] = {
    "data": None,  # None: the shared daily S&P 500 file (rlexec.data.daily.default_daily_file)
    "symbols": list(DOW30_UNIVERSE),
    "split": {},
    "part": "train",
    "lookback": 20,
    "cost_bp": 10.0,
    "action_scale": 5.0,
    "reward_scale": 100.0,
    "episode_days": 252,  # train only; validation and test run the whole part
}


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class PortfolioEnv(gym.Env):
    """See the module docstring. ``env_config`` keys: :data:`DEFAULTS`."""

    metadata = {"render_modes": []}

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        unknown = set(config) - set(DEFAULTS)
        if unknown:
            raise ConfigError(f"portfolio env_config: unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.config = {**DEFAULTS, **config}
        self.panel = load_daily(self.config["data"], tuple(self.config["symbols"]))
        self.split = DailySplit.from_dict(self.config["split"])
        self.part = self.config["part"]
        self.first, self.last = self.panel.part_bounds(self.part, self.split)
        self.lookback = int(self.config["lookback"])
        if self.lookback < 1:
            raise ConfigError(f"portfolio env_config.lookback must be >= 1, got {self.lookback}")
        self.cost = float(self.config["cost_bp"]) * 1e-4
        if not 0 <= self.cost < 1:
            raise ConfigError(f"portfolio env_config.cost_bp must be in [0, 10000), got {self.config['cost_bp']}")
        self.action_scale = float(self.config["action_scale"])
        self.reward_scale = float(self.config["reward_scale"])
        self.episode_days = self.config["episode_days"] if self.part == "train" else None
        # a decision on day t needs lookback returns, i.e. closes back to t - lookback
        self.first = max(self.first, self.lookback)
        if self.first >= self.last:
            raise ConfigError(f"portfolio env: the {self.part} part has no date with {self.lookback} days of history")
        with np.errstate(divide="ignore"):
            self.log_returns = np.vstack([np.zeros((1, self.panel.close.shape[1])),
                                          np.diff(np.log(self.panel.close), axis=0)])
        self.n_assets = len(self.panel.symbols)
        self.observation_space = gym.spaces.Box(-OBS_CLIP, OBS_CLIP, (self.lookback * self.n_assets,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.n_assets + 1,), np.float32)
        self.t = self.end = self.first
        self.value = 1.0
        self.weights = self.all_cash()

    def all_cash(self) -> np.ndarray:
        weights = np.zeros(self.n_assets + 1)
        weights[0] = 1.0
        return weights

    def observation_at(self, t: int) -> np.ndarray:
        """Log returns of days t-lookback+1 .. t (rows oldest first), scaled and clipped, flattened."""
        window = self.log_returns[t - self.lookback + 1: t + 1]
        return np.clip(window * OBS_SCALE, -OBS_CLIP, OBS_CLIP).astype(np.float32).ravel()

    def target_weights(self, action: np.ndarray) -> np.ndarray:
        """The documented action -> weights map (cash first)."""
        action = np.clip(np.asarray(action, float).reshape(-1), -1.0, 1.0)
        if action.shape != (self.n_assets + 1,):
            raise ConfigError(f"portfolio env: action must have {self.n_assets + 1} entries (cash + "
                              f"{self.n_assets} stocks), got {action.shape}")
        return softmax(self.action_scale * action)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self.episode_days is None:
            self.t, self.end = self.first, self.last
        else:
            latest_start = max(self.first, self.last - int(self.episode_days))
            self.t = int(self.np_random.integers(self.first, latest_start + 1))
            self.end = min(self.last, self.t + int(self.episode_days))
        self.value = 1.0
        self.weights = self.all_cash()
        return self.observation_at(self.t), self.info()

    def info(self, **extra) -> dict:
        return {"date": str(self.panel.dates[self.t]), "value": self.value, "weights": self.weights.copy(), **extra}

    def step(self, action):
        return self.step_weights(self.target_weights(action))

    def step_weights(self, target: np.ndarray):
        """Rebalance to ``target`` (cash first, on the simplex) at day t's close and move to day t+1."""
        target = np.asarray(target, float)
        if target.shape != (self.n_assets + 1,) or np.any(target < -1e-12) or abs(target.sum() - 1) > 1e-6:
            raise ConfigError(f"portfolio env: target weights must be {self.n_assets + 1} non-negative numbers "
                              f"summing to 1 (cash first), got sum {target.sum():.6f}, min {target.min():.3g}")
        if self.t >= self.end:
            raise ConfigError("portfolio env: step after the episode ended; call reset()")
        turnover = float(np.abs(target[1:] - self.weights[1:]).sum())
        cost = self.cost * turnover
        growth = np.concatenate([[1.0], self.panel.close[self.t + 1] / self.panel.close[self.t]])
        gross = float(target @ growth)
        before = self.value
        self.value = before * (1.0 - cost) * gross
        self.weights = target * growth / gross
        self.t += 1
        reward = self.reward_scale * float(np.log(self.value / before))
        terminated = self.t >= self.end
        return self.observation_at(self.t), reward, terminated, False, self.info(turnover=turnover, cost=cost)


def run_weights(env: PortfolioEnv, choose, *, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One episode where ``choose(step, observation, current_weights)`` returns target weights (``step``
    counts from 0 in the episode; the date index is ``env.t``).

    Returns (dates, values): the portfolio value at the close of every date of the episode, the first
    being 1.0 (before any trade)."""
    observation, info = env.reset(seed=seed)
    dates, values = [info["date"]], [info["value"]]
    terminated, step = False, 0
    while not terminated:
        observation, _, terminated, _, info = env.step_weights(choose(step, observation, env.weights))
        step += 1
        dates.append(info["date"])
        values.append(info["value"])
    return np.array(dates, dtype="datetime64[D]"), np.array(values)


def buy_and_hold(env: PortfolioEnv) -> tuple[np.ndarray, np.ndarray]:
    """Equal weights over the stocks bought on the first date (paying the cost), then held untouched."""
    equal = np.concatenate([[0.0], np.full(env.n_assets, 1.0 / env.n_assets)])
    return run_weights(env, lambda step, observation, weights: equal if step == 0 else weights)
