"""The OPD study tables (rlexec.evaluation.study): method rows, named paired differences, pooling."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from rlexec.errors import ConfigError
from rlexec.evaluation import study, tables

# Hand computation for d = OPD - TWAP = [1, 2, 1, 3]: mean 1.75, squared deviations
# 0.5625 + 0.0625 + 0.5625 + 1.5625 = 2.75, s^2 = 2.75 / 3, SE = sqrt(2.75 / 3) / 2 = 0.47871355;
# t(0.975, 3 dof) = 3.18244631 (tables), half-width 3.18244631 * 0.47871355 = 1.52348018.
MEAN, SE, LOW, HIGH = 1.75, 0.47871355, 0.22651982, 3.27348018


def metrics(pa: list[float], reward: list[float] | None = None) -> dict[str, np.ndarray]:
    pa = np.asarray(pa, dtype=np.float64)
    return {"price_advantage_bps": pa, "fill_rate": np.ones_like(pa),
            "reward": np.asarray(reward if reward is not None else pa / 100, dtype=np.float64)}


TABLE = {"twap": metrics([1.0, -2.0, 3.0, 0.5]), "ppo": metrics([0.0, -1.0, 3.0, 0.5]),
         "opd": metrics([2.0, 0.0, 4.0, 3.5])}


def test_paired_difference_matches_the_hand_computed_t_interval():
    rows = study.paired_rows("test", TABLE, [study.Comparison("opd", "twap")])
    pa = next(r for r in rows if r["metric"] == "price_advantage_bps")
    assert (pa["a"], pa["b"], pa["n"]) == ("opd", "twap", 4)
    assert pa["mean"] == pytest.approx(MEAN)
    assert pa["se"] == pytest.approx(SE, rel=1e-6)
    assert (pa["low"], pa["high"]) == (pytest.approx(LOW, rel=1e-6), pytest.approx(HIGH, rel=1e-6))
    assert pa["significant"] is True
    reward = next(r for r in rows if r["metric"] == "reward")
    assert reward["mean"] == pytest.approx(MEAN / 100) and reward["low"] == pytest.approx(LOW / 100, rel=1e-6)


def test_method_rows_give_mean_se_glr_and_pos_per_method():
    row = study.method_rows("test", TABLE)[0]
    assert row["method"] == "twap" and row["n_orders"] == 4
    assert row["price_advantage_bps_mean"] == pytest.approx(0.625)
    # gains 1, 3, 0.5 (mean 1.5) against one loss of 2: GLR 0.75; 3 of 4 orders gain: POS 0.75
    assert row["glr"] == pytest.approx(0.75) and row["pos"] == pytest.approx(0.75)
    assert row["fill_rate_mean"] == 1.0


def test_every_method_is_compared_with_the_baseline_then_the_named_pairs_once():
    named = [study.Comparison.parse("OPD:ppo"), study.Comparison.parse("ppo:twap")]
    pairs = study.comparisons("twap", list(TABLE), named)
    assert [(p.a, p.b) for p in pairs] == [("ppo", "twap"), ("opd", "twap"), ("opd", "ppo")]


@pytest.mark.parametrize("text, match", [("opd", "METHOD:METHOD"), ("opd:", "METHOD:METHOD"), ("a:b:c", "METHOD"),
                                         ("opd:opd", "with itself")])
def test_a_malformed_comparison_is_refused(text, match):
    with pytest.raises(ConfigError, match=match):
        study.Comparison.parse(text)


def test_a_comparison_of_a_method_not_evaluated_names_it():
    with pytest.raises(ConfigError, match=r"--compare opd:opds: no method \['opds'\]"):
        study.comparisons("twap", list(TABLE), [study.Comparison("opd", "opds")])


def test_pooling_days_keeps_the_pairs_and_drops_unpriced_orders_from_both_sides():
    day1 = {"twap": metrics([1.0, -2.0]), "opd": metrics([2.0, 0.0])}
    day2 = {"twap": metrics([3.0, 0.5, 1.0]), "opd": metrics([4.0, 3.5, np.nan])}  # no fill: no PA
    pooled = study.pool([day1, day2])
    assert pooled["opd"]["price_advantage_bps"].size == 5
    pa = study.paired_rows("pooled", pooled, [study.Comparison("opd", "twap")])[0]
    assert pa["n"] == 4 and pa["mean"] == pytest.approx(MEAN) and pa["low"] == pytest.approx(LOW, rel=1e-6)


def test_pooling_refuses_days_whose_methods_differ():
    with pytest.raises(ConfigError, match="every method on every part"):
        study.pool([{"twap": metrics([1.0])}, {"twap": metrics([1.0]), "opd": metrics([2.0])}])


def test_rows_round_trip_through_csv_with_nan_as_empty(tmp_path):
    rows = study.paired_rows("d", {"twap": metrics([1.0]), "opd": metrics([2.0])}, [study.Comparison("opd", "twap")])
    study.write_rows(rows, tmp_path / "paired.csv")
    read = list(csv.DictReader((tmp_path / "paired.csv").open()))
    assert read[0]["mean"] == "" and read[0]["n"] == "1"  # one order: no interval
    assert math.isnan(rows[0]["mean"])


def test_the_per_day_table_has_a_column_per_day_and_pooled():
    rows = study.method_rows("2019-02-14", TABLE) + study.method_rows("pooled", TABLE)
    table = tables.by_scope(rows)
    assert table.columns == ("method", "2019-02-14", "pooled")
    assert table.rows[0] == ("TWAP", "0.62 ± 1.03", "0.62 ± 1.03")
