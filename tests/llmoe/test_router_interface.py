"""The router contract: RouteDecision checks, the routing label, the registry, the route cache."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rlexec.errors import ConfigError
from rlexec.llmoe.cache import RouteCache, routing_fingerprint
from rlexec.llmoe.routers import Router, RouteDecision, decision_from_probability, make_router, routing_labels


def test_route_decision_rejects_an_unknown_route_and_a_probability_outside_0_1():
    with pytest.raises(ValueError, match="route"):
        RouteDecision("bullish", 0.5, "")
    with pytest.raises(ValueError, match="probability"):
        RouteDecision("optimistic", 1.5, "")


def test_decision_from_probability_is_optimistic_only_above_the_threshold():
    assert decision_from_probability(0.51, "x").route == "optimistic"
    assert decision_from_probability(0.5, "x").route == "pessimistic"
    assert decision_from_probability(1.2, "x").probability == 1.0


def test_routing_labels_are_the_sign_of_the_next_horizon_day_change():
    closes = np.array([10.0, 11.0, 9.0, 12.0, 12.0, 8.0])
    # horizon 2: 9>10? 0; 12>11? 1; 12>9? 1; 8>12? 0; then no label
    assert routing_labels(closes, 2).tolist() == [0, 1, 1, 0, -1, -1]
    assert routing_labels(closes, 1).tolist() == [1, 0, 1, 0, 0, -1]


def test_unknown_router_names_the_known_ones():
    with pytest.raises(ConfigError, match="numeric"):
        make_router("oracle")


class _Constant:
    name = "constant"

    def __init__(self, seed: int = 0, p: float = 0.7):
        self.p = p

    def fit(self, train_windows, labels):
        pass

    def route(self, windows):
        return [decision_from_probability(self.p, "always") for _ in windows]


def test_a_user_router_is_built_from_module_colon_class_with_its_options():
    router = make_router(f"{__name__}:_Constant", {"p": 0.2}, seed=3)
    assert isinstance(router, Router)
    assert router.route([None])[0].route == "pessimistic"
    with pytest.raises(ConfigError, match="unexpected keyword"):
        make_router(f"{__name__}:_Constant", {"bogus": 1})


def test_route_cache_round_trip_merges_dates_and_misses_until_all_are_there(tmp_path):
    cache = RouteCache(tmp_path)
    key = routing_fingerprint("numeric", {"hidden": 32}, 1, {"start": "2014-01-08"})
    assert key != routing_fingerprint("numeric", {"hidden": 32}, 2, {"start": "2014-01-08"})
    d1, d2 = dt.date(2016, 1, 4), dt.date(2016, 1, 5)
    assert cache.get("numeric", "AAPL", key, [d1]) is None
    cache.put("numeric", "AAPL", key, [d1], [RouteDecision("optimistic", 0.8, "up, because")])
    assert cache.get("numeric", "AAPL", key, [d1, d2]) is None
    cache.put("numeric", "AAPL", key, [d2], [RouteDecision("pessimistic", 0.1, "down")])
    got = cache.get("numeric", "AAPL", key, [d2, d1])
    assert got == [RouteDecision("pessimistic", 0.1, "down"), RouteDecision("optimistic", 0.8, "up, because")]
