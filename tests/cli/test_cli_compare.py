"""``rlexec evaluate --compare A:B``: named paired differences next to the baseline's, in summary.json and CSV."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from rlexec.cli.main import main
from rlexec.evaluation.stats import paired_difference


def test_named_comparisons_are_paired_on_the_same_orders(tmp_path, capsys):
    args = ["evaluate", "--num-orders", "30", "--strategies", "twap,vwap,is", "--no-plots", "--out", str(tmp_path)]
    assert main([*args, "--compare", "VWAP:is", "--compare", "is:twap"]) == 0
    assert "Named paired differences" in capsys.readouterr().out
    folder = next((tmp_path / "evaluate").iterdir())
    summary = json.loads((folder / "summary.json").read_text())
    pairs = [(r["a"], r["b"]) for r in summary["paired"] if r["metric"] == "price_advantage_bps"]
    # names match whatever their case (the tables print capitals); is:twap is already there: once
    assert pairs == [("vwap", "twap"), ("is", "twap"), ("vwap", "is")]
    # the figure is the paired difference of the two strategies' per-order PA
    per_order = pq.read_table(folder / "per_order.parquet").to_pydict()
    pa = {s: np.array([p for name, p in zip(per_order["strategy"], per_order["price_advantage_bps"]) if name == s])
          for s in ("vwap", "is")}
    expected = paired_difference(pa["vwap"], pa["is"])
    row = next(r for r in summary["paired"] if (r["a"], r["b"], r["metric"]) == ("vwap", "is", "price_advantage_bps"))
    assert (row["mean"], row["low"], row["high"]) == pytest.approx((expected.mean, expected.low, expected.high))
    assert row["n"] == 30
    with (folder / "paired.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2 * 3  # PA and reward for each pair
    with (folder / "methods.csv").open() as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["twap", "vwap", "is"]


@pytest.mark.parametrize("value, match", [("vwap:opd", r"--compare vwap:opd: no method \['opd'\]"),
                                          ("vwap", r"--compare: expected METHOD:METHOD")])
def test_a_bad_comparison_is_one_line_before_anything_runs(tmp_path, capsys, value, match):
    code = main(["evaluate", "--num-orders", "5", "--strategies", "twap,vwap", "--compare", value,
                 "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and re.search(match, err)
    assert not (tmp_path / "evaluate").exists()
