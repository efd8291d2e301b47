"""LOBSTER reading and replay: the queue-position approximation on hand-built days, and the shipped excerpt."""

import io
import struct
import zipfile

import numpy as np
import pytest

from rlexec.errors import ConfigError, DataFileError, OrderError
from rlexec.market import lobster
from rlexec.market.lobster import (
    BUY,
    MAX_UNCOMPRESSED_BYTES,
    NS,
    SAMPLE_REPLAY,
    SELL,
    LobsterReplay,
    lobster_day_from_arrays,
    read_lobster,
)

BID, ASK = 1_000_000, 1_000_100  # $100.00 and $100.01 in LOBSTER units (USD x 10000)


def day(messages, books):
    """messages: (time s, type, id, size, price, direction); books: (ask, ask size, bid, bid size) after each."""
    return lobster_day_from_arrays(np.array(messages, float), np.array(books, float), symbol="TEST", date="2020-01-02")


@pytest.fixture
def queue_day():
    return day(
        [
            (10.0, 1, 1, 300, BID, 1),  # the book: 300 bid at 100.00, 200 ask at 100.01
            (11.0, 4, 1, 200, BID, 1),  # 200 of the queue ahead trades
            (12.0, 3, 7, 50, BID, 1),  # 50 cancelled at our level (level was 100 before)
            (13.0, 4, 1, 80, BID, 1),  # 80 trades: 50 ahead, then 30 of ours
            (14.0, 4, 9, 500, BID - 100, 1),  # a trade through our price fills the rest
        ],
        [
            (ASK, 200, BID, 300),
            (ASK, 200, BID, 100),
            (ASK, 200, BID, 50),
            (ASK, 200, BID - 100, 900),
            (ASK, 200, BID - 100, 400),
        ],
    )


def test_limit_order_waits_behind_the_displayed_queue_then_fills(queue_day):
    replay = LobsterReplay(queue_day)
    replay.run_until(10 * NS)
    assert replay.best_bid_ask() == (10_000, 10_001)
    replay.submit_limit(BUY, 10_000, 100)
    replay.run_until(12 * NS)
    assert len(replay.drain_external_fills()) == 0  # 300 ahead, 200 traded, 50 of 100 cancelled pro rata -> 50 ahead
    replay.run_until(13 * NS)
    fills = replay.drain_external_fills()
    assert fills.qty.tolist() == [30] and fills.price_ticks.tolist() == [10_000.0]
    replay.run_until(14 * NS)
    fills = replay.drain_external_fills()
    assert fills.qty.tolist() == [70] and fills.time_ns.tolist() == [14 * NS]
    assert replay.external_position == 100


def test_cancellations_ahead_are_removed_in_proportion(queue_day):
    """Without the pro-rata cancel rule the 80-share trade would fill nothing (100 still ahead)."""
    replay = LobsterReplay(queue_day)
    replay.run_until(10 * NS)
    replay.submit_limit(BUY, 10_000, 100)
    replay.run_until(13 * NS)
    assert replay.drain_external_fills().qty.sum() == 30


def test_order_improving_the_best_price_is_first_in_queue(queue_day):
    replay = LobsterReplay(queue_day)
    replay.run_until(12 * NS)
    replay.submit_limit(SELL, 10_001, 40)  # at the ask: 200 ahead
    replay.submit_limit(BUY, 10_000, 10)
    replay.cancel_all_external()
    replay.run_until(14 * NS)
    assert len(replay.drain_external_fills()) == 0  # cancelled orders never fill


def test_market_order_takes_displayed_depth_immediate_or_cancel(queue_day):
    replay = LobsterReplay(queue_day)
    replay.run_until(10 * NS)
    replay.submit_market(BUY, 250)
    fills = replay.drain_external_fills()
    assert fills.qty.tolist() == [200] and fills.price_ticks.tolist() == [10_001.0]
    replay.submit_market(BUY, 50)  # the displayed 200 was taken and the level has not changed since
    assert len(replay.drain_external_fills()) == 0
    replay.submit_market(SELL, 500)
    assert replay.drain_external_fills().qty.tolist() == [300]
    assert replay.external_position == 200 - 300


def test_marketable_limit_takes_liquidity_up_to_its_price_then_rests(queue_day):
    replay = LobsterReplay(queue_day)
    replay.run_until(10 * NS)
    replay.submit_limit(BUY, 10_001, 250)
    assert replay.drain_external_fills().qty.tolist() == [200]
    replay.run_until(10.5 * NS)
    assert replay.external_position == 200  # the other 50 now rest at 100.01, the new best bid
    replay.run_until(11 * NS)
    # A seller hit the 100.00 bids: our better-priced 50 would have been hit first.
    assert replay.drain_external_fills().qty.tolist() == [50]
    assert replay.external_position == 250


def test_tape_volume_and_vwap(queue_day):
    replay = LobsterReplay(queue_day)
    assert replay.traded_volume_between(0, 20 * NS) == 200 + 80 + 500
    expected = (200 * 10_000 + 80 * 10_000 + 500 * 9_999) / 780
    assert replay.vwap_between(0, 20 * NS) == pytest.approx(expected)
    assert replay.vwap_between(0, 5 * NS) is None


def test_agent_order_validation(queue_day):
    replay = LobsterReplay(queue_day)
    with pytest.raises(OrderError, match="positive whole number"):
        replay.submit_market(BUY, 0)
    with pytest.raises(OrderError, match="side"):
        replay.submit_limit(3, 10_000, 10)


@pytest.mark.parametrize(
    "messages, books, match",
    [
        ([(2.0, 1, 1, 10, BID, 1), (1.0, 1, 2, 10, BID, 1)], [(ASK, 1, BID, 10)] * 2, r"line 2, field 'time'"),
        ([(1.0, 6, 1, 10, BID, 1)], [(ASK, 1, BID, 10)], r"line 1, field 'type': unknown message type 6"),
        ([(1.0, 1, 1, 0, BID, 1)], [(ASK, 1, BID, 10)], r"line 1, field 'size'"),
        ([(1.0, 1, 1, 10, -5, 1)], [(ASK, 1, BID, 10)], r"line 1, field 'price'"),
        ([(1.0, 1, 1, 10, BID, 1)], [(BID, 1, ASK, 10)], r"line 1, field 'bid price 1': crossed book"),
        ([(1.0, 1, 1, 10, BID, 1)], [(ASK, 1, BID, 10)] * 2, r"2 book rows for 1 messages"),
    ],
)
def test_bad_lobster_data_names_the_line_and_field(messages, books, match):
    with pytest.raises(DataFileError, match=match):
        day(messages, books)


def test_read_lobster_rejects_bad_archives(tmp_path):
    with pytest.raises(DataFileError, match="file not found"):
        read_lobster(tmp_path / "missing.zip")
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(DataFileError, match="not a zip file"):
        read_lobster(tmp_path / "x.zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("X_2020-01-02_0_1_message_1.csv", "1.0,1,1,10,1000000,1\n")
    (tmp_path / "one.zip").write_bytes(buffer.getvalue())
    with pytest.raises(DataFileError, match="expected one message and one orderbook"):
        read_lobster(tmp_path / "one.zip")


def test_shipped_excerpt_replays_consistently():
    lob = read_lobster(SAMPLE_REPLAY)
    assert (lob.symbol, lob.date, lob.levels) == ("AMZN", "2012-06-21", 1)
    assert len(lob) == 5024 and np.all(np.diff(lob.time_ns) >= 0)
    bids, asks = lob.bid_price[:, 0], lob.ask_price[:, 0]
    both = (bids > 0) & (asks > 0)
    assert np.all(asks[both] > bids[both])
    replay = LobsterReplay(lob)
    replay.run_until(34_500 * NS)
    bid, ask = replay.best_bid_ask()
    row = int(np.searchsorted(lob.time_ns, 34_500 * NS, side="right")) - 1
    assert (bid, ask) == (bids[row], asks[row])
    trades = lob.is_trade
    assert replay.traded_volume_between(0, 10**15) == int(lob.size[trades].sum())


# ---- the size cap (zip bombs) ---------------------------------------------------------------------

MESSAGE_CSV, BOOK_CSV = "X_2020-01-02_34200000_36000000_message_1.csv", "X_2020-01-02_34200000_36000000_orderbook_1.csv"
MIB = 1 << 20


def write_zip(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def declare_size(path, member, size):
    """Rewrite the uncompressed size that the zip's headers (local and central) declare for ``member``."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at:start + name_at + len(name)] == name:
                data[start + size_at:start + size_at + 4] = struct.pack("<I", size)
            start += 4
    path.write_bytes(bytes(data))


class CountingOpen:
    """Wraps ZipFile.open: counts the bytes decompressed through it."""

    def __init__(self, monkeypatch):
        self.decompressed = 0
        real_open = zipfile.ZipFile.open
        counter = self

        class Counted:
            def __init__(self, stream):
                self.stream = stream

            def read(self, n=-1):
                chunk = self.stream.read(n)
                counter.decompressed += len(chunk)
                return chunk

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.stream.close()

        monkeypatch.setattr(zipfile.ZipFile, "open", lambda archive, *a, **k: Counted(real_open(archive, *a, **k)))


def test_a_zip_bomb_is_refused_by_its_declared_size_before_anything_is_decompressed(tmp_path, monkeypatch):
    bomb = write_zip(tmp_path / "bomb.zip", {MESSAGE_CSV: "1.0,1,1,10,1000000,1\n", BOOK_CSV: bytes(16 * MIB)})
    assert bomb.stat().st_size < 100_000  # 16 MiB of zeros compress a thousandfold
    counting = CountingOpen(monkeypatch)
    with pytest.raises(DataFileError) as error:
        read_lobster(bomb, max_bytes=MIB)
    message = str(error.value)
    assert message.startswith(f"{bomb}:{BOOK_CSV}: uncompresses to {16 * MIB:,} bytes")
    assert "1,048,576-byte cap" in message and "read_lobster(path, max_bytes=...)" in message
    assert counting.decompressed == 0


def test_the_default_cap_applies_and_is_the_documented_constant(tmp_path, monkeypatch):
    """A member declaring one byte more than the default cap (the header says so; nothing that large is
    written) is refused by the default call; the shipped sample is far below it."""
    path = write_zip(tmp_path / "big.zip", {MESSAGE_CSV: "1.0,1,1,10,1000000,1\n", BOOK_CSV: "1,1,1,1\n"})
    declare_size(path, BOOK_CSV, MAX_UNCOMPRESSED_BYTES + 1)
    counting = CountingOpen(monkeypatch)
    with pytest.raises(DataFileError, match=rf"{BOOK_CSV}: uncompresses to {MAX_UNCOMPRESSED_BYTES + 1:,} bytes, "
                                            rf"over the {MAX_UNCOMPRESSED_BYTES:,}-byte cap"):
        read_lobster(path)
    assert counting.decompressed == 0
    with zipfile.ZipFile(SAMPLE_REPLAY) as z:
        assert sum(i.file_size for i in z.infolist()) * 100 < MAX_UNCOMPRESSED_BYTES


def test_the_cap_is_on_both_csvs_together(tmp_path):
    path = write_zip(tmp_path / "pair.zip", {MESSAGE_CSV: bytes(600_000), BOOK_CSV: bytes(600_000)})
    with pytest.raises(DataFileError, match=rf"^{path}: {MESSAGE_CSV} and {BOOK_CSV} uncompress to 1,200,000 bytes "
                                            r"together, over the 1,000,000-byte cap"):
        read_lobster(path, max_bytes=1_000_000)


def test_a_member_that_understates_its_size_is_not_read_past_its_claim(tmp_path, monkeypatch):
    """A header declaring 100 bytes for 16 MiB: decompression stops at the claim and the CRC exposes it."""
    path = write_zip(tmp_path / "liar.zip", {MESSAGE_CSV: "1.0,1,1,10,1000000,1\n", BOOK_CSV: bytes(16 * MIB)})
    declare_size(path, BOOK_CSV, 100)
    counting = CountingOpen(monkeypatch)
    with pytest.raises(DataFileError, match=rf"{BOOK_CSV}: corrupt zip member"):
        read_lobster(path, max_bytes=MIB)
    assert counting.decompressed <= 100 + len("1.0,1,1,10,1000000,1\n")


def test_decompression_stops_at_the_cap_whatever_the_stream_delivers(tmp_path, monkeypatch):
    """The chunked read's own guard: a member stream that never ends is cut off one chunk past the cap."""
    path = write_zip(tmp_path / "ok.zip", {MESSAGE_CSV: "1.0,1,1,10,1000000,1\n", BOOK_CSV: "1,1,1,1\n"})
    served = []

    class Endless:
        def read(self, n=-1):
            served.append(n)
            return bytes(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: Endless())
    with pytest.raises(DataFileError, match=rf"{MESSAGE_CSV}: decompresses to more than its declared 21 bytes, past "
                                            r"what the cap leaves \(3,145,728 bytes\)"):
        read_lobster(path, max_bytes=3 * MIB)
    assert sum(served) <= 3 * MIB + lobster._READ_CHUNK


def test_the_shipped_sample_reads_up_to_its_exact_size():
    with zipfile.ZipFile(SAMPLE_REPLAY) as z:
        size = sum(i.file_size for i in z.infolist())
    assert len(read_lobster(SAMPLE_REPLAY, max_bytes=size)) == 5024
    with pytest.raises(DataFileError, match="cap"):
        read_lobster(SAMPLE_REPLAY, max_bytes=size - 1)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "1GB"])
def test_max_bytes_must_be_a_positive_whole_number(bad):
    with pytest.raises(ConfigError, match="max_bytes"):
        read_lobster(SAMPLE_REPLAY, max_bytes=bad)
