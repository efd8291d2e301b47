"""route -> train experts -> backtest from one config, on a small synthetic ticker; Ray routing and the cache."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import yaml

from rlexec.llmoe import pipeline
from rlexec.llmoe.cache import RouteCache
from rlexec.llmoe.data import load_ticker
from rlexec.llmoe.pipeline import LLMoEConfig, purged_training_labels, route_windows, run_pipeline
from rlexec.llmoe.routers import make_router

TINY = {"hidden": [8], "max_epochs": 3, "patience": 2}


@pytest.fixture
def ticker_dir(tmp_path):
    days = [d for d in np.arange(np.datetime64("2015-01-01"), np.datetime64("2015-10-01"))
            if d.astype(dt.date).weekday() < 5]
    rng = np.random.default_rng(0)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.01, len(days)))
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    lines += [f"{d},{c * 0.995},{c * 1.01},{c * 0.99},{c},{c},1000" for d, c in zip(days, close)]
    (tmp_path / "XYZ.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "news.csv").write_text("date,text\n" + "".join(f"{d},headline of {d}\n" for d in days[::4]))
    return tmp_path


def _config(ticker_dir, **changes) -> LLMoEConfig:
    data = {"name": "tiny", "data": {"dir": str(ticker_dir), "tickers": ["XYZ"], "text": str(ticker_dir / "news.csv"),
                                     "start": None, "end": None},
            "routers": {"numeric": TINY}, "experts": TINY, "seeds": [0, 1], "cache_dir": str(ticker_dir / "cache")}
    data.update(changes)
    return LLMoEConfig.from_dict(data)


def test_router_training_labels_never_reach_past_the_training_part(ticker_dir):
    data = load_ticker("XYZ", ticker_dir, text=None)
    train, labels = purged_training_labels(data, horizon=5)
    n_train = len(data.split["train"])
    assert train[-1] == n_train - 1 - 5
    assert labels.tolist() == (data.close[train + 5] > data.close[train]).astype(int).tolist()


def test_routing_in_ray_tasks_equals_routing_in_process(ray_session, ticker_dir):
    data = load_ticker("XYZ", ticker_dir, text=None)
    router = make_router("numeric", TINY, seed=0)
    train, labels = purged_training_labels(data, 5)
    router.fit([data.windows[i] for i in train], labels)
    in_ray, in_process = route_windows(router, data.windows, chunk=16), router.route(data.windows)
    assert [d.route for d in in_ray] == [d.route for d in in_process]
    # float32 sums differ in the last bits between a chunk of 16 and one batch of all windows
    assert [d.probability for d in in_ray] == pytest.approx([d.probability for d in in_process], abs=1e-6)


def test_one_config_routes_trains_and_backtests_then_reuses_the_cached_routes(ray_session, ticker_dir, tmp_path,
                                                                              monkeypatch):
    config = _config(ticker_dir)
    first = run_pipeline(config, tmp_path / "runs", log=lambda _: None)
    models = {row["model"] for row in first.rows}
    assert models == {"buy_and_hold", "mlp", "lstm", "moe[numeric]", "router[numeric]"}
    assert len(first.rows) == 5 * 2 * 2  # models x seeds x costs
    assert {row["seeds"] for row in first.summary} == {2}
    for name in ("results.csv", "results.parquet", "summary.csv", "table.md", "record.json", "config.yaml",
                 "equity_XYZ.png", "routes_XYZ.csv", "routes_XYZ.md"):
        assert (first.run_dir / name).is_file(), name
    assert "| XYZ | moe[numeric] | 10 |" in (first.run_dir / "table.md").read_text()
    assert len(list((ticker_dir / "cache" / "numeric" / "XYZ").glob("*.parquet"))) == 2  # one per seed

    def no_refit(*args, **kwargs):
        raise AssertionError("the cached routes should have been used")

    monkeypatch.setattr(pipeline, "make_router", no_refit)
    again = run_pipeline(config, tmp_path / "runs", use_ray=False, log=lambda _: None)
    keyed = lambda rows: {(r["model"], r["seed"], r["cost_bps"]): r["TR"] for r in rows}
    assert keyed(again.rows) == pytest.approx(keyed(first.rows))


def test_a_changed_data_setting_misses_the_cache(ticker_dir):
    data = load_ticker("XYZ", ticker_dir, text=None)
    cache = RouteCache(ticker_dir / "cache")
    fitted = []
    for horizon in (5, 3):
        settings = _config(ticker_dir, data={"dir": str(ticker_dir), "tickers": ["XYZ"], "label_horizon": horizon}).data
        pipeline.route_ticker("numeric", TINY, 0, data, settings, cache, use_ray=False, log=fitted.append)
    assert len(fitted) == 2


def test_the_command_runs_from_yaml_and_bad_configs_are_one_line(ticker_dir, tmp_path, capsys):
    from rlexec.cli.main import main

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**_config(ticker_dir).to_dict(), "seeds": [0], "baselines": ["buy_and_hold"],
                                      "data": {"dir": str(ticker_dir), "tickers": ["XYZ"], "text": None,
                                               "start": None, "end": None}}))
    assert main(["llmoe", str(config), "--out", str(tmp_path / "runs"), "--no-ray"]) == 0
    out = capsys.readouterr().out
    assert "moe[numeric]" in out and "run folder" in out
    config.write_text("routers: {numeric: {}}\nseeds: [0]\ndata: {tickers: [XYZ], typo: 1}\n")
    assert main(["llmoe", str(config)]) == 2
    assert "DataSettings: unknown field(s) ['typo']" in capsys.readouterr().err
