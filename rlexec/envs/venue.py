"""The order-book market the LOB execution env trades on, as a protocol.

Two venues satisfy it: :class:`rlexec.market.simulator.MarketSimulator` (the simulated market) and
:class:`rlexec.market.lobster.LobsterReplay` (a replayed LOBSTER day). The env, its interpreters and
its reward use a venue only through these members, so a third venue (another simulator, a live
paper-trading gateway) needs exactly this much.

Conventions: times are ns since midnight, prices integer ticks (``tick_size`` dollars each; a
replay may report fractional ticks for a mid or a trade), sizes whole shares, the agent's side
``BUY`` = +1 / ``SELL`` = -1 (:data:`rlexec.market.BUY`, :data:`rlexec.market.SELL`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rlexec.market.simulator import BookDepth, Fills


@runtime_checkable
class Venue(Protocol):
    """A limit order book with one external trader (the execution agent)."""

    @property
    def now(self) -> int:
        """Current venue time, ns since midnight."""

    @property
    def tick_size(self) -> float:
        """Dollars per price tick."""

    def run_until(self, t_ns: int) -> None:
        """Advance the market to ``t_ns``, filling the agent's resting orders on the way."""

    def submit_market(self, side: int, qty: int) -> object:
        """Send a market order of ``qty`` shares now; what the book cannot fill is dropped."""

    def submit_limit(self, side: int, price_ticks: int, qty: int) -> int:
        """Send a limit order now; returns its order id."""

    def cancel_all_external(self) -> None:
        """Cancel every resting order of the agent."""

    def drain_external_fills(self) -> Fills:
        """The agent's fills since the previous call, oldest first."""

    def best_bid_ask(self) -> tuple[int | None, int | None]:
        """Best bid and ask in ticks; None for an empty side."""

    def mid(self) -> float | None:
        """Mid price in ticks; None unless both sides have orders."""

    def last_trade_price(self) -> float | None:
        """Price of the last trade in ticks; None before the first."""

    def depth(self, k: int) -> BookDepth:
        """The best ``k`` levels per side, best first (missing levels: price -1, size 0)."""

    def traded_volume_between(self, t0: int, t1: int) -> int:
        """Shares the whole market traded between ``t0`` and ``t1``.

        The simulator counts ``t0 <= time < t1``, the replay ``t0 <= time <= t1`` (a trade exactly on a
        boundary; the env asks about whole decision intervals, where the difference is one instant).
        """

    def vwap_between(self, t0: int, t1: int) -> float | None:
        """Volume-weighted trade price (ticks) between ``t0`` and ``t1``; None without trades."""


def price_ticks(venue: Venue) -> float | None:
    """The venue's current price: the mid, or the last trade when one side of the book is empty; None before any."""
    mid = venue.mid()
    return mid if mid is not None else venue.last_trade_price()
