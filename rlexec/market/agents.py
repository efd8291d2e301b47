"""Background trading agents: what each kind does when it wakes up.

Agents are rows of arrays, not objects: ``Population.kind[a]`` selects the behaviour of agent
``a`` and ``Population.fstate[a, :]`` holds its private floats (column meaning per kind below).
Every behaviour reads the public book and market counters, sends messages through the latency
model and schedules its own next wake-up. All parameters come from one float vector built by
:func:`pack_params` from a :class:`~rlexec.market.config.MarketConfig` (``P_*`` indices).

Kinds:

* market makers - cancel and re-quote a ladder of ``n_levels`` on both sides every
  ``wake_interval_s``; the touch size follows recent traded volume, the half-spread widens with
  the volatility of the mid and the quote centre leans towards recent aggressive flow and
  away from inventory (after ABIDES' AdaptiveMarketMaker);
* value agents - Kalman-filter noisy observations of the fundamental, then replace their resting
  limit order with one on the side their estimate favours; they cross the spread at random
  (``aggressive_prob``) and whenever the opposite best is ``take_threshold`` ticks better than
  their estimate, which anchors the price to the fundamental;
* momentum agents - market orders on the side of the short moving average of the mid whenever it
  is more than ``threshold`` away from the long one;
* noise agents - one market order each, at a Beta(a, a)-distributed time in the session;
* volatility agents - market orders in the direction of the last move, sized and timed by how
  far fast realised variance of the mid exceeds its slow running average;
* the external agent - never wakes; its messages come from the environment.

Background market orders carry a price collar (``SessionConfig.collar_ticks``): they are
immediate-or-cancel limit orders at most that far through the opposite best.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from rlexec.market.book import B_BEST_ASK, B_BEST_BID, B_LAST_PRICE, new_order
from rlexec.market.config import NS_PER_SECOND, MarketConfig
from rlexec.market.events import (CANCEL_ALL, K_BUY_VOLUME, K_NOW, K_SELL_VOLUME, K_VOLUME, LADDER, LIMIT,
                                  MARKET, schedule_wake, send)

MARKET_MAKER, VALUE, MOMENTUM, NOISE, VOLATILITY, EXTERNAL = range(6)
KIND_NAMES = ("market_maker", "value", "momentum", "noise", "volatility", "external")

# fstate columns, by kind
V_ESTIMATE, V_VARIANCE, V_LAST_SEEN_S = 0, 1, 2
MM_LAST_VOLUME, MM_LAST_BUY_VOLUME, MM_LAST_SELL_VOLUME, MM_LAST_MID, MM_MID_VARIANCE = 0, 1, 2, 3, 4
MO_SEEN = 0
VO_LAST_MID, VO_LAST_S, VO_FAST_VAR, VO_SLOW_VAR, VO_SEEN = 0, 1, 2, 3, 4
N_FSTATE = 5

(P_START_NS, P_END_NS, P_FUND_STEP_NS, P_JITTER_MEAN_NS, P_N_PRICES, P_COLLAR,
 P_R_BAR, P_KAPPA, P_FUND_VOL, P_DRIFT, P_VOL_RAMP,
 P_V_WAKE_MEAN_NS, P_V_OBS_STD, P_V_SIZE_MIN, P_V_SIZE_MAX, P_V_AGGRESSIVE, P_V_DEPTH, P_V_MAX_JOIN_SPREAD,
 P_V_TAKE_THRESHOLD,
 P_MM_INTERVAL_NS, P_MM_LEVELS, P_MM_SPACING, P_MM_POV, P_MM_MIN_SIZE, P_MM_MAX_SIZE, P_MM_GROWTH,
 P_MM_MIN_HALF, P_MM_MAX_HALF, P_MM_VOL_COEF, P_MM_IMBALANCE_COEF, P_MM_INVENTORY_COEF, P_MM_VOL_SMOOTHING,
 P_MO_WAKE_MEAN_NS, P_MO_SHORT, P_MO_LONG, P_MO_THRESHOLD, P_MO_SIZE_MIN, P_MO_SIZE_MAX,
 P_VO_WAKE_MEAN_NS, P_VO_FAST, P_VO_SLOW, P_VO_TRIGGER, P_VO_BASE_SIZE, P_VO_MAX_SIZE,
 P_NO_SIZE_MIN, P_NO_SIZE_MAX) = range(46)
N_PARAMS = 46

Population = namedtuple("Population", "kind delay last_arrival position fstate history")
"""Per-agent arrays: kind code, latency (ns), last arrival time (ns), net position (shares),
private floats (N_FSTATE columns) and momentum mid history (long_window columns)."""


def pack_params(config: MarketConfig) -> np.ndarray:
    """The config as the float vector the compiled agents read."""
    s, f, v, mm, mo, vo, no = (config.session, config.fundamental, config.value, config.market_maker,
                               config.momentum, config.volatility, config.noise)
    p = np.zeros(N_PARAMS)
    p[P_START_NS], p[P_END_NS] = s.start_ns, s.end_ns
    p[P_FUND_STEP_NS] = round(f.step_s * NS_PER_SECOND)
    p[P_JITTER_MEAN_NS] = config.latency.jitter_mean_ns
    p[P_N_PRICES], p[P_COLLAR] = s.price_levels, s.collar_ticks
    p[P_R_BAR], p[P_KAPPA], p[P_FUND_VOL], p[P_DRIFT], p[P_VOL_RAMP] = f.r_bar, f.kappa, f.fund_vol, f.drift, f.vol_ramp
    p[P_V_WAKE_MEAN_NS] = v.wake_mean_s * NS_PER_SECOND
    p[P_V_OBS_STD], p[P_V_SIZE_MIN], p[P_V_SIZE_MAX] = v.obs_noise_std, v.size_min, v.size_max
    p[P_V_AGGRESSIVE], p[P_V_DEPTH], p[P_V_MAX_JOIN_SPREAD] = v.aggressive_prob, v.depth_ticks, v.max_join_spread
    p[P_V_TAKE_THRESHOLD] = v.take_threshold
    p[P_MM_INTERVAL_NS] = mm.wake_interval_s * NS_PER_SECOND
    p[P_MM_LEVELS], p[P_MM_SPACING], p[P_MM_POV] = mm.n_levels, mm.level_spacing, mm.pov
    p[P_MM_MIN_SIZE], p[P_MM_MAX_SIZE], p[P_MM_GROWTH] = mm.min_size, mm.max_size, mm.depth_growth
    p[P_MM_MIN_HALF], p[P_MM_MAX_HALF], p[P_MM_VOL_COEF] = mm.min_half_spread, mm.max_half_spread, mm.vol_coef
    p[P_MM_IMBALANCE_COEF], p[P_MM_INVENTORY_COEF] = mm.imbalance_coef, mm.inventory_coef
    p[P_MM_VOL_SMOOTHING] = mm.vol_smoothing
    p[P_MO_WAKE_MEAN_NS] = mo.wake_mean_s * NS_PER_SECOND
    p[P_MO_SHORT], p[P_MO_LONG], p[P_MO_THRESHOLD] = mo.short_window, mo.long_window, mo.threshold
    p[P_MO_SIZE_MIN], p[P_MO_SIZE_MAX] = mo.size_min, mo.size_max
    p[P_VO_WAKE_MEAN_NS] = vo.wake_mean_s * NS_PER_SECOND
    p[P_VO_FAST], p[P_VO_SLOW], p[P_VO_TRIGGER] = vo.fast_weight, vo.slow_weight, vo.trigger_ratio
    p[P_VO_BASE_SIZE], p[P_VO_MAX_SIZE] = vo.base_size, vo.max_size
    p[P_NO_SIZE_MIN], p[P_NO_SIZE_MAX] = no.size_min, no.size_max
    return p


def build_population(config: MarketConfig, delays: np.ndarray, rng: np.random.Generator
                     ) -> tuple[Population, np.ndarray, np.ndarray]:
    """The agents (external agent last) and their first wake-ups as (agent ids, times ns)."""
    counts = (config.market_maker.count, config.value.count, config.momentum.count, config.noise.count,
              config.volatility.count, 1)
    kind = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    n = kind.size
    fstate = np.zeros((n, N_FSTATE))
    f = config.fundamental
    values = kind == VALUE
    fstate[values, V_ESTIMATE] = f.r_bar
    fstate[values, V_VARIANCE] = f.fund_vol ** 2 / (2 * f.kappa)
    fstate[values, V_LAST_SEEN_S] = config.session.start_ns / NS_PER_SECOND
    fstate[kind == MARKET_MAKER, MM_LAST_MID] = -1.0
    population = Population(kind=kind, delay=delays.astype(np.int64), last_arrival=np.zeros(n, dtype=np.int64),
                            position=np.zeros(n, dtype=np.int64), fstate=fstate,
                            history=np.zeros((n, config.momentum.long_window)))
    start, length = config.session.start_ns, config.session.end_ns - config.session.start_ns
    first_offsets = {
        MARKET_MAKER: lambda m: rng.uniform(0, config.market_maker.wake_interval_s * NS_PER_SECOND, m),
        VALUE: lambda m: rng.exponential(config.value.wake_mean_s * NS_PER_SECOND, m),
        MOMENTUM: lambda m: rng.exponential(config.momentum.wake_mean_s * NS_PER_SECOND, m),
        NOISE: lambda m: rng.beta(config.noise.beta_a, config.noise.beta_a, m) * length,
        VOLATILITY: lambda m: rng.exponential(config.volatility.wake_mean_s * NS_PER_SECOND, m),
    }
    agents, times = [], []
    for code, draw in first_offsets.items():
        members = np.flatnonzero(kind == code)
        offsets = draw(members.size)
        keep = offsets < length
        agents.append(members[keep])
        times.append(start + offsets[keep].astype(np.int64))
    return population, np.concatenate(agents), np.concatenate(times)


@njit(cache=True)
def fundamental_at(fundamental, params, t):
    i = (t - np.int64(params[P_START_NS])) // np.int64(params[P_FUND_STEP_NS])
    return fundamental[min(max(i, 0), fundamental.size - 1)]


@njit(cache=True)
def reference_price(book_state, fundamental):
    """Mid when both sides exist, else the last trade, else the fundamental at the open."""
    bid, ask = book_state[B_BEST_BID], book_state[B_BEST_ASK]
    if bid >= 0 and ask >= 0:
        return 0.5 * (bid + ask)
    if book_state[B_LAST_PRICE] >= 0:
        return float(book_state[B_LAST_PRICE])
    return fundamental[0]


@njit(cache=True)
def _clip_price(params, price):
    return min(max(price, 1), np.int64(params[P_N_PRICES]) - 1)


@njit(cache=True)
def _uniform_size(rng, params, lo, hi):
    return rng.integers(np.int64(params[lo]), np.int64(params[hi]) + 1)


@njit(cache=True)
def _send_order(queue, pop, book, params, rng, agent, kind, side, price, qty):
    heap, kstate = queue.heap, queue.kstate
    oid = -1
    if kind == LIMIT:
        oid = new_order(book.orders, book.state, side, price, qty, agent)
    send(heap, kstate, pop.delay, pop.last_arrival, params[P_JITTER_MEAN_NS], rng, agent, kind, side, price,
         qty, oid, 0)


@njit(cache=True)
def _send_protected_market(queue, pop, book, params, fundamental, rng, agent, side, qty):
    """A market order with a price collar: immediate-or-cancel at most P_COLLAR ticks through."""
    ref = reference_price(book.state, fundamental)
    if side > 0:
        touch = book.state[B_BEST_ASK] if book.state[B_BEST_ASK] >= 0 else np.int64(np.ceil(ref))
    else:
        touch = book.state[B_BEST_BID] if book.state[B_BEST_BID] >= 0 else np.int64(np.floor(ref))
    limit = _clip_price(params, touch + side * np.int64(params[P_COLLAR]))
    _send_order(queue, pop, book, params, rng, agent, MARKET, side, limit, qty)


@njit(cache=True)
def _wake_later(queue, params, agent, delay_ns):
    heap, kstate = queue.heap, queue.kstate
    t = kstate[K_NOW] + np.int64(delay_ns)
    if t < np.int64(params[P_END_NS]):
        schedule_wake(heap, kstate, agent, t)


@njit(cache=True)
def _observe_fundamental(state, params, fundamental, rng, now):
    """Kalman step: propagate the estimate under the OU model, then fold in a noisy observation."""
    now_s = now / 1e9
    kappa = params[P_KAPPA]
    progress = (now - params[P_START_NS]) / (params[P_END_NS] - params[P_START_NS])
    long_run_mean = params[P_R_BAR] * (1.0 + params[P_DRIFT] * progress)
    vol = params[P_FUND_VOL] * (1.0 + (params[P_VOL_RAMP] - 1.0) * progress)
    decay = np.exp(-kappa * (now_s - state[V_LAST_SEEN_S]))
    prior_mean = long_run_mean + (state[V_ESTIMATE] - long_run_mean) * decay
    prior_var = decay * decay * state[V_VARIANCE] + vol * vol * (1.0 - decay * decay) / (2.0 * kappa)
    observation = fundamental_at(fundamental, params, now) + params[P_V_OBS_STD] * rng.standard_normal()
    gain = prior_var / (prior_var + params[P_V_OBS_STD] ** 2)
    state[V_ESTIMATE] = prior_mean + gain * (observation - prior_mean)
    state[V_VARIANCE] = (1.0 - gain) * prior_var
    state[V_LAST_SEEN_S] = now_s


@njit(cache=True)
def _value_order(book_state, fundamental, params, rng, estimate):
    """(side, limit price) of a value trader believing the value is ``estimate`` ticks."""
    ref = reference_price(book_state, fundamental)
    bid = book_state[B_BEST_BID] if book_state[B_BEST_BID] >= 0 else np.int64(np.floor(ref)) - 1
    ask = book_state[B_BEST_ASK] if book_state[B_BEST_ASK] >= 0 else np.int64(np.ceil(ref)) + 1
    side = 1 if estimate > 0.5 * (bid + ask) else -1
    edge = estimate - ask if side > 0 else bid - estimate
    if rng.random() < params[P_V_AGGRESSIVE] or edge >= params[P_V_TAKE_THRESHOLD]:
        return side, ask if side > 0 else bid
    # Resting orders join or sit behind the touch on a normal spread, and narrow an abnormally
    # wide one, never past the estimate: passive value traders add depth and repair the book.
    depth = rng.integers(0, np.int64(params[P_V_DEPTH]) + 1)
    reach = np.int64(params[P_V_MAX_JOIN_SPREAD])
    if side > 0:
        price = min(np.int64(np.floor(estimate)), max(bid, ask - reach)) - depth
    else:
        price = max(np.int64(np.ceil(estimate)), min(ask, bid + reach)) + depth
    return side, _clip_price(params, price)


@njit(cache=True)
def value_wake(agent, book, queue, pop, params, fundamental, rng):
    """Observe the fundamental with noise, update the estimate, replace the resting order."""
    state = pop.fstate[agent]
    _observe_fundamental(state, params, fundamental, rng, queue.kstate[K_NOW])
    side, price = _value_order(book.state, fundamental, params, rng, state[V_ESTIMATE])
    qty = _uniform_size(rng, params, P_V_SIZE_MIN, P_V_SIZE_MAX)
    _send_order(queue, pop, book, params, rng, agent, CANCEL_ALL, 0, 0, 0)
    _send_order(queue, pop, book, params, rng, agent, LIMIT, side, price, qty)
    _wake_later(queue, params, agent, rng.exponential(params[P_V_WAKE_MEAN_NS]))


@njit(cache=True)
def market_maker_wake(agent, book, queue, pop, params, fundamental, rng):
    """Pull the old ladder and quote a new one sized by volume, widened by volatility."""
    kstate = queue.kstate
    state = pop.fstate[agent]
    mid = reference_price(book.state, fundamental)
    if state[MM_LAST_MID] >= 0:
        change = mid - state[MM_LAST_MID]
        w = params[P_MM_VOL_SMOOTHING]
        state[MM_MID_VARIANCE] = (1.0 - w) * state[MM_MID_VARIANCE] + w * change * change
    state[MM_LAST_MID] = mid
    volume = kstate[K_VOLUME] - state[MM_LAST_VOLUME]
    imbalance = ((kstate[K_BUY_VOLUME] - state[MM_LAST_BUY_VOLUME])
                 - (kstate[K_SELL_VOLUME] - state[MM_LAST_SELL_VOLUME])) / max(volume, 1.0)
    state[MM_LAST_VOLUME] = kstate[K_VOLUME]
    state[MM_LAST_BUY_VOLUME] = kstate[K_BUY_VOLUME]
    state[MM_LAST_SELL_VOLUME] = kstate[K_SELL_VOLUME]

    half_spread = min(params[P_MM_MIN_HALF] + params[P_MM_VOL_COEF] * np.sqrt(state[MM_MID_VARIANCE]),
                      params[P_MM_MAX_HALF])
    centre = (mid + params[P_MM_IMBALANCE_COEF] * imbalance
              - params[P_MM_INVENTORY_COEF] * pop.position[agent] / params[P_MM_MAX_SIZE])
    bid = np.int64(np.round(centre - half_spread))
    ask = max(np.int64(np.round(centre + half_spread)), bid + 1)
    size = np.int64(min(max(params[P_MM_POV] * volume, params[P_MM_MIN_SIZE]), params[P_MM_MAX_SIZE]))
    _send_order(queue, pop, book, params, rng, agent, CANCEL_ALL, 0, 0, 0)
    heap = queue.heap
    send(heap, kstate, pop.delay, pop.last_arrival, params[P_JITTER_MEAN_NS], rng, agent, LADDER, 0,
         _clip_price(params, bid), size, -1, _clip_price(params, ask))
    _wake_later(queue, params, agent, params[P_MM_INTERVAL_NS])


@njit(cache=True)
def momentum_wake(agent, book, queue, pop, params, fundamental, rng):
    """Record the mid; trade at market when the short and long averages part by the threshold."""
    history = pop.history[agent]
    long_window = np.int64(params[P_MO_LONG])
    short_window = np.int64(params[P_MO_SHORT])
    seen = np.int64(pop.fstate[agent, MO_SEEN])
    history[seen % long_window] = reference_price(book.state, fundamental)
    seen += 1
    pop.fstate[agent, MO_SEEN] = seen
    if seen >= long_window:
        short_sum = 0.0
        for k in range(short_window):
            short_sum += history[(seen - 1 - k) % long_window]
        signal = short_sum / short_window - history.sum() / long_window
        if abs(signal) > params[P_MO_THRESHOLD]:
            qty = _uniform_size(rng, params, P_MO_SIZE_MIN, P_MO_SIZE_MAX)
            _send_protected_market(queue, pop, book, params, fundamental, rng, agent, 1 if signal > 0 else -1, qty)
    _wake_later(queue, params, agent, rng.exponential(params[P_MO_WAKE_MEAN_NS]))


@njit(cache=True)
def noise_wake(agent, book, queue, pop, params, fundamental, rng):
    """The agent's single order of the day: random side, small size, at market."""
    side = 1 if rng.random() < 0.5 else -1
    qty = _uniform_size(rng, params, P_NO_SIZE_MIN, P_NO_SIZE_MAX)
    _send_protected_market(queue, pop, book, params, fundamental, rng, agent, side, qty)


@njit(cache=True)
def volatility_wake(agent, book, queue, pop, params, fundamental, rng):
    """Chase the last move at market when fast realised variance exceeds its running average."""
    now_s = queue.kstate[K_NOW] / 1e9
    state = pop.fstate[agent]
    mid = reference_price(book.state, fundamental)
    urgency = 1.0
    if state[VO_SEEN] > 0:
        move = mid - state[VO_LAST_MID]
        rate = move * move / max(now_s - state[VO_LAST_S], 1e-3)
        state[VO_FAST_VAR] += params[P_VO_FAST] * (rate - state[VO_FAST_VAR])
        state[VO_SLOW_VAR] += params[P_VO_SLOW] * (rate - state[VO_SLOW_VAR])
        ratio = state[VO_FAST_VAR] / max(state[VO_SLOW_VAR], 1e-9)
        # The slow average needs a few observations before it is a meaningful baseline.
        if state[VO_SEEN] >= 5 and ratio > params[P_VO_TRIGGER] and move != 0:
            urgency = min(ratio, 10.0)
            qty = np.int64(min(params[P_VO_BASE_SIZE] * urgency / params[P_VO_TRIGGER], params[P_VO_MAX_SIZE]))
            _send_protected_market(queue, pop, book, params, fundamental, rng, agent, 1 if move > 0 else -1, qty)
    state[VO_LAST_MID] = mid
    state[VO_LAST_S] = now_s
    state[VO_SEEN] += 1
    _wake_later(queue, params, agent, rng.exponential(params[P_VO_WAKE_MEAN_NS] / urgency))


@njit(cache=True)
def wake(agent, book, queue, pop, params, fundamental, rng):
    """Run the behaviour of ``agent``'s kind."""
    kind = pop.kind[agent]
    if kind == VALUE:
        value_wake(agent, book, queue, pop, params, fundamental, rng)
    elif kind == MARKET_MAKER:
        market_maker_wake(agent, book, queue, pop, params, fundamental, rng)
    elif kind == MOMENTUM:
        momentum_wake(agent, book, queue, pop, params, fundamental, rng)
    elif kind == NOISE:
        noise_wake(agent, book, queue, pop, params, fundamental, rng)
    elif kind == VOLATILITY:
        volatility_wake(agent, book, queue, pop, params, fundamental, rng)
