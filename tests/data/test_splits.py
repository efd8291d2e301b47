"""Train / validation / test splits (rlexec.data.splits) on the shipped sample (preset ``sample``)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from rlexec.data.loaders import sample_files
from rlexec.data.splits import PARTS, PRESETS, DataSplit
from rlexec.envs.bar_env import BarExecutionEnv
from rlexec.errors import ConfigError

D = dt.date.fromisoformat


@pytest.fixture(scope="module")
def split() -> DataSplit:
    return DataSplit.from_dict({"preset": "sample"})


@pytest.fixture(scope="module")
def market(split):
    return split.market()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_parts_are_disjoint_by_day(preset):
    fields = PRESETS[preset]
    days = [set(fields[f"{part}_days"]) for part in PARTS]
    assert all(days), "every part has days"
    assert not (days[0] & days[1]) and not (days[0] & days[2]) and not (days[1] & days[2])
    # Chronological: no training day after a validation day, no validation day after a test day.
    assert max(days[0]) < min(days[1]) and max(days[1]) < min(days[2])


def test_sample_sessions_are_disjoint_and_on_their_days(split, market):
    hosts = {part: split.sessions(market, part) for part in PARTS}
    assert {d for _, d in hosts["train"]} == {D("2019-02-12"), D("2019-02-13")}
    assert {d for _, d in hosts["validation"]} == {D("2019-02-14")}
    assert {d for _, d in hosts["test"]} == {D("2019-02-15")}
    days = {part: {d for _, d in s} for part, s in hosts.items()}
    assert not (days["train"] & days["validation"]) and not (days["train"] & days["test"])
    assert not (days["validation"] & days["test"])
    # The history-only day hosts nothing but stays loaded (later orders read it).
    assert all(d != D("2019-02-11") for s in hosts.values() for _, d in s)
    assert D("2019-02-11") in set(market.dates)


def test_test_only_symbols_host_test_orders_only(split, market):
    assert split.test_only_symbols == ("SPY",)
    for part in ("train", "validation"):
        assert "SPY" not in {s for s, _ in split.sessions(market, part)}
        orders = split.orders(market, part, count=300, seed=1, horizon_minutes=240)
        assert len(orders) == 300 and "SPY" not in {o.symbol for o in orders}
    test_sessions = split.sessions(market, "test")
    assert ("SPY", D("2019-02-15")) in test_sessions
    test_orders = split.orders(market, "test", count=300, seed=1, horizon_minutes=240)
    symbols = {o.symbol for o in test_orders}
    assert "SPY" in symbols and symbols == {"AAPL", "JPM", "MSFT", "SPY"}
    assert {o.date for o in test_orders} == {D("2019-02-15")}


@pytest.mark.parametrize("part", PARTS)
def test_orders_come_from_their_part_only(split, market, part):
    orders = split.orders(market, part, count=200, seed=7, horizon_minutes=240)
    allowed = split.sessions(market, part)
    assert all((o.symbol, o.date) in allowed for o in orders)
    assert {o.date for o in orders} == set(split.days(part))


def test_eval_data_is_refused(tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    shutil.copy(sample_files()[0], folder / sample_files()[0].name)
    with pytest.raises(ConfigError, match="eval"):
        DataSplit(data=(str(folder),), train_days=("2019-02-12",))
    with pytest.raises(ConfigError, match="eval"):
        DataSplit(data=(str(folder / sample_files()[0].name),))
    with pytest.raises(ConfigError, match="eval"):
        DataSplit.from_dict({"preset": "sample", "data": [str(folder)]})
    # The same file outside an 'eval' folder is fine.
    ok = tmp_path / "train_data"
    ok.mkdir()
    shutil.copy(sample_files()[0], ok / sample_files()[0].name)
    assert DataSplit(data=(str(ok),)).files() == [ok / sample_files()[0].name]


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"preset": "sample", "train_days": ["2019-02-30"]}, "train_days.*2019-02-30"),
        ({"preset": "sample", "validation_days": ["Feb 14"]}, "validation_days"),
        ({"preset": "nasdaq"}, "preset"),
        ({"preset": "sample", "test_days": ["2019-02-13"]}, "more than one part"),
        ({"train_days": ["2019-02-12"], "validation_days": ["2019-02-12"]}, "more than one part"),
        ({"preset": "sample", "train_days": "2019-02-12", "colour": "red"}, "unknown field.*colour"),
        ({"preset": "sample", "test_days": 20190215}, "must be a list"),
        ({"data": ["/nonexistent/bars.csv"]}, "does not exist"),
    ],
)
def test_bad_split_config(fields, match):
    with pytest.raises(ConfigError, match=match):
        DataSplit.from_dict(fields)


def test_bad_part_symbols_and_empty_part(split, market):
    with pytest.raises(ConfigError, match="part"):
        split.days("dev")
    bad_symbols = DataSplit.from_dict({"preset": "sample", "test_only_symbols": ["TSLA"]})
    with pytest.raises(ConfigError, match="TSLA"):
        bad_symbols.sessions(market, "train")
    no_days = DataSplit.from_dict({"preset": "sample", "validation_days": ["2019-03-01"]})
    with pytest.raises(ConfigError, match="validation.*no session"):
        no_days.sessions(market, "validation")


def test_env_validation_part_only_draws_validation_days():
    env = BarExecutionEnv({"split": {"preset": "sample"}, "part": "validation", "order_pool_size": 32})
    seen = set()
    for i in range(200):
        # Half the resets redraw the order pool (a seed), half pick from the current pool.
        env.reset(seed=i if i % 2 == 0 else None)
        order = env.state.batch.orders[0]
        seen.add((order.symbol, order.date))
    assert {d for _, d in seen} == {D("2019-02-14")}
    assert {s for s, _ in seen} == {"AAPL", "JPM", "MSFT"}  # SPY is test-only


def test_env_part_defaults_to_train_and_test_part_hosts_spy():
    train_env = BarExecutionEnv({"split": {"preset": "sample"}, "order_pool_size": 256})
    train_env.reset(seed=0)
    assert {o.date for o in train_env._pool.orders} == {D("2019-02-12"), D("2019-02-13")}
    test_env = BarExecutionEnv({"split": {"preset": "sample"}, "part": "test", "order_pool_size": 256})
    test_env.reset(seed=0)
    assert {o.date for o in test_env._pool.orders} == {D("2019-02-15")}
    assert "SPY" in {o.symbol for o in test_env._pool.orders}
    with pytest.raises(ConfigError, match="part"):
        BarExecutionEnv({"split": {"preset": "sample"}, "part": "holdout"})
