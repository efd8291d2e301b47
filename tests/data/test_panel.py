"""rlexec.data.panel: MarketData.from_table and its gap policy."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rlexec.data import FIELDS, MarketData, SyntheticMarketConfig, generate_bars, load_sample, read_many, sample_files
from rlexec.data.calendar import session_minute_starts_ns
from rlexec.data.panel import CLOSE, VOLUME
from rlexec.errors import BarDataError

DAYS = (dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4))
CONFIG = SyntheticMarketConfig(symbols=("SYNA",), start_date=DAYS[0], num_days=3)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    """3 full sessions of one symbol; row ``day * 390 + minute``."""
    return generate_bars(CONFIG, seed=11)


@pytest.fixture(scope="module")
def values(table) -> np.ndarray:
    """(3, 390, 5) array of the table's open, high, low, close, volume."""
    return np.stack([table.column(f).cast(pa.float64()).to_numpy() for f in FIELDS], axis=1).reshape(3, 390, 5)


def without(table: pa.Table, day: int, minutes) -> pa.Table:
    """The table less the given minutes of session ``day``."""
    keep = np.ones(table.num_rows, dtype=bool)
    keep[[day * 390 + m for m in minutes]] = False
    return table.filter(pa.array(keep))


def with_volume(table: pa.Table, index: int, volume: int) -> pa.Table:
    vol = table.column("volume").to_numpy().copy()
    vol[index] = volume
    i = table.schema.get_field_index("volume")
    return table.set_column(i, table.schema.field(i), pa.array(vol, pa.int64()))


def test_full_sessions_are_copied_unchanged(table, values):
    market = MarketData.from_table(table)
    assert market.num_sessions == 3
    assert market.dates == DAYS
    assert market.row_symbols == ("SYNA",) * 3
    assert market.symbols == ("SYNA",)
    assert market.bars.shape == (3, 390, 5) and market.bars.dtype == np.float64
    assert np.array_equal(market.bars, values)
    assert market.observed.dtype == bool and market.observed.all()
    assert market.off_session_bars == 0 and market.dropped_days == ()


def test_missing_minute_is_filled_with_previous_close_and_zero_volume(table, values):
    market = MarketData.from_table(without(table, 0, [100, 101]))
    prev_close = values[0, 99, CLOSE]
    for m in (100, 101):
        assert list(market.bars[0, m]) == [prev_close] * 4 + [0.0]
        assert not market.observed[0, m]
    assert np.array_equal(market.bars[0, 99], values[0, 99])
    assert np.array_equal(market.bars[0, 102], values[0, 102])
    assert market.observed.sum() == 3 * 390 - 2
    assert np.array_equal(market.bars[1:], values[1:])


def test_gap_after_a_gap_uses_the_last_observed_close(table, values):
    # Minutes 10 and 12 missing, 11 present: 12 takes 11's close, not 9's.
    market = MarketData.from_table(without(table, 1, [10, 12]))
    assert list(market.bars[1, 10, :4]) == [values[1, 9, CLOSE]] * 4
    assert list(market.bars[1, 12, :4]) == [values[1, 11, CLOSE]] * 4
    assert list(market.observed[1, 9:14]) == [True, False, True, False, True]


def test_leading_missing_minutes_carry_the_previous_sessions_last_close(table, values):
    market = MarketData.from_table(without(table, 1, [0, 1, 2]))
    last_close = values[0, 389, CLOSE]
    assert np.array_equal(market.bars[1, :3, :4], np.full((3, 4), last_close))
    assert np.array_equal(market.bars[1, :3, VOLUME], np.zeros(3))
    assert not market.observed[1, :3].any() and market.observed[1, 3:].all()
    assert np.array_equal(market.bars[1, 3:], values[1, 3:])


def test_leading_missing_minutes_take_nothing_from_the_bars_after_them(table):
    # Perturb the session's first real bar (09:33) and everything after it: the filled 09:30-09:32
    # minutes precede it, so they must not change.
    gappy = without(table, 1, [0, 1, 2])
    later = np.zeros(gappy.num_rows, dtype=bool)
    later[390 : 2 * 390 - 3] = True  # day 1's 387 remaining bars follow day 0's 390
    scaled = gappy
    for name in ("open", "high", "low", "close"):
        i = scaled.schema.get_field_index(name)
        column = scaled.column(name).to_numpy().copy()
        column[later] *= 1.25
        scaled = scaled.set_column(i, scaled.schema.field(i), pa.array(column, pa.float64()))
    before, after = MarketData.from_table(gappy), MarketData.from_table(scaled)
    assert not np.array_equal(before.bars[1, 3:, :4], after.bars[1, 3:, :4])  # the perturbation took
    assert np.array_equal(before.bars[1, :3], after.bars[1, :3])


def test_first_session_with_leading_gap_is_dropped_but_still_carries_its_close(table, values):
    # Nothing earlier than day 0's first bar (09:32) is known, so day 0 cannot be completed without
    # looking ahead; its real bars still give day 1 the price to carry into day 1's missing 09:30.
    market = MarketData.from_table(without(without(table, 1, [0]), 0, [0, 1]))
    assert market.dates == DAYS[1:]
    ((symbol, date, reason),) = market.dropped_days
    assert (symbol, date) == ("SYNA", DAYS[0])
    assert "no earlier price" in reason and "09:32" in reason
    assert list(market.bars[0, 0]) == [values[0, 389, CLOSE]] * 4 + [0.0]


def test_missing_minutes_never_cross_symbols():
    # BBB's first session lacks its 09:30 bar; AAA's last close must not leak into it.
    cfg = SyntheticMarketConfig(symbols=("AAA", "BBB"), start_date=DAYS[0], num_days=2)
    two = generate_bars(cfg, seed=3)
    bbb_first = two.num_rows // 2  # rows are sorted by symbol, then time
    keep = np.ones(two.num_rows, dtype=bool)
    keep[bbb_first] = False
    market = MarketData.from_table(two.filter(pa.array(keep)))
    assert market.row_symbols == ("AAA", "AAA", "BBB")
    assert [d[:2] for d in market.dropped_days] == [("BBB", DAYS[0])]


def test_trailing_missing_minutes_take_the_last_close(table, values):
    market = MarketData.from_table(without(table, 2, range(385, 390)))
    assert np.array_equal(market.bars[2, 385:, :4], np.full((5, 4), values[2, 384, CLOSE]))
    assert np.array_equal(market.bars[2, 385:, VOLUME], np.zeros(5))
    assert not market.observed[2, 385:].any()


def test_real_zero_volume_bar_stays_observed_with_its_prices(table, values):
    market = MarketData.from_table(with_volume(table, 390 + 50, 0))
    assert market.observed[1, 50]
    assert market.bars[1, 50, VOLUME] == 0.0
    assert np.array_equal(market.bars[1, 50, :4], values[1, 50, :4])
    # Not treated like a gap: the next bar keeps its own prices.
    assert np.array_equal(market.bars[1, 51], values[1, 51])


def test_bars_outside_the_session_are_dropped_and_counted(table, values):
    minute = 60_000_000_000
    open_ns = int(session_minute_starts_ns(DAYS[0])[0])
    extra_ts = [open_ns - minute, open_ns + 390 * minute, open_ns + 600 * minute]  # 09:29, 16:00, 19:30 ET
    extra = pa.table(
        {
            "symbol": ["SYNA"] * 3,
            "ts": pa.array(extra_ts, pa.timestamp("ns", tz="UTC")),
            "open": [1.0] * 3, "high": [1.0] * 3, "low": [1.0] * 3, "close": [1.0] * 3,
            "volume": pa.array([7, 7, 7], pa.int64()),
        },
        schema=table.schema,
    )
    market = MarketData.from_table(pa.concat_tables([extra, table]))
    assert market.off_session_bars == 3
    assert market.num_sessions == 3
    assert np.array_equal(market.bars, values)
    assert market.observed.all()


def test_a_sparse_instrument_keeps_its_sessions_by_default(table, values):
    # An illiquid name: about 30% of minutes have trades. Every session stays; the missing minutes
    # are minutes without trades (volume 0) at the last close.
    rng = np.random.default_rng(0)
    present = rng.random((3, 390)) < 0.3
    present[0, 0] = True  # the first session opens with a trade, so nothing before it is needed
    sparse = table.filter(pa.array(present.ravel()))
    market = MarketData.from_table(sparse)
    assert market.dates == DAYS and market.dropped_days == ()
    assert np.array_equal(market.observed, present)
    assert np.array_equal(market.bars[present], values[present])
    assert np.all(market.bars[~present, VOLUME] == 0)
    flat = market.bars.reshape(-1, 5)
    for i in np.flatnonzero(~present.ravel()):
        last = np.flatnonzero(present.ravel()[:i])[-1]
        assert np.all(flat[i, :4] == flat[last, CLOSE])


def test_a_configured_coverage_threshold_drops_sparse_days_naming_the_setting(table):
    sparse = without(table, 1, range(150, 390))  # 150 of 390 bars left on day 1
    market = MarketData.from_table(sparse, min_observed_fraction=0.5)
    assert market.dates == (DAYS[0], DAYS[2])
    ((symbol, date, reason),) = market.dropped_days
    assert (symbol, date) == ("SYNA", DAYS[1])
    assert reason.startswith("only 150 of 390 bars") and "min_observed_fraction=0.5" in reason
    assert not market.has_session("SYNA", DAYS[1])
    kept = MarketData.from_table(sparse, min_observed_fraction=0.3)
    assert kept.dates == DAYS and kept.dropped_days == ()
    assert kept.observed[1].sum() == 150


def test_exactly_the_minimum_fraction_is_kept(table):
    half = without(table, 2, range(195, 390))  # 195 / 390 = 0.5
    assert MarketData.from_table(half, min_observed_fraction=0.5).dates == DAYS
    fewer = without(table, 2, range(194, 390))
    ((_, date, reason),) = MarketData.from_table(fewer, min_observed_fraction=0.5).dropped_days
    assert date == DAYS[2] and reason.startswith("only 194 of 390 bars")


def test_no_session_kept_is_an_error_naming_the_setting(table):
    sparse = table.filter(pa.array(np.arange(table.num_rows) % 390 < 100))
    assert MarketData.from_table(sparse).num_sessions == 3
    with pytest.raises(BarDataError, match=r"thin: no session kept.*only 100 of 390 bars.*min_observed_fraction=0\.5"):
        MarketData.from_table(sparse, min_observed_fraction=0.5, source="thin")


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_min_observed_fraction_outside_0_1_is_an_error(table, fraction):
    with pytest.raises(BarDataError, match=rf"src: min_observed_fraction must be in \[0, 1\], got {fraction}"):
        MarketData.from_table(table, min_observed_fraction=fraction, source="src")


def test_empty_table_is_an_error(table):
    with pytest.raises(BarDataError, match=r"src: no bars"):
        MarketData.from_table(table.slice(0, 0), source="src")


# ---------------------------------------------------------------- row look-ups


@pytest.fixture(scope="module")
def two_symbols() -> MarketData:
    cfg = SyntheticMarketConfig(symbols=("BBB", "AAA"), start_date=dt.date(2024, 1, 8), num_days=5)
    return MarketData.from_table(generate_bars(cfg, seed=5))


def test_rows_are_ordered_by_symbol_then_date(two_symbols):
    week = [dt.date(2024, 1, d) for d in (8, 9, 10, 11, 12)]
    assert two_symbols.symbols == ("AAA", "BBB")
    assert two_symbols.row_symbols == ("AAA",) * 5 + ("BBB",) * 5
    assert two_symbols.dates == tuple(week * 2)
    assert [two_symbols.row("BBB", d) for d in week] == [5, 6, 7, 8, 9]
    assert two_symbols.sessions_of("AAA") == week


def test_row_of_a_missing_session_is_an_error(two_symbols):
    assert not two_symbols.has_session("AAA", dt.date(2024, 1, 13))
    with pytest.raises(BarDataError, match=r"market data: no session for AAA on 2024-01-13"):
        two_symbols.row("AAA", dt.date(2024, 1, 13))


def test_prior_rows_are_strictly_earlier_and_most_recent_last(two_symbols):
    r = {d: two_symbols.row("BBB", dt.date(2024, 1, d)) for d in (8, 9, 10, 11, 12)}
    assert two_symbols.prior_rows("BBB", dt.date(2024, 1, 11), 2) == [r[9], r[10]]
    assert two_symbols.prior_rows("BBB", dt.date(2024, 1, 11), 10) == [r[8], r[9], r[10]]
    assert two_symbols.prior_rows("BBB", dt.date(2024, 1, 8), 3) == []
    assert two_symbols.prior_rows("BBB", dt.date(2024, 1, 9), 1) == [r[8]]
    # A date without a session (Saturday): everything strictly before it.
    assert two_symbols.prior_rows("BBB", dt.date(2024, 1, 13), 2) == [r[11], r[12]]
    assert two_symbols.prior_rows("CCC", dt.date(2024, 1, 12), 2) == []


def test_prior_rows_skip_a_dropped_day(table):
    market = MarketData.from_table(without(table, 1, range(100, 390)), min_observed_fraction=0.5)
    assert market.dropped_days[0][:2] == ("SYNA", DAYS[1])
    assert market.prior_rows("SYNA", DAYS[2], 1) == [market.row("SYNA", DAYS[0])]


def test_prior_rows_with_count_zero_is_empty(two_symbols):
    # "Rows of up to ``count`` sessions": up to zero is none.
    assert two_symbols.prior_rows("AAA", dt.date(2024, 1, 12), 0) == []


# ---------------------------------------------------------------- daylight saving and the real sample


def test_sessions_on_both_sides_of_a_dst_switch_are_complete():
    cfg = SyntheticMarketConfig(start_date=dt.date(2024, 3, 7), num_days=3)  # Thu, Fri, Mon 11 March
    market = MarketData.from_table(generate_bars(cfg, seed=2))
    assert market.dates == (dt.date(2024, 3, 7), dt.date(2024, 3, 8), dt.date(2024, 3, 11))
    assert market.observed.all() and market.off_session_bars == 0


def test_shipped_sample_gives_20_sessions():
    market = load_sample()
    week = [dt.date(2019, 2, d) for d in (11, 12, 13, 14, 15)]
    assert market.num_sessions == 20
    assert market.symbols == ("AAPL", "JPM", "MSFT", "SPY")
    assert all(market.sessions_of(s) == week for s in market.symbols)
    assert market.off_session_bars == 0 and market.dropped_days == ()

    table = read_many(sample_files())
    # Every bar of the files is observed; everything else was filled.
    assert market.observed.sum() == table.num_rows
    filled = market.bars[~market.observed]
    assert np.all(filled[:, VOLUME] == 0)
    assert np.all(filled[:, :4] == filled[:, :1])

    aapl = table.filter(pc.equal(table.column("symbol"), "AAPL")).slice(0, 1).to_pylist()[0]
    first = market.bars[market.row("AAPL", week[0]), 0]
    assert list(first) == [aapl[f] for f in FIELDS]
