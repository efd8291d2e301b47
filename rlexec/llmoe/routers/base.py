"""The router interface every LLMoE router implements (numeric, text embedding, LLM, a user's own).

A router is fitted once per (ticker, seed) on the training windows and their routing labels, then
asked for a decision on every window (train, validation and test: the experts are trained on the
training days routed to them). The pipeline may call ``route`` inside Ray workers on chunks of
windows, so a fitted router must survive pickling (cloudpickle); a router holding a large model
should drop it in ``__getstate__`` and load it again lazily on the first ``route`` call.

Optional attributes the pipeline reads with ``getattr``:

* ``uses_seed: bool`` (default True). False for a router whose decisions do not depend on the seed
  (a frozen, calibrated LLM): its routes are computed once and shared by all seeds through the cache.
* ``ray_num_cpus: float`` (default 1): CPUs each Ray routing task reserves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from rlexec.llmoe.data import DayWindow

ROUTES = ("optimistic", "pessimistic")
Route = Literal["optimistic", "pessimistic"]


@dataclass(frozen=True)
class RouteDecision:
    """One day's routing: the expert chosen, P(optimistic) and a human-readable reason."""

    route: Route
    probability: float  # P(optimistic), in [0, 1]
    explanation: str

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"RouteDecision.route: {self.route!r} is not one of {ROUTES}")
        if not 0.0 <= float(self.probability) <= 1.0:
            raise ValueError(f"RouteDecision.probability: {self.probability!r} is not in [0, 1]")


@runtime_checkable
class Router(Protocol):
    """``fit`` on training windows and 0/1 labels (1 = optimistic, see :func:`routing_labels`), then
    ``route`` any windows, one decision per window in the same order."""

    name: str

    def fit(self, train_windows: list[DayWindow], labels: np.ndarray) -> None: ...

    def route(self, windows: list[DayWindow]) -> list[RouteDecision]: ...


def decision_from_probability(probability: float, explanation: str, threshold: float = 0.5) -> RouteDecision:
    """The route a probability implies: optimistic when P(optimistic) > ``threshold``."""
    probability = float(min(max(probability, 0.0), 1.0))
    return RouteDecision("optimistic" if probability > threshold else "pessimistic", probability, explanation)


def routing_labels(closes: np.ndarray, horizon: int = 5) -> np.ndarray:
    """Routing label of each day t: 1 (optimistic) when ``close[t + horizon] > close[t]``, else 0.

    rlexec's default [DEFAULT, spec §4.7 leaves it open]: the sign of the next-``horizon``-day return
    with ``horizon = 5``. The router names a regime ("the outlook"), the experts predict the next day
    (1[close_{t+1} > close_t], spec §4.2): a 5-day sign is more persistent than the 1-day sign, so
    the two experts see days of different regimes instead of a router that re-predicts the experts'
    own nearly-random 1-day target. ``horizon = 1`` gives the next-day label. The last ``horizon``
    days have no label: they are -1 and the caller drops them.
    """
    closes = np.asarray(closes, dtype=float)
    labels = np.full(len(closes), -1, dtype=np.int64)
    if horizon < 1:
        raise ValueError(f"routing_labels: horizon must be >= 1, got {horizon}")
    if len(closes) > horizon:
        labels[:-horizon] = (closes[horizon:] > closes[:-horizon]).astype(np.int64)
    return labels
