"""The bar-level execution simulator: N parent orders stepped in lockstep over minute bars.

Pieces, in the order they are used (Qlib's split):

* :func:`prepare_orders` checks orders against the market and cuts each order's window of bars
  into an :class:`OrderBatch` (everything known about the market, past and future).
* :class:`BatchExecutionEngine` is the simulator: ``reset(batch)`` then ``step(fractions)`` until
  ``done``; it changes state only in ``step``.
* :class:`ExecState` is the state every interpreter, reward and strategy reads. Its accessors
  return only what is known at the current decision time.

Per-order market window: ``lookback_minutes`` bars before the start (taken from the previous
session when the order starts early in the day) followed by the ``n_steps * step_minutes`` bars of
the horizon. Reference (arrival) price ``p_0``: the close of the last bar before the start.
Horizon average price ``p_twap``: the mean of the minute prices (``FillModel.price_field``) over the
horizon's traded minutes, the spec's TWAP of minute VWAPs with the typical price as the VWAP proxy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlexec.data.calendar import SESSION_MINUTES
from rlexec.data.orders import Order
from rlexec.data.panel import CLOSE, HIGH, LOW, OPEN, VOLUME, MarketData
from rlexec.envs.config import ExecutionConfig
from rlexec.envs.kernels import execute_step
from rlexec.errors import OrderError

NUM_PUBLIC_FEATURES = 6  # open, high, low, close, typical price, volume (OPD's six minute features)


@dataclass(frozen=True, kw_only=True)
class OrderBatch:
    """Market windows of N orders; arrays are indexed [order, minute of window]."""

    orders: tuple[Order, ...]
    quantity: np.ndarray  # (N,) shares
    sigma: np.ndarray  # (N,) +1 sell, -1 buy
    window_bars: np.ndarray  # (N, L + H, 5) OHLCV, lookback then horizon
    price: np.ndarray  # (N, H) fill-basis minute price over the horizon
    volume: np.ndarray  # (N, H) shares per horizon minute
    reference_price: np.ndarray  # (N,) p_0, close of the last bar before the start
    twap_price: np.ndarray  # (N,) p_twap, mean minute price over traded horizon minutes
    market_vwap: np.ndarray  # (N,) volume-weighted minute price over the horizon
    horizon_mean_volume: np.ndarray  # (N,) mean volume of the horizon's traded minutes (forced-fill floor)
    volume_profile: np.ndarray  # (N, H) share of horizon volume per minute, from earlier sessions
    minute_volatility: np.ndarray  # (N,) std of 1-minute log returns of the previous session
    volume_scale: np.ndarray  # (N,) mean minute volume of the previous session, shares
    public_features: np.ndarray  # (N, L + H, 6) float32, see :func:`window_features`; future included
    lookback_minutes: int

    def __len__(self) -> int:
        return len(self.orders)

    def select(self, index: np.ndarray) -> "OrderBatch":
        """A sub-batch (e.g. one order for the single env) sharing nothing mutable with this one."""
        index = np.atleast_1d(index)
        return OrderBatch(
            orders=tuple(self.orders[i] for i in index),
            lookback_minutes=self.lookback_minutes,
            **{name: getattr(self, name)[index] for name in _ORDER_ARRAYS},  # fancy indexing copies
        )

    @staticmethod
    def concatenate(batches: "list[OrderBatch]") -> "OrderBatch":
        """The orders of ``batches`` in one batch, in the given order (e.g. several envs' draws stepped at once)."""
        lookback = {b.lookback_minutes for b in batches}
        if len(lookback) != 1:
            raise ValueError(f"cannot concatenate order batches with different lookback_minutes {sorted(lookback)}")
        return OrderBatch(
            orders=tuple(order for b in batches for order in b.orders),
            lookback_minutes=lookback.pop(),
            **{name: np.concatenate([getattr(b, name) for b in batches]) for name in _ORDER_ARRAYS},
        )


_ORDER_ARRAYS = (  # OrderBatch's per-order arrays, indexed [order, ...]
    "quantity", "sigma", "window_bars", "price", "volume",
    "reference_price", "twap_price", "market_vwap", "horizon_mean_volume", "volume_profile",
    "minute_volatility", "volume_scale", "public_features",
)


def _minute_price(bars: np.ndarray, price_field: str) -> np.ndarray:
    if price_field == "close":
        return bars[..., CLOSE]
    return (bars[..., HIGH] + bars[..., LOW] + bars[..., CLOSE]) / 3.0


def window_features(window_bars: np.ndarray, reference_price: np.ndarray, volume_scale: np.ndarray) -> np.ndarray:
    """The six public features of every window minute, (N, L + H, 6) float32.

    Open, high, low, close and typical price as percent deviations from the reference price p_0,
    and ``log1p(volume / mean minute volume of the previous session)``. Both scales are known
    before the start, so each minute's features depend on that minute's bar and the past only.
    """
    bars = window_bars
    typical = (bars[..., HIGH] + bars[..., LOW] + bars[..., CLOSE]) / 3.0
    prices = np.stack([bars[..., OPEN], bars[..., HIGH], bars[..., LOW], bars[..., CLOSE], typical], axis=-1)
    features = np.empty(bars.shape[:2] + (NUM_PUBLIC_FEATURES,), dtype=np.float32)
    features[..., :5] = (prices / reference_price[:, None, None] - 1.0) * 100.0
    features[..., 5] = np.log1p(bars[..., VOLUME] / volume_scale[:, None])
    return features


def prepare_orders(market: MarketData, orders: list[Order], config: ExecutionConfig) -> OrderBatch:
    """Check each order against the market and cut its window. Errors name the order's position.

    An order needs: its session and an earlier session of the same symbol (for the VWAP profile,
    the volatility estimate and, for early starts, the lookback bars); a window that ends by 16:00;
    traded volume in the window; and, under a cap, ``quantity <= max_participation * window volume``,
    the most the fill cap lets it trade.
    """
    if not orders:
        raise OrderError("no orders given")
    H, L = config.horizon_minutes, config.lookback_minutes
    fill = config.fill
    n = len(orders)
    window = np.empty((n, L + H, 5))
    profile = np.empty((n, H))
    volatility = np.empty(n)
    volume_scale = np.empty(n)
    for i, order in enumerate(orders):
        if not market.has_session(order.symbol, order.date):
            raise OrderError(f"no market data for {order.symbol} on {order.date}", row=i + 1)
        if order.start_minute + H > SESSION_MINUTES:
            raise OrderError(
                f"window {order.start_time} + {H} min ends after 16:00; start by "
                f"{(9 * 60 + 30 + SESSION_MINUTES - H) // 60:02d}:{(30 + SESSION_MINUTES - H) % 60:02d}",
                row=i + 1,
            )
        row = market.row(order.symbol, order.date)
        prior = market.prior_rows(order.symbol, order.date, config.profile_days)
        if not prior:
            raise OrderError(
                f"{order.symbol} has no session before {order.date}; an order needs one earlier day of data",
                row=i + 1,
            )
        two_days = np.concatenate([market.bars[prior[-1]], market.bars[row]])
        first = SESSION_MINUTES + order.start_minute - L
        window[i] = two_days[first : first + L + H]
        horizon = slice(order.start_minute, order.start_minute + H)
        daily = market.bars[prior][:, :, VOLUME]
        share = daily / np.maximum(daily.sum(axis=1, keepdims=True), 1.0)
        prof = share.mean(axis=0)[horizon]
        profile[i] = prof / prof.sum() if prof.sum() > 0 else np.full(H, 1.0 / H)
        prev_close = market.bars[prior[-1], :, CLOSE]
        volatility[i] = float(np.std(np.diff(np.log(prev_close))))
        volume_scale[i] = max(float(market.bars[prior[-1], :, VOLUME].mean()), 1.0)

    horizon_bars = window[:, L:]
    price = _minute_price(horizon_bars, fill.price_field)
    volume = horizon_bars[..., VOLUME].copy()
    traded = volume > 0
    traded_minutes = traded.sum(axis=1)
    window_volume = volume.sum(axis=1)
    quantity = np.array([o.quantity for o in orders], dtype=np.float64)
    for i in np.flatnonzero(traded_minutes == 0):
        raise OrderError(f"no traded volume in the window of {orders[i].symbol} on {orders[i].date}", row=int(i) + 1)
    capacity = fill.participation_cap * window_volume  # inf without a cap: every quantity fits
    for i in np.flatnonzero(quantity > capacity):
        raise OrderError(
            f"quantity {quantity[i]:,.0f} exceeds the {capacity[i]:,.0f} shares available in its window "
            f"({window_volume[i]:,.0f} traded x max_participation {fill.max_participation})",
            row=int(i) + 1,
        )
    if L > 0:
        reference = window[:, L - 1, CLOSE]
    else:  # the last close before the start: previous minute of the session, or of the previous session
        reference = np.array(
            [
                market.bars[market.row(o.symbol, o.date), o.start_minute - 1, CLOSE]
                if o.start_minute > 0
                else market.bars[market.prior_rows(o.symbol, o.date, 1)[0], -1, CLOSE]
                for o in orders
            ]
        )
    twap = np.where(traded, price, 0.0).sum(axis=1) / traded_minutes
    features = window_features(window, reference, volume_scale)
    return OrderBatch(
        orders=tuple(orders),
        quantity=quantity,
        sigma=np.array([o.sigma for o in orders], dtype=np.float64),
        window_bars=window,
        price=np.ascontiguousarray(price),
        volume=volume,
        reference_price=reference,
        twap_price=twap,
        market_vwap=(price * volume).sum(axis=1) / window_volume,
        horizon_mean_volume=window_volume / traded_minutes,
        volume_profile=profile,
        minute_volatility=volatility,
        volume_scale=volume_scale,
        public_features=features,
        lookback_minutes=L,
    )


class ExecState:
    """State of N orders at a decision time ``t`` (0..n_steps). Read-only outside the engine.

    Market accessors return only bars that have closed before the decision time, so anything a
    strategy or a student observation builds from them carries no future information.
    """

    def __init__(self, batch: OrderBatch, config: ExecutionConfig):
        n, horizon = len(batch), config.horizon_minutes
        self.batch = batch
        self.config = config
        self.t = 0
        self.remaining = batch.quantity.copy()
        self.executed = np.zeros(n)
        self.cash = np.zeros(n)  # sum of fill quantity x fill price
        self.minute_fills = np.zeros((n, horizon))

    @property
    def n_steps(self) -> int:
        return self.config.n_steps

    @property
    def done(self) -> bool:
        return self.t >= self.config.n_steps

    @property
    def fill_rate(self) -> np.ndarray:
        return self.executed / self.batch.quantity

    @property
    def average_price(self) -> np.ndarray:
        """Average fill price so far (NaN where nothing has filled)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.executed > 0, self.cash / self.executed, np.nan)

    @property
    def visible_minutes(self) -> int:
        """Bars of the window (lookback + horizon) that have closed at the current decision time."""
        return self.batch.lookback_minutes + self.t * self.config.step_minutes

    def past_volume(self, minutes: int) -> np.ndarray:
        """Market volume of the last ``minutes`` closed bars (fewer if the window is shorter)."""
        end = self.visible_minutes
        return self.batch.window_bars[:, max(0, end - minutes) : end, VOLUME].sum(axis=1)


class BatchExecutionEngine:
    """Steps N orders at once; each step every order trades ``fraction * Q`` (capped by remaining).

    >>> from rlexec.data import load_sample
    >>> from rlexec.data.orders import OrderGenerator, generate_orders
    >>> market, config = load_sample(), ExecutionConfig()
    >>> orders = generate_orders(market, 3, seed=0, generator=OrderGenerator(horizon_minutes=240))
    >>> engine = BatchExecutionEngine(config)
    >>> state = engine.reset(prepare_orders(market, orders, config))
    >>> while not state.done:
    ...     _ = engine.step(np.full(3, 1 / 8))
    >>> bool(np.allclose(state.executed, state.batch.quantity))
    True
    """

    def __init__(self, config: ExecutionConfig):
        self.config = config
        self.state: ExecState | None = None

    def reset(self, batch: OrderBatch) -> ExecState:
        self.state = ExecState(batch, self.config)
        n = len(batch)
        self._qty = np.empty(n)
        self._pa = np.empty(n)
        self._concentration = np.empty(n)
        return self.state

    def step(self, fractions: np.ndarray) -> "StepOutcome":
        """Trade ``fractions`` (of each order's Q, shape (N,)) in the next interval."""
        state = self.state
        if state is None or state.done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        batch, fill = state.batch, self.config.fill
        fractions = np.asarray(fractions, dtype=np.float64).reshape(-1)
        if fractions.shape[0] != len(batch):
            raise ValueError(f"expected {len(batch)} fractions, one per order; got {fractions.shape[0]}")
        if np.isnan(fractions).any():
            raise ValueError(f"fraction for order {int(np.flatnonzero(np.isnan(fractions))[0]) + 1} is NaN")
        execute_step(
            state.t, self.config.step_minutes, self.config.n_steps, fractions,
            batch.quantity, batch.sigma, batch.twap_price, batch.price, batch.volume, batch.horizon_mean_volume,
            fill.participation_cap, fill.impact_coefficient_bps, fill.impact_exponent, fill.half_spread_bps,
            fill.force_remainder, fill.forced_volume_floor,
            state.remaining, state.executed, state.cash, state.minute_fills,
            self._qty, self._pa, self._concentration,
        )
        state.t += 1
        return StepOutcome(quantity=self._qty, pa_bps=self._pa, minute_concentration=self._concentration)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one step did, per order. Arrays are reused by the next step: copy to keep."""

    quantity: np.ndarray  # shares filled this step
    pa_bps: np.ndarray  # sigma * (p_t / p_twap - 1) * 1e4 * q_t / Q
    minute_concentration: np.ndarray  # sum over the step's minutes of (fill_m / Q)^2
