"""The broker interface of both execution envs, the per-order context a schedule reads, and the registry.

A broker is defined once and drives both envs:

* the bar engine asks :meth:`Broker.fractions` for the fraction of each order's Q to trade in the
  next interval, given the engine's state (an :class:`~rlexec.envs.engine.ExecState`);
* the LOB env asks :meth:`Broker.child_shares` for the size of its next child order.

Both come from one rule per broker: a cumulative target ``X(x)`` (the fraction of Q that should be
filled by elapsed fraction ``x`` of the horizon, :meth:`CumulativeSchedule.cumulative_target`) for
the schedules, or a share of observed market volume for POV. What a schedule may know about an
order is in its :class:`OrderContext`, fixed at the order's start.

This package sits below :mod:`rlexec.envs` (the LOB env sizes its children with it), so it reads
the bar engine's state only through attributes and imports it for type checking only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from rlexec.errors import ConfigError

if TYPE_CHECKING:
    from rlexec.envs.engine import ExecState


@runtime_checkable
class Strategy(Protocol):
    """A policy over parent orders: fractions of Q to trade in the next interval, one per order."""

    name: str

    def fractions(self, state: ExecState) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class OrderContext:
    """What a broker knows about N parent orders at their start (nothing learnt later).

    ``volume_profile`` (N, B) is the expected share of the horizon's market volume in each of B
    equal bins spanning the horizon (each row sums to 1): in the bar env the minute profile of
    earlier sessions, in the LOB env the per-decision-interval profile of calibration days or a
    closed form. ``minute_volatility`` (N,) is the std of one-minute log returns before the start.
    Either is None where the env does not measure it; a broker that needs it says so.
    """

    quantity: np.ndarray  # (N,) shares
    horizon_minutes: float
    interval_minutes: float  # length of one decision interval
    volume_profile: np.ndarray | None = None
    minute_volatility: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.quantity)

    @classmethod
    def of_bar_state(cls, state: ExecState) -> OrderContext:
        """The context of the bar engine's orders (everything in it is known before the start)."""
        batch, config = state.batch, state.config
        return cls(quantity=batch.quantity, horizon_minutes=config.horizon_minutes,
                   interval_minutes=config.step_minutes, volume_profile=batch.volume_profile,
                   minute_volatility=batch.minute_volatility)

    def require(self, name: str, broker: str) -> np.ndarray:
        value = getattr(self, name)
        if value is None:
            raise ConfigError(f"broker {broker!r} needs the orders' {name.replace('_', ' ')}, which this env does not provide")
        return value


class Broker:
    """One broker rule, usable by the bar engine (:meth:`fractions`) and the LOB env (:meth:`child_shares`)."""

    name = "broker"

    def fractions(self, state: ExecState) -> np.ndarray:
        """(N,) fraction of each order's Q to trade in the bar engine's next interval."""
        raise NotImplementedError

    def wanted_shares(self, context: OrderContext, *, executed: int, x_next: float, last_interval_volume: int) -> float:
        """Shares the rule asks for in the LOB env's next interval (one order), before clipping."""
        raise NotImplementedError

    def child_shares(self, context: OrderContext, *, executed: int, x_next: float, last_interval_volume: int,
                     max_child: int) -> int:
        """Size of the LOB env's next child order: ``clip(floor(wanted), 1, max_child)``, never more than remains.

        ``context`` describes the one order being executed, ``x_next`` is the elapsed fraction at the
        end of the coming interval and ``last_interval_volume`` the market volume of the interval just
        closed. The floor of one share is the Stage-1 code's (spec 1.1); 0 once the order is complete.
        """
        remaining = int(context.quantity[0]) - executed
        if remaining <= 0:
            return 0
        wanted = self.wanted_shares(context, executed=executed, x_next=x_next, last_interval_volume=last_interval_volume)
        return int(min(remaining, np.clip(np.floor(wanted), 1, max_child)))


class CumulativeSchedule(Broker):
    """A broker given by its cumulative target ``X(x)``, the fraction of Q filled by elapsed fraction x.

    Each interval trades what brings the order back onto its schedule, ``X(x_next) - filled``, so
    shares a volume cap (bar) or an unfilled limit order (LOB) left behind are caught up on later.
    """

    name = "schedule"

    def cumulative_target(self, x: float, context: OrderContext) -> np.ndarray:
        """(N,) target fill fraction at elapsed fraction ``x`` (clipped to [0, 1]); exactly 1 at the end."""
        x = float(np.clip(x, 0.0, 1.0))
        if x >= 1.0:  # the whole order, not a profile sum that rounds to 1 - 1e-16 and strands a share
            return np.ones(len(context))
        return self._curve(x, context)

    def _curve(self, x: float, context: OrderContext) -> np.ndarray:
        raise NotImplementedError

    def fractions(self, state: ExecState) -> np.ndarray:
        target = self.cumulative_target((state.t + 1) / state.n_steps, OrderContext.of_bar_state(state))
        return np.maximum(target - state.fill_rate, 0.0)

    def wanted_shares(self, context: OrderContext, *, executed: int, x_next: float, last_interval_volume: int) -> float:
        return context.quantity[0] * float(self.cumulative_target(x_next, context)[0]) - executed


SCHEDULE_STRATEGIES: dict[str, type] = {}


def register(name: str):
    def decorate(cls):
        cls.name = name
        SCHEDULE_STRATEGIES[name] = cls
        return cls

    return decorate


def strategy_names() -> list[str]:
    return list(SCHEDULE_STRATEGIES)


def make_strategy(name: str, **params) -> Broker:
    """Build a broker by name (``twap``, ``vwap``, ``is``, ``pov``) with its keyword parameters."""
    try:
        cls = SCHEDULE_STRATEGIES[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}; choose from {strategy_names()}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"strategy {name!r}: {exc}") from None
