"""Broker rules that size the LOB env's child orders (spec 1.1, the smooth schedules of
``Pairs-ABIDES@71197b6: pairs_env/utils/schedules.py``, not the staircase quirk of the Stage-1 code).

Cumulative targets as a share of Q at elapsed fraction ``x`` of the window:

=======  ==========================================  =========================================
name     target X(x)                                 note
=======  ==========================================  =========================================
twap     x                                           linear
vwap     3x^2 - 2x^3                                 integral of the U-shaped density (x(1-x))^(a-1), a = 2, normalised
is       x^0.6                                       front-loaded (``is_exponent``)
pov      --                                          ``participation`` x market volume of the last interval
=======  ==========================================  =========================================

The child size of a decision is ``clip(Q X(x_next) - executed, 1, max_child)`` (the Stage-1 code's
clip to at least one share), never more than what remains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlexec.errors import ConfigError

BROKERS = ("twap", "vwap", "is", "pov")


@dataclass(frozen=True, kw_only=True)
class BrokerRule:
    name: str = "twap"
    is_exponent: float = 0.6  # spec 1.1: IS X(t) = Q x^0.6
    vwap_shape: float = 2.0  # spec 1.1: a = 2
    participation: float = 0.10  # spec 1.1: POV child = 0.10 x observed volume

    def __post_init__(self) -> None:
        if self.name not in BROKERS:
            raise ConfigError(f"broker must be one of {BROKERS}, got {self.name!r}")
        if not 0 < self.is_exponent <= 1:
            raise ConfigError(f"broker.is_exponent must be in (0, 1], got {self.is_exponent}")
        if self.vwap_shape != 2.0:
            raise ConfigError("broker.vwap_shape: only a = 2 (closed form 3x^2 - 2x^3) is implemented")
        if not 0 < self.participation <= 1:
            raise ConfigError(f"broker.participation must be in (0, 1], got {self.participation}")

    def cumulative_target(self, x: float) -> float:
        x = float(np.clip(x, 0.0, 1.0))
        if self.name == "twap":
            return x
        if self.name == "vwap":
            return 3 * x**2 - 2 * x**3
        return x**self.is_exponent  # "is"

    def child_size(self, *, quantity: int, executed: int, x_next: float, last_interval_volume: int,
                   max_child: int) -> int:
        remaining = quantity - executed
        if remaining <= 0:
            return 0
        if self.name == "pov":
            wanted = self.participation * last_interval_volume
        else:
            wanted = quantity * self.cumulative_target(x_next) - executed
        return int(min(remaining, np.clip(np.floor(wanted), 1, max_child)))
