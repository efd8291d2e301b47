"""rlexec.data.orders: the Order dataclass, order files, and reproducible order generation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlexec.data import MarketData, SyntheticMarketConfig, generate_bars, load_sample
from rlexec.data.orders import ORDER_COLUMNS, Order, OrderGenerator, generate_orders, read_orders, write_orders
from rlexec.data.panel import VOLUME
from rlexec.errors import OrderError

HEADER = "symbol,date,side,quantity,start"
D = dt.date(2019, 2, 12)


@pytest.fixture
def write_orders_csv(tmp_path):
    def write(rows: list[str], name: str = "orders.csv", header: str = HEADER):
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n")
        return path

    return write


# ---------------------------------------------------------------- Order


def test_order_fields_sigma_and_start_time():
    sell = Order(symbol="AAPL", date=D, side="sell", quantity=1000.0, start_minute=45)
    buy = Order(symbol="AAPL", date=D, side="buy", quantity=1.0, start_minute=389)
    assert (sell.sigma, buy.sigma) == (1, -1)
    assert (sell.start_time, buy.start_time) == ("10:15", "15:59")
    assert Order(symbol="A", date=D, side="buy", quantity=5, start_minute=0).start_time == "09:30"


@pytest.mark.parametrize("side", ["hold", "BUY", "", "short"])
def test_order_rejects_a_side_other_than_buy_or_sell(side):
    with pytest.raises(OrderError, match=rf"side must be 'buy' or 'sell', got '{side}'"):
        Order(symbol="A", date=D, side=side, quantity=10.0, start_minute=0)


@pytest.mark.parametrize("quantity", [0.0, -5.0, float("nan"), float("inf")])
def test_order_rejects_a_non_positive_or_non_finite_quantity(quantity):
    with pytest.raises(OrderError, match=r"quantity must be a positive number of shares"):
        Order(symbol="A", date=D, side="buy", quantity=quantity, start_minute=0)


@pytest.mark.parametrize("minute", [-1, 390, 1000])
def test_order_rejects_a_start_outside_the_session(minute):
    with pytest.raises(OrderError, match=rf"start must be inside the 09:30-16:00 session, got minute {minute}"):
        Order(symbol="A", date=D, side="sell", quantity=10.0, start_minute=minute)


# ---------------------------------------------------------------- read_orders / write_orders


def test_read_orders_parses_each_column(write_orders_csv):
    path = write_orders_csv(["AAPL,2019-02-12,buy,1000,09:30", "MSFT,2019-02-13, SELL ,50.5,10:15", "SPY,2019-02-14,sell,3,15:59"])
    assert read_orders(path) == [
        Order(symbol="AAPL", date=dt.date(2019, 2, 12), side="buy", quantity=1000.0, start_minute=0),
        Order(symbol="MSFT", date=dt.date(2019, 2, 13), side="sell", quantity=50.5, start_minute=45),
        Order(symbol="SPY", date=dt.date(2019, 2, 14), side="sell", quantity=3.0, start_minute=389),
    ]


BAD_ORDER_ROWS = [
    ("side", "AAPL,2019-02-12,hold,10,09:30", r"side must be 'buy' or 'sell', got 'hold'"),
    ("zero_quantity", "AAPL,2019-02-12,buy,0,09:30", r"quantity must be a positive number of shares, got 0\.0"),
    ("negative_quantity", "AAPL,2019-02-12,buy,-3,09:30", r"quantity must be a positive number of shares, got -3\.0"),
    ("text_quantity", "AAPL,2019-02-12,buy,lots,09:30", r"could not convert string to float: 'lots'"),
    ("empty_quantity", "AAPL,2019-02-12,buy,,09:30", r""),
    ("start_at_close", "AAPL,2019-02-12,buy,10,16:00", r"start must be inside the 09:30-16:00 session, got minute 390"),
    ("start_before_open", "AAPL,2019-02-12,buy,10,09:29", r"start must be inside the 09:30-16:00 session, got minute -1"),
    ("text_start", "AAPL,2019-02-12,buy,10,soon", r"invalid literal"),
    ("bad_date", "AAPL,2019-02-30,buy,10,10:00", r"day is out of range for month"),
]


@pytest.mark.parametrize(("bad", "message"), [c[1:] for c in BAD_ORDER_ROWS], ids=[c[0] for c in BAD_ORDER_ROWS])
def test_read_orders_bad_row_names_file_and_line(write_orders_csv, bad, message):
    good = ["AAPL,2019-02-12,buy,1000,09:30", "MSFT,2019-02-13,sell,50,10:15"]
    path = write_orders_csv([*good, bad])
    # the third order sits on line 4 of the file: the header is line 1, as an editor counts
    assert path.read_text().splitlines()[3] == bad
    with pytest.raises(OrderError, match=rf"orders\.csv, line 4: {message}") as info:
        read_orders(path)
    assert (info.value.source, info.value.line, info.value.row) == (str(path), 4, None)


def test_read_orders_bad_row_of_a_parquet_file_names_the_row(tmp_path):
    # a parquet file has no lines: its rows count from 1
    table = pa.table({"symbol": ["AAPL", "AAPL"], "date": ["2019-02-12", "2019-02-12"], "side": ["buy", "hold"],
                      "quantity": [10.0, 10.0], "start": ["10:00", "10:00"]})
    pq.write_table(table, tmp_path / "orders.parquet")
    with pytest.raises(OrderError, match=r"orders\.parquet, row 2: side must be 'buy' or 'sell'") as info:
        read_orders(tmp_path / "orders.parquet")
    assert (info.value.line, info.value.row) == (None, 2)


def test_read_orders_missing_columns(write_orders_csv):
    path = write_orders_csv(["AAPL,2019-02-12,buy,10"], header="symbol,date,side,quantity")
    with pytest.raises(OrderError, match=r"orders\.csv: missing column\(s\) \['start'\]; found"):
        read_orders(path)


def test_read_orders_header_only(write_orders_csv):
    with pytest.raises(OrderError, match=r"orders\.csv: no orders in file"):
        read_orders(write_orders_csv([]))


def test_read_orders_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(OrderError, match=r"empty\.csv: unreadable order file"):
        read_orders(empty)
    with pytest.raises(OrderError, match=r"gone\.csv: file not found"):
        read_orders(tmp_path / "gone.csv")


@pytest.mark.parametrize("name", ["orders.csv", "orders.parquet"])
def test_write_then_read_orders_round_trips(tmp_path, name):
    orders = [
        Order(symbol="AAPL", date=dt.date(2019, 2, 12), side="buy", quantity=1234.0, start_minute=0),
        Order(symbol="JPM", date=dt.date(2019, 2, 15), side="sell", quantity=0.5, start_minute=389),
        Order(symbol="MSFT", date=dt.date(2020, 12, 31), side="sell", quantity=77.25, start_minute=151),
    ]
    path = write_orders(orders, tmp_path / name)
    assert path == tmp_path / name
    assert read_orders(path) == orders


def test_order_file_columns():
    assert ORDER_COLUMNS == ("symbol", "date", "side", "quantity", "start")


# ---------------------------------------------------------------- generate_orders


@pytest.fixture(scope="module")
def sample_market() -> MarketData:
    return load_sample()


@pytest.fixture(scope="module")
def gappy_market() -> MarketData:
    """AAA on 4 days, BBB on 4 days with its second day too sparse to keep (dropped)."""
    table = generate_bars(SyntheticMarketConfig(symbols=("AAA", "BBB"), num_days=4), seed=8)
    keep = np.ones(table.num_rows, dtype=bool)
    bbb_day1 = 4 * 390 + 390  # BBB rows start after AAA's 4 days
    keep[bbb_day1 + 10 : bbb_day1 + 390] = False
    market = MarketData.from_table(table.filter(pa.array(keep)), min_observed_fraction=0.5)
    ((symbol, date, reason),) = market.dropped_days
    assert (symbol, date) == ("BBB", dt.date(2024, 1, 3)) and reason.startswith("only 10 of 390 bars")
    return market


def previous_session(market: MarketData, symbol: str, date: dt.date) -> dt.date:
    return max(d for d in market.sessions_of(symbol) if d < date)


def test_generate_orders_is_reproducible_per_seed(sample_market):
    gen = OrderGenerator(horizon_minutes=120)
    a = generate_orders(sample_market, 50, seed=1, generator=gen)
    assert a == generate_orders(sample_market, 50, seed=1, generator=gen)
    assert a != generate_orders(sample_market, 50, seed=2, generator=gen)
    assert len(a) == 50


@pytest.mark.parametrize("market_name", ["sample_market", "gappy_market"])
def test_generated_orders_respect_history_size_and_window(request, market_name):
    market = request.getfixturevalue(market_name)
    lo, hi = 0.002, 0.02
    gen = OrderGenerator(horizon_minutes=90, size_fraction=(lo, hi))
    orders = generate_orders(market, 300, seed=7, generator=gen)
    for order in orders:
        sessions = market.sessions_of(order.symbol)
        assert order.date in sessions
        assert order.date != sessions[0]  # has an earlier session
        prev_row = market.row(order.symbol, previous_session(market, order.symbol, order.date))
        prev_volume = market.bars[prev_row, :, VOLUME].sum()
        assert lo * prev_volume - 1 < order.quantity <= hi * prev_volume
        assert order.quantity == np.floor(order.quantity)
        assert 0 <= order.start_minute and order.start_minute + 90 <= 390
        assert order.side in ("buy", "sell")
    # Draws cover the candidates: both sides and every (symbol, non-first date) show up in 300 orders.
    assert {o.side for o in orders} == {"buy", "sell"}
    expected = {(s, d) for s in market.symbols for d in market.sessions_of(s)[1:]}
    assert {(o.symbol, o.date) for o in orders} == expected


def test_order_after_a_dropped_day_is_sized_from_the_last_kept_session(gappy_market):
    orders = generate_orders(gappy_market, 300, seed=3, generator=OrderGenerator(horizon_minutes=30, size_fraction=(0.01, 0.01)))
    jan4 = [o for o in orders if (o.symbol, o.date) == ("BBB", dt.date(2024, 1, 4))]
    assert jan4
    prev_volume = gappy_market.bars[gappy_market.row("BBB", dt.date(2024, 1, 2)), :, VOLUME].sum()
    assert all(o.quantity == np.floor(0.01 * prev_volume) for o in jan4)


def test_full_day_horizon_always_starts_at_the_open(sample_market):
    orders = generate_orders(sample_market, 20, seed=0, generator=OrderGenerator(horizon_minutes=390))
    assert {o.start_minute for o in orders} == {0}


def test_generator_symbols_and_sides_filters(sample_market):
    gen = OrderGenerator(horizon_minutes=60, sides=("sell",), symbols=("JPM",))
    orders = generate_orders(sample_market, 40, seed=5, generator=gen)
    assert {o.symbol for o in orders} == {"JPM"}
    assert {o.side for o in orders} == {"sell"}


def test_market_with_one_session_per_symbol_cannot_size_orders():
    market = MarketData.from_table(generate_bars(SyntheticMarketConfig(num_days=1), seed=0))
    with pytest.raises(OrderError, match=r"no session has an earlier session"):
        generate_orders(market, 5, seed=0, generator=OrderGenerator(horizon_minutes=30))


def test_horizon_longer_than_the_session_is_rejected(sample_market):
    with pytest.raises(OrderError, match=r"horizon_minutes must be in \[1, 390\], got 391"):
        generate_orders(sample_market, 5, seed=0, generator=OrderGenerator(horizon_minutes=391))


@pytest.mark.parametrize("fraction", [(0.0, 0.01), (0.02, 0.01), (-0.01, 0.01)])
def test_invalid_size_fraction_is_rejected(sample_market, fraction):
    with pytest.raises(OrderError, match=r"size_fraction must satisfy 0 < low <= high"):
        generate_orders(sample_market, 5, seed=0, generator=OrderGenerator(horizon_minutes=30, size_fraction=fraction))


@pytest.mark.parametrize("horizon", [0, -30])
def test_non_positive_horizon_is_rejected(sample_market, horizon):
    # An execution window of zero or negative length cannot be traded; like a horizon over 390 it should
    # be refused up front, naming the horizon (not surface later as a bad start minute, or not at all).
    with pytest.raises(OrderError, match=r"horizon"):
        generate_orders(sample_market, 50, seed=0, generator=OrderGenerator(horizon_minutes=horizon))
