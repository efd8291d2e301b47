"""Walk-forward folds and the ``spy_2011`` preset (rlexec.data.splits)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from rlexec.data.loaders import sample_files
from rlexec.data.splits import PRESETS, SHARED_DATA, DataSplit, walk_forward_folds
from rlexec.errors import ConfigError

DAYS = ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08")


def test_expanding_folds_train_on_every_earlier_day_and_test_on_the_next():
    folds = walk_forward_folds(DAYS)
    assert [(f.index, f.train_days, f.test_day) for f in folds] == [
        (0, DAYS[:1], DAYS[1]),
        (1, DAYS[:2], DAYS[2]),
        (2, DAYS[:3], DAYS[3]),
        (3, DAYS[:4], DAYS[4]),
    ]


def test_rolling_folds_keep_the_most_recent_days_and_start_after_min_train_days():
    folds = walk_forward_folds(DAYS, min_train_days=2, max_train_days=2)
    assert [(f.train_days, f.test_day) for f in folds] == [
        (DAYS[0:2], DAYS[2]),
        (DAYS[1:3], DAYS[3]),
        (DAYS[2:4], DAYS[4]),
    ]


def test_days_are_sorted_and_no_test_day_is_ever_trained_on_or_before_its_training():
    folds = walk_forward_folds(list(reversed(DAYS)))
    assert [f.test_day for f in folds] == list(DAYS[1:])
    for fold in folds:
        assert fold.test_day not in fold.train_days
        assert max(fold.train_days) < fold.test_day


@pytest.mark.parametrize("days, kwargs, match", [
    (DAYS, {"min_train_days": 0}, r"min_train_days must be an integer >= 1"),
    (DAYS, {"max_train_days": 1, "min_train_days": 2}, r"max_train_days \(1\) must be >= min_train_days"),
    (DAYS[:2], {"min_train_days": 2}, r"needs more than min_train_days=2 days"),
    (DAYS + ("2024-01-03",), {}, r"\['2024-01-03'\] appear more than once"),
    (("2024-01-02", "Jan 3"), {}, r"'Jan 3' is not a YYYY-MM-DD date"),
])
def test_bad_walk_forward_input_is_a_config_error(days, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        walk_forward_folds(days, **kwargs)


def test_split_walk_forward_covers_all_parts_in_date_order_and_keeps_held_out_tickers():
    split = DataSplit.from_dict({"preset": "sample"})
    folds = split.walk_forward()
    assert [f.test_days for f in folds] == [("2019-02-13",), ("2019-02-14",), ("2019-02-15",)]
    assert folds[-1].train_days == ("2019-02-12", "2019-02-13", "2019-02-14")
    assert all(f.validation_days == () and f.test_only_symbols == ("SPY",) for f in folds)
    market = split.market()
    # each fold's test orders are on its test day only: the per-test-day results an evaluation reports
    for fold in folds:
        orders = fold.orders(market, "test", count=20, seed=0, horizon_minutes=240)
        assert {o.date for o in orders} == {dt.date.fromisoformat(fold.test_days[0])}


def test_spy_2011_preset_days_are_stated_and_the_third_is_history_only():
    preset = PRESETS["spy_2011"]
    assert len(preset["train_days"]) == 13 and preset["train_days"][0] == "2011-01-04"
    assert preset["validation_days"] == ("2011-01-24", "2011-01-25", "2011-01-26")
    assert preset["test_days"] == ("2011-01-27", "2011-01-28", "2011-01-31")
    assert "2011-01-17" not in preset["train_days"]  # Martin Luther King day: no session


@pytest.mark.skipif(not (SHARED_DATA / "spy_1min_2011").is_dir(), reason="shared SPY 2011 data not present")
def test_spy_2011_preset_sessions_match_the_data():
    split = DataSplit.from_dict({"preset": "spy_2011"})
    market = split.market()
    assert market.symbols == ("SPY",) and len(market.dates) == 20
    split_days = set(split.train_days + split.validation_days + split.test_days)
    assert {d.isoformat() for d in market.dates} - split_days == {"2011-01-03"}
    for part in ("train", "validation", "test"):
        assert {d.isoformat() for _, d in split.sessions(market, part)} == set(getattr(split, f"{part}_days"))


def test_spy_2011_preset_refuses_eval_data(tmp_path):
    folder = tmp_path / "eval" / "spy_1min_2011"
    folder.mkdir(parents=True)
    shutil.copy(sample_files()[0], folder / sample_files()[0].name)
    with pytest.raises(ConfigError, match="eval"):
        DataSplit.from_dict({"preset": "spy_2011", "data": [str(folder)]})
