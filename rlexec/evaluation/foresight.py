"""What the OPD teacher knows that a past-only student cannot: measured on the bars (issue 11, spec 2.5).

The teacher sees the whole horizon; the student sees the past. Whether a student can learn what the
teacher does depends on how much of the future the past predicts. Three measurements answer that,
per order ``n`` and decision step ``t`` (the last step has no choice: it trades what remains):

* **Timing advantage** ``a[n, t] = sigma (p_t / mean_{s >= t} p_s - 1) 1e4`` bp. ``p_t`` is the mean price of
  window ``t``'s traded minutes, the fill price before impact. ``a > 0``: trading the step's child
  now beats spreading it over what is left. Knowing ``a`` is worth ``E|a|`` bp per decision (the
  oracle's edge). A trader who predicts it with ``a_hat`` gets ``E[a sign(a_hat)]`` (the captured edge).
* **Predictability**: a ridge regression of ``a`` on what the student sees at ``t`` (:data:`PAST_FEATURES`),
  fitted on one set of orders (the train days) and scored out of sample (R^2, correlation, captured
  edge) on another.
* **Policy timing**: each policy's share of the remaining quantity traded at ``t``, correlated with
  ``a``. A policy that exploits the future trades more when ``a`` is high. A ridge fit of that share on
  the past features, scored out of sample, says how much of a policy's behaviour a past-only
  student could copy: the most OPD's distillation term can transfer.
* **Directional bets**: the price drift over the horizon per side, on the fit and the scored orders,
  and each policy's share of Q filled in the horizon's first half per side. A student that learned
  the training days' drift (sell early on falling days) trades one side early whatever the day.

``rlexec foresight`` prints and writes all three. Nothing here trains; the ridge is closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlexec.data.panel import CLOSE, VOLUME
from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import OrderBatch
from rlexec.evaluation.episodes import BarEpisodes
from rlexec.evaluation.runner import decide

RETURN_LAGS = (5, 15, 30, 60)  # minutes
PAST_FEATURES = (
    *(f"return_{k}m_bps" for k in RETURN_LAGS),  # sigma-signed: + = the price moved the trader's way
    "return_since_start_bps",
    "volatility_30m_bps",
    "last_window_volume",  # log1p(volume / (step minutes x the previous session's mean minute volume))
    "time_of_day",  # session minute of the decision / 390
    "step",  # t / T
)


def window_prices(batch: OrderBatch, config: ExecutionConfig) -> np.ndarray:
    """(N, T) mean fill-price of each decision window's traded minutes (all minutes where none traded)."""
    n, step = len(batch), config.step_minutes
    price = batch.price.reshape(n, config.n_steps, step)
    traded = batch.volume.reshape(n, config.n_steps, step) > 0
    count = traded.sum(axis=2)
    traded_mean = np.where(traded, price, 0.0).sum(axis=2) / np.maximum(count, 1)
    return np.where(count > 0, traded_mean, price.mean(axis=2))


def timing_advantage(batch: OrderBatch, config: ExecutionConfig) -> np.ndarray:
    """(N, T) bp: sigma (p_t / mean of p_t..p_{T-1} - 1) 1e4; the last column is 0 by construction."""
    prices = window_prices(batch, config)
    remaining_mean = np.cumsum(prices[:, ::-1], axis=1)[:, ::-1] / np.arange(config.n_steps, 0, -1)
    return batch.sigma[:, None] * (prices / remaining_mean - 1.0) * 1e4


def past_features(batch: OrderBatch, config: ExecutionConfig) -> np.ndarray:
    """(N, T, F) :data:`PAST_FEATURES` at each decision, from the bars before the decision minute only."""
    n, T, step, L = len(batch), config.n_steps, config.step_minutes, batch.lookback_minutes
    close = batch.window_bars[..., CLOSE]
    volume = batch.window_bars[..., VOLUME]
    sigma = batch.sigma[:, None]
    out = np.empty((n, T, len(PAST_FEATURES)))
    starts = np.array([o.start_minute for o in batch.orders], dtype=np.float64)
    rows = np.arange(n)
    for t in range(T):
        seen = L + t * step  # minutes of the window strictly before the decision
        if seen == 0:
            last = batch.reference_price
            out[:, t, : len(RETURN_LAGS) + 2] = 0.0
        else:
            last = close[:, seen - 1]
            for j, k in enumerate(RETURN_LAGS):
                earlier = close[rows, max(seen - 1 - k, 0)]
                out[:, t, j] = sigma[:, 0] * (last / earlier - 1.0) * 1e4
            out[:, t, len(RETURN_LAGS)] = sigma[:, 0] * (last / batch.reference_price - 1.0) * 1e4
            recent = close[:, max(seen - 31, 0):seen]
            out[:, t, len(RETURN_LAGS) + 1] = (np.std(np.diff(np.log(recent), axis=1), axis=1) * 1e4
                                               if recent.shape[1] > 2 else 0.0)
        window_volume = volume[:, max(seen - step, 0):seen].sum(axis=1) if seen else np.zeros(n)
        out[:, t, len(RETURN_LAGS) + 2] = np.log1p(window_volume / (step * batch.volume_scale))
        out[:, t, len(RETURN_LAGS) + 3] = (starts + t * step) / 390.0
        out[:, t, len(RETURN_LAGS) + 4] = t / T
    return out


@dataclass(frozen=True)
class RidgeFit:
    """Closed-form ridge regression on standardised features (intercept unpenalised)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> "RidgeFit":
        if len(y) < 2:
            raise ValueError(f"ridge fit needs at least 2 rows, got {len(y)}")
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        z = (x - mean) / scale
        y_mean = float(y.mean())
        coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y_mean))
        return cls(mean, scale, coef, y_mean)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept


def r_squared(y: np.ndarray, prediction: np.ndarray) -> float:
    """1 - SSE / SST around y's own mean: below 0 out of sample when the fit is worse than the mean."""
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - prediction) ** 2)) / total if total > 0 else 0.0


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _decisions(values: np.ndarray) -> np.ndarray:
    """(N, T, ...) -> (N * (T - 1), ...): the steps that have a choice."""
    return values[:, :-1].reshape(-1, *values.shape[2:])


def predictability(fit_batch: OrderBatch, score_batch: OrderBatch, config: ExecutionConfig,
                   alpha: float = 1.0) -> dict[str, float]:
    """How well the past predicts the timing advantage: ridge fitted on ``fit_batch``, scored on both."""
    x_fit, y_fit = _decisions(past_features(fit_batch, config)), _decisions(timing_advantage(fit_batch, config))
    x_out, y_out = _decisions(past_features(score_batch, config)), _decisions(timing_advantage(score_batch, config))
    model = RidgeFit.fit(x_fit, y_fit, alpha)
    guess = model.predict(x_out)
    return {
        "decisions_fit": int(len(y_fit)),
        "decisions_scored": int(len(y_out)),
        "advantage_sd_bps": float(y_out.std()),
        "oracle_edge_bps": float(np.abs(y_out).mean()),
        "captured_edge_bps": float((y_out * np.sign(guess)).mean()),
        "captured_edge_se_bps": float((y_out * np.sign(guess)).std(ddof=1) / np.sqrt(len(y_out))),
        "r2_fit": r_squared(y_fit, model.predict(x_fit)),
        "r2_out_of_sample": r_squared(y_out, guess),
        "correlation_out_of_sample": _correlation(guess, y_out),
        "sign_accuracy_out_of_sample": float(np.mean(np.sign(guess) == np.sign(y_out))),
        "horizon_drift_fit_bps": horizon_drift(fit_batch, config),
        "horizon_drift_scored_bps": horizon_drift(score_batch, config),
    }


SIDES = {"buy": -1.0, "sell": 1.0}


def _mean_per_side(values: np.ndarray, batch: OrderBatch) -> dict[str, float]:
    """``{"buy": mean, "sell": mean}`` of one value per order; NaN for a side with no order."""
    return {side: float(values[batch.sigma == sigma].mean()) if np.any(batch.sigma == sigma) else float("nan")
            for side, sigma in SIDES.items()}


def horizon_drift(batch: OrderBatch, config: ExecutionConfig) -> dict[str, float]:
    """Mean price change from the first to the last decision window, bp, per side (not signed by side)."""
    prices = window_prices(batch, config)
    return _mean_per_side((prices[:, -1] / prices[:, 0] - 1.0) * 1e4, batch)


def front_share(filled: np.ndarray, batch: OrderBatch) -> dict[str, float]:
    """Mean share of Q filled in the first half of the decision steps, per side."""
    return _mean_per_side(filled[:, : filled.shape[1] // 2].sum(axis=1) / batch.quantity, batch)


def step_fills(acting: Any, batch: OrderBatch, config: ExecutionConfig, *, oracle: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """(filled, remaining_before), each (N, T) in shares: what ``acting`` (a broker or an actor) did per step."""
    episodes = BarEpisodes(batch, config, oracle=oracle)
    observations = episodes.reset()
    filled, remaining = [], []
    while not episodes.done:
        remaining.append(episodes.state.remaining.copy())
        observations, record = episodes.step(decide(acting, observations, episodes))
        filled.append(record.filled)
    return np.stack(filled, axis=1), np.stack(remaining, axis=1)


def share_of_remaining(filled: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """(N, T) filled / remaining before the step; 0 where nothing remained."""
    return np.where(remaining > 0, filled / np.maximum(remaining, 1e-12), 0.0)


def policy_timing(fit: tuple[Any, OrderBatch], score: tuple[Any, OrderBatch], config: ExecutionConfig, *,
                  oracle: bool = False, alpha: float = 1.0) -> dict[str, float]:
    """One policy's timing: how its share of the remainder follows ``a`` and how much of it the past explains.

    ``fit`` and ``score`` are ``(acting, batch)``: the policy acts on both; the past-only ridge of its
    share is fitted on the first and scored on the second.
    """
    shares, advantages, features, fronts = [], [], [], []
    for acting, batch in (fit, score):
        filled, remaining = step_fills(acting, batch, config, oracle=oracle)
        fronts.append(front_share(filled, batch))
        open_ = _decisions(remaining) > 0
        shares.append(_decisions(share_of_remaining(filled, remaining))[open_])
        advantages.append(_decisions(timing_advantage(batch, config))[open_])
        features.append(_decisions(past_features(batch, config))[open_])
    model = RidgeFit.fit(features[0], shares[0], alpha)
    share_out, advantage_out = shares[1], advantages[1]
    return {
        "decisions_scored": int(len(share_out)),
        "mean_share": float(share_out.mean()),
        "share_sd": float(share_out.std()),
        "correlation_with_advantage": _correlation(share_out, advantage_out),
        "r2_share_from_advantage": r_squared(share_out, RidgeFit.fit(advantage_out[:, None], share_out, alpha)
                                             .predict(advantage_out[:, None])),
        "r2_share_from_past_out_of_sample": r_squared(share_out, model.predict(features[1])),
        "front_share_fit": fronts[0],
        "front_share_scored": fronts[1],
    }
