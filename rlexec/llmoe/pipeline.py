"""``rlexec llmoe CONFIG.yaml``: route -> train experts -> backtest, for the listed routers, tickers and seeds.

YAML (every key optional; the defaults are in :class:`LLMoEConfig` and :class:`DataSettings`)::

    name: llmoe_numeric
    data: {tickers: [AAPL, MSFT], text: stocknet, start: 2014-01-08, end: 2016-03-31,
           split: [0.8, 0.1, 0.1], label_horizon: 5}
    routers: {numeric: {}}          # kind -> options; kinds in rlexec.llmoe.routers.ROUTERS
    baselines: [buy_and_hold, mlp, lstm]
    experts: {hidden: [128, 64], dropout: 0.2, lr: 1.0e-3}
    costs_bps: [0, 10]
    seeds: [0, 1, 2, 3, 4]
    cache_dir: runs/llmoe_cache

Models in the results: ``buy_and_hold``, ``mlp``, ``lstm``, ``moe[<router>]`` (the two experts routed
by that router: with ``numeric`` the 2-expert MoE baseline, with a text router LLMoE) and
``router[<router>]`` (holding the stock exactly on the days routed optimistic). Every figure is on
the test part of each ticker's chronological split.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlexec.configs import config_from_dict, read_yaml_mapping
from rlexec.errors import ConfigError
from rlexec.llmoe.cache import RouteCache, routing_fingerprint
from rlexec.llmoe.data import DATE_ONLY_RULES, DayWindow, TickerData, load_ticker
from rlexec.llmoe.experts import ExpertSettings
from rlexec.llmoe.routers import RouteDecision, make_router, router_class, routing_labels
from rlexec.provenance import is_plain_name

BASELINES = ("buy_and_hold", "mlp", "lstm")
METRICS = ("TR", "SR", "MDD", "CR")


@dataclass(frozen=True)
class DataSettings:
    """``dir``: the stocknet folder (default: ``shared/data/text_stocknet`` above the checkout);
    ``text``: ``stocknet``, a headline CSV/parquet path, or null (no text). ``start``/``end`` bound the
    decision days (default: the tweets' period less its first 4 sessions, so every window has text
    coverage); ``split`` is chronological [spec §4.3 DEFAULT]; ``label_horizon`` is the routing
    label's horizon (:func:`rlexec.llmoe.routers.base.routing_labels`, rlexec's [DEFAULT] 5)."""

    dir: str | None = None
    tickers: tuple[str, ...] = ("AAPL", "MSFT")
    text: str | None = "stocknet"
    start: str | None = "2014-01-08"
    end: str | None = "2016-03-31"
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    label_horizon: int = 5
    date_only: str = "next_session"

    def __post_init__(self) -> None:
        if not self.tickers:
            raise ConfigError("data.tickers: list at least one ticker")
        for ticker in self.tickers:
            if not is_plain_name(ticker):
                raise ConfigError(f"data.tickers: {ticker!r} is not a plain name")
        if int(self.label_horizon) < 1:
            raise ConfigError(f"data.label_horizon: must be >= 1, got {self.label_horizon}")
        if self.date_only not in DATE_ONLY_RULES:
            raise ConfigError(f"data.date_only: one of {DATE_ONLY_RULES}, got {self.date_only!r}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                try:
                    dt.date.fromisoformat(str(value))
                except ValueError:
                    raise ConfigError(f"data.{name}: not a date (YYYY-MM-DD): {value!r}") from None

    def fingerprint_settings(self) -> dict[str, Any]:
        """What routes depend on (the folder's location does not)."""
        settings = asdict(self)
        settings.pop("dir")
        settings.pop("tickers")
        return settings


@dataclass(frozen=True)
class LLMoEConfig:
    name: str = "llmoe"
    data: DataSettings = field(default_factory=DataSettings)
    routers: dict[str, dict] = field(default_factory=lambda: {"numeric": {}})
    baselines: tuple[str, ...] = BASELINES
    router_only: bool = True
    experts: ExpertSettings = field(default_factory=ExpertSettings)
    costs_bps: tuple[float, ...] = (0.0, 10.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    cache_dir: str = "runs/llmoe_cache"
    route_chunk: int = 64
    torch_threads: int = 1

    def __post_init__(self) -> None:
        if not is_plain_name(self.name):
            raise ConfigError(f"name: {self.name!r} is not a plain name")
        unknown = set(self.baselines) - set(BASELINES)
        if unknown:
            raise ConfigError(f"baselines: unknown {sorted(unknown)}; known: {list(BASELINES)}")
        if not isinstance(self.routers, dict) or any(not isinstance(v, dict) for v in self.routers.values()):
            raise ConfigError("routers: a mapping of router kind -> options mapping (e.g. {numeric: {}})")
        if not self.seeds:
            raise ConfigError("seeds: list at least one seed")
        if any(c < 0 for c in self.costs_bps):
            raise ConfigError(f"costs_bps: must be >= 0, got {self.costs_bps}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMoEConfig:
        data = dict(data)
        routers = data.get("routers")
        if isinstance(routers, list):
            data["routers"] = {str(kind): {} for kind in routers}
        elif isinstance(routers, dict):
            data["routers"] = {str(kind): ({} if options is None else options) for kind, options in routers.items()}
        if isinstance(data.get("data"), dict):
            section = dict(data["data"])
            for key in ("start", "end"):
                if isinstance(section.get(key), dt.date):  # YAML reads 2014-01-08 as a date
                    section[key] = section[key].isoformat()
            data["data"] = config_from_dict(DataSettings, section, converters={
                "tickers": lambda v: tuple(str(x) for x in v), "split": lambda v: _floats(v, "data.split")})
        if isinstance(data.get("experts"), dict):
            data["experts"] = config_from_dict(ExpertSettings, data["experts"], converters={
                "hidden": lambda v: tuple(int(h) for h in v)})
        return config_from_dict(cls, data, converters={
            "baselines": tuple, "costs_bps": lambda v: _floats(v, "costs_bps"),
            "seeds": lambda v: tuple(range(v)) if isinstance(v, int) else tuple(int(x) for x in v)})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> LLMoEConfig:
        config = cls.from_dict(read_yaml_mapping(path))
        if config.data.dir is not None and not Path(config.data.dir).is_absolute():
            # a relative data folder is relative to the config file, so a config runs from any directory
            config = _replace_data(config, dir=str((Path(path).parent / config.data.dir).resolve()))
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _floats(values, where: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a list of numbers, got {values!r}") from None


def _replace_data(config: LLMoEConfig, **changes) -> LLMoEConfig:
    from dataclasses import replace

    return replace(config, data=replace(config.data, **changes))


# ---------------------------------------------------------------- routing (Ray) with the parquet cache

def _route_chunk(router, windows: list[DayWindow]) -> list[RouteDecision]:
    import torch

    torch.set_num_threads(1)  # one core per Ray task
    return router.route(windows)


def route_windows(router, windows: list[DayWindow], chunk: int = 64, use_ray: bool = True) -> list[RouteDecision]:
    """``router.route`` over ``windows`` in chunks of ``chunk``, as Ray tasks when Ray is running."""
    if not use_ray:
        return router.route(windows)
    import ray

    if not ray.is_initialized():
        return router.route(windows)
    shared = ray.put(router)
    remote = ray.remote(num_cpus=getattr(router, "ray_num_cpus", 1))(_route_chunk)
    futures = [remote.remote(shared, windows[i:i + chunk]) for i in range(0, len(windows), chunk)]
    decisions = [d for part in ray.get(futures) for d in part]
    if len(decisions) != len(windows):
        raise RuntimeError(f"router {getattr(router, 'name', router)!r} returned {len(decisions)} decisions "
                           f"for {len(windows)} windows")
    return decisions


def purged_training_labels(data: TickerData, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, routing labels) whose label is decided inside the training part.

    The label of day t needs the close of day t + horizon: the last ``horizon`` training days would
    see validation prices, so they are left out of the routers' training.
    """
    train = data.split["train"]
    labels = routing_labels(data.close[:len(train)], horizon)
    keep = train[labels[: len(train)] >= 0]
    return keep, labels[keep]


def route_ticker(kind: str, options: dict, seed: int, data: TickerData, settings: DataSettings, cache: RouteCache,
                 chunk: int = 64, use_ray: bool = True, log: Callable[[str], None] = print) -> list[RouteDecision]:
    """Every window's decision by router ``kind`` (fitted on the ticker's training days), cached."""
    uses_seed = getattr(router_class(kind), "uses_seed", True)
    fingerprint = routing_fingerprint(kind, options, seed if uses_seed else None, settings.fingerprint_settings())
    dates = data.dates
    cached = cache.get(kind, data.ticker, fingerprint, dates)
    if cached is not None:
        return cached
    log(f"routing {data.ticker} with {kind} (seed {seed if uses_seed else '-'}): {len(dates)} days")
    router = make_router(kind, options, seed)
    train, labels = purged_training_labels(data, settings.label_horizon)
    router.fit([data.windows[i] for i in train], labels)
    decisions = route_windows(router, data.windows, chunk, use_ray)
    cache.put(kind, data.ticker, fingerprint, dates, decisions)
    return decisions


# ---------------------------------------------------------------- experts, baselines, backtests

@dataclass
class ModelRun:
    """One model's test-part outcome for one ticker and seed."""

    model: str
    probability_up: np.ndarray  # over the test days (1 / 0 for rules)
    signal: np.ndarray
    routes: list[RouteDecision] | None = None  # every window's, for routed models


def evaluate_models(data: TickerData, routes: dict[str, list[RouteDecision]], config: LLMoEConfig,
                    seed: int) -> list[ModelRun]:
    from rlexec.llmoe.experts import mixture_predict, train_classifier, train_experts
    from rlexec.llmoe.features import flat

    x = flat(data.features).astype(np.float64)
    train, validation, test = data.split["train"], data.split["validation"], data.split["test"]
    runs = []
    if "buy_and_hold" in config.baselines:
        runs.append(ModelRun("buy_and_hold", np.ones(len(test)), np.ones(len(test), dtype=np.int64)))
    for kind in ("mlp", "lstm"):
        if kind in config.baselines:
            model = train_classifier("ffn" if kind == "mlp" else "lstm", x[train], data.up[train], x[validation],
                                     data.up[validation], config.experts, seed * 1000 + (11 if kind == "mlp" else 13))
            p = model.predict(x[test])
            runs.append(ModelRun(kind, p, (p > 0.5).astype(np.int64)))
    for kind, decisions in routes.items():
        optimistic = np.array([d.route == "optimistic" for d in decisions])
        experts = train_experts(x, data.up, optimistic, train, validation, config.experts, seed)
        p = mixture_predict(experts, x[test], optimistic[test])
        runs.append(ModelRun(f"moe[{kind}]", p, (p > 0.5).astype(np.int64), decisions))
        if config.router_only:
            probability = np.array([d.probability for d in decisions])[test]
            runs.append(ModelRun(f"router[{kind}]", probability, optimistic[test].astype(np.int64), decisions))
    return runs


def backtest_rows(data: TickerData, runs: list[ModelRun], costs_bps: tuple[float, ...], seed: int) -> list[dict]:
    from rlexec.llmoe.backtest import all_in_all_out, metrics

    test = data.split["test"]
    # a price path with the test days' total returns: all the backtest needs are ratios of prices
    prices = np.concatenate([[1.0], np.cumprod(1.0 + data.next_return[test])])
    rows = []
    for run in runs:
        for cost in costs_bps:
            bt = all_in_all_out(run.signal, prices, cost)
            rows.append({"ticker": data.ticker, "model": run.model, "seed": seed, "cost_bps": cost,
                         **metrics(bt.equity), "accuracy": float(np.mean(run.signal == data.up[test])),
                         "exposure": float(np.mean(run.signal)), "trades": bt.trades})
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per (ticker, model, cost); NaN-aware (CR without drawdown)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["ticker"], row["model"], row["cost_bps"]), []).append(row)
    out = []
    for (ticker, model, cost), members in groups.items():
        entry = {"ticker": ticker, "model": model, "cost_bps": cost, "seeds": len(members)}
        for metric in (*METRICS, "accuracy", "exposure"):
            values = np.array([m[metric] for m in members], dtype=np.float64)
            finite = values[np.isfinite(values)]
            entry[f"{metric}_mean"] = float(finite.mean()) if len(finite) else float("nan")
            entry[f"{metric}_std"] = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
        out.append(entry)
    return out


# ---------------------------------------------------------------- the whole run

@dataclass
class PipelineResult:
    run_dir: Path
    rows: list[dict]
    summary: list[dict]
    files: dict[str, Path]


def run_pipeline(config: LLMoEConfig, out: str | os.PathLike = "runs", *, local: bool = False, route_only: bool = False,
                 use_ray: bool = True, log: Callable[[str], None] = print) -> PipelineResult:
    """Route (cached), train the experts and baselines, backtest on the test part; write the run folder."""
    import torch

    from rlexec.llmoe import report
    from rlexec.provenance import new_run_dir, run_record, write_json_atomic

    torch.set_num_threads(config.torch_threads)
    if use_ray:
        from rlexec.training.runner import init_ray

        log(f"Ray: {init_ray(local=local)}")
    cache = RouteCache(config.cache_dir)
    run_dir = new_run_dir(out, "llmoe", config.to_dict())
    write_json_atomic(run_record(config.to_dict(), config.seeds[0]), run_dir / "record.json")
    rows: list[dict] = []
    first_seed_runs: dict[str, tuple[TickerData, list[ModelRun]]] = {}
    for ticker in config.data.tickers:
        data = load_ticker(ticker, config.data.dir, text=config.data.text, start=config.data.start,
                           end=config.data.end, fractions=config.data.split, date_only=config.data.date_only)
        log(f"{ticker}: {len(data.windows)} decision days {data.dates[0]}..{data.dates[-1]}, test "
            f"{data.dates[data.split['test'][0]]}..{data.dates[-1]} ({len(data.split['test'])} days)")
        for seed in config.seeds:
            routes = {kind: route_ticker(kind, options, seed, data, config.data, cache, config.route_chunk, use_ray, log)
                      for kind, options in config.routers.items()}
            if route_only:
                continue
            runs = evaluate_models(data, routes, config, seed)
            rows.extend(backtest_rows(data, runs, config.costs_bps, seed))
            if seed == config.seeds[0]:
                first_seed_runs[ticker] = (data, runs)
    files: dict[str, Path] = {}
    summary = summarise(rows) if rows else []
    if rows:
        files = report.write_outputs(run_dir, rows, summary, first_seed_runs, config)
    return PipelineResult(run_dir, rows, summary, files)
