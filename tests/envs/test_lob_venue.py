"""The Venue protocol: both venues satisfy it, and it lists exactly what the LOB env uses of a venue."""

import inspect

import pytest
from typing_extensions import get_protocol_members

from rlexec.envs.lob_env import BROKERS, LOBExecutionEnv
from rlexec.envs.venue import Venue
from rlexec.market import MarketSimulator, regime_config
from rlexec.market.lobster import SAMPLE_REPLAY, LobsterReplay, read_lobster

FAST_SIM = {"regime": "open", "decision_interval_s": 60.0}
REPLAY = {"replay": str(SAMPLE_REPLAY), "replay_window_minutes": 10, "decision_interval_s": 30.0}


@pytest.fixture(scope="module")
def venues():
    return {"simulator": MarketSimulator(regime_config("open"), seed=0),
            "replay": LobsterReplay(read_lobster(SAMPLE_REPLAY))}


@pytest.mark.parametrize("kind", ["simulator", "replay"])
def test_both_venues_satisfy_the_protocol(venues, kind):
    venue = venues[kind]
    assert isinstance(venue, Venue)
    for name in get_protocol_members(Venue):
        declared = inspect.getattr_static(Venue, name)
        if isinstance(declared, property):
            assert isinstance(inspect.getattr_static(type(venue), name), property), name
            continue
        # the same parameter names, so that keyword calls work on either venue
        expected = list(inspect.signature(declared).parameters)[1:]
        assert list(inspect.signature(getattr(venue, name)).parameters) == expected, name


class RecordingVenue:
    """Passes everything through to a venue and notes which of its members were used."""

    def __init__(self, venue, used: set):
        self._venue, self._used = venue, used

    def __getattr__(self, name):
        self._used.add(name)
        return getattr(self._venue, name)


def test_the_protocol_lists_exactly_what_the_env_uses(monkeypatch):
    """Every member the env touches on either venue is in the protocol, and every member is touched
    (``last_trade_price`` only on the simulator, whose book is one-sided just after the open)."""
    used: dict[str, set[str]] = {}
    new_venue = LOBExecutionEnv._new_venue

    def recording(self):
        venue, window = new_venue(self)
        return RecordingVenue(venue, used.setdefault(type(venue).__name__, set())), window

    monkeypatch.setattr(LOBExecutionEnv, "_new_venue", recording)
    for config in (FAST_SIM, REPLAY):
        for broker in BROKERS:
            env = LOBExecutionEnv({**config, "broker": broker})
            env.reset(seed=1)
            done, step = False, 0
            while not done:
                _, _, done, _, _ = env.step(step % 3)  # market, limit, hold in turn
                step += 1
    members = set(get_protocol_members(Venue))
    assert set(used) == {"MarketSimulator", "LobsterReplay"}
    for venue_used in used.values():
        assert venue_used <= members
    assert set.union(*used.values()) == members
