"""Evaluate the four brokers on the LOB execution environment over simulated (or replayed) episodes.

Episode ``e`` of every broker resets the environment with seed ``seed + e``: the same background
market (common random numbers), so the per-episode differences between brokers are paired.
The horizon's average price ``p_twap`` is the mean of the window's one-minute trade VWAPs (spec 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from rlexec.envs.lob_brokers import BROKERS
from rlexec.envs.lob_env import ACTION_NAMES, LOBExecutionConfig, LOBExecutionEnv
from rlexec.evaluation.metrics import aggregate, order_metrics
from rlexec.evaluation.runner import Evaluation, StrategyResult

NS_PER_MINUTE = 60_000_000_000


def window_twap_price(env: LOBExecutionEnv) -> float:
    """Mean of the one-minute trade VWAPs over the episode's window, in dollars."""
    venue = env.venue
    vwaps = []
    for start in range(env.window_start, env.window_end, NS_PER_MINUTE):
        vwap = venue.vwap_between(start, min(start + NS_PER_MINUTE, env.window_end) - 1)
        if vwap is not None:
            vwaps.append(vwap)
    return float(np.mean(vwaps)) * venue.tick_size if vwaps else float("nan")


def run_broker(
    config: LOBExecutionConfig, *, action: int | Callable[[np.ndarray], int], episodes: int, seed: int,
    on_episode: Callable[[], None] | None = None, name: str | None = None,
) -> tuple[StrategyResult, pa.Table, np.ndarray]:
    """Run ``episodes`` episodes of one broker taking ``action`` (a fixed placement, or a policy
    ``observation -> action``); returns the result, the episode identity table and the fill-curve
    times (minutes since the window start)."""
    choose = action if callable(action) else (lambda _obs, fixed=action: fixed)
    env = LOBExecutionEnv(config)
    columns = {k: [] for k in ("sigma", "quantity", "executed", "cash", "reference", "twap", "vwap", "reward")}
    identity = {k: [] for k in ("episode", "seed", "side", "quantity", "window_start_s", "window_end_s")}
    curves = []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        curve, total, done = [], 0.0, False
        while not done:
            obs, reward, done, _, info = env.step(choose(obs))
            total += reward
            curve.append(info["fill_rate"])
        columns["sigma"].append(env.sigma)
        columns["quantity"].append(env.quantity)
        columns["executed"].append(env.executed)
        columns["cash"].append(env.cash)
        columns["reference"].append(env.arrival_price)
        columns["twap"].append(window_twap_price(env))
        vwap = env.venue.vwap_between(env.window_start, env.window_end)
        columns["vwap"].append(vwap * env.venue.tick_size if vwap is not None else float("nan"))
        columns["reward"].append(total)
        identity["episode"].append(e)
        identity["seed"].append(seed + e)
        identity["side"].append("sell" if env.sigma > 0 else "buy")
        identity["quantity"].append(float(env.quantity))
        identity["window_start_s"].append(env.window_start / 1e9)
        identity["window_end_s"].append(env.window_end / 1e9)
        curves.append(curve)
        if on_episode is not None:
            on_episode()
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    metrics = order_metrics(
        sigma=arrays["sigma"], quantity=arrays["quantity"], executed=arrays["executed"], cash=arrays["cash"],
        reference_price=arrays["reference"], twap_price=arrays["twap"], market_vwap=arrays["vwap"],
        reward=arrays["reward"],
    )
    length = max(len(c) for c in curves)
    fill_curve = np.array([c + [c[-1]] * (length - len(c)) for c in curves])
    minutes = np.arange(1, length + 1) * config.decision_interval_s / 60.0
    return StrategyResult(name or config.broker.name, metrics, fill_curve, aggregate(metrics)), pa.table(identity), minutes


def evaluate_brokers(
    config: LOBExecutionConfig, *, brokers: tuple[str, ...] = BROKERS, action: int = 0, episodes: int = 20,
    seed: int = 0, on_episode: Callable[[], None] | None = None,
    policies: dict[str, tuple[str, Callable[[np.ndarray], int]]] | None = None,
) -> Evaluation:
    """Every broker over the same ``episodes`` seeds; ``action`` is the placement every child uses.

    ``policies`` maps a result name to ``(broker, observation -> action)``: a learned placement
    (e.g. a Q-learned expert) run over the same seeds as the fixed-placement brokers.
    """
    if not 0 <= action < len(ACTION_NAMES):
        raise ValueError(f"action must be 0..{len(ACTION_NAMES) - 1} ({', '.join(ACTION_NAMES)}), got {action}")
    results, identity, minutes = [], None, None
    runs = [(name, name, action) for name in brokers]
    runs += [(label, broker, policy) for label, (broker, policy) in (policies or {}).items()]
    for label, broker, placement in runs:
        broker_config = dataclasses.replace(config, broker=dataclasses.replace(config.broker, name=broker))
        result, identity, minutes = run_broker(broker_config, action=placement, episodes=episodes, seed=seed,
                                               on_episode=on_episode, name=label)
        results.append(result)
    decisions = minutes - minutes[0]
    return Evaluation(orders=identity, results=results, baseline=brokers[0], curve_minutes=minutes,
                      decision_minutes=decisions)

