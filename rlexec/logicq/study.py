"""The Logic-Q execution study (spec 3, issue 12): tune the sketch's holes of frozen bar-env policies
on validation days by Bayesian optimisation, then compare on the test days.

Study YAML (``tune_configs/logicq_*.yaml``; every key but ``policies`` has a default)::

    name: logicq_exec
    policies: [runs/train/logicq_ppo_s1, runs/train/logicq_ppo_s2, runs/train/logicq_ppo_s3]
    aug_policy: runs/train/logicq_ppo_aug      # optional: (Aug), the base trained with the trend inputs
    split: {preset: us_equity_1min}            # which days host validation / test orders
    features: {window: 30, relative: true}     # g = 30 one-minute closes (spec 3.4)
    sketch: {order: [rapid_descend, steady_descend, steady_ascend, rapid_ascend]}
    act: expected                              # or sampled: how the adjusted policy trades
    validation: {num_orders: 500, seed: 0}     # the BO objective's orders (validation days)
    test: {num_orders: 1000, seed: 1}          # the comparison's orders (test days)
    bounds: {num_orders: 500, seed: 2}         # training-day orders whose features bound the thresholds
    search: {sampler: tpe, num_samples: 200, n_startup_trials: 20, max_concurrent: 2, cpus_per_trial: 1}
    seeds: [0, 1, 2, 3, 4]                     # one BO run per seed and variant (searcher and sampling seed)
    variants: [without_sketch, logicq, ensemble]

The first policy is the base; ``ensemble`` mixes all of them (3: 23 holes). Variants: ``without_sketch``
(one temperature, no trend logic), ``logicq`` (13 holes), ``ensemble`` (23). Every trial of a BO run
backtests one hole assignment on the same validation orders and reports their mean PA (spec 3.4's
objective for execution). Paths are relative to the working directory (run folders, as
``rlexec evaluate --policy`` takes them).

ARR convention (spec 3.5, rlexec's): the capital is turned over once a trading day, so
``ARR = PA (bp) x 1e-4 x 252``, in percent ``PA x 2.52``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlexec.configs import read_yaml_mapping
from rlexec.errors import ConfigError
from rlexec.logicq.features import TrendFeatureConfig
from rlexec.logicq.sketch import Hole, Sketch, ThresholdBounds

STUDY_KEYS = ("name", "policies", "aug_policy", "split", "features", "sketch", "act", "validation", "test",
              "bounds", "search", "seeds", "variants")
VARIANTS = ("without_sketch", "logicq", "ensemble")
SEARCH_KEYS = ("sampler", "num_samples", "n_startup_trials", "max_concurrent", "cpus_per_trial")
TRADING_DAYS = 252  # ARR: one turnover of the capital per trading day (rlexec's convention)
PA = "price_advantage_bps"


@dataclass(frozen=True, kw_only=True)
class OrderSet:
    part: str
    num_orders: int
    seed: int


@dataclass(frozen=True, kw_only=True)
class ExecutionStudy:
    name: str
    policies: tuple[str, ...]
    aug_policy: str | None = None
    split: dict[str, Any] = field(default_factory=lambda: {"preset": "us_equity_1min"})
    features: TrendFeatureConfig = field(default_factory=lambda: TrendFeatureConfig(window=30, relative=True))
    sketch: Sketch = field(default_factory=Sketch)
    act: str = "expected"
    validation: OrderSet = OrderSet(part="validation", num_orders=500, seed=0)
    test: OrderSet = OrderSet(part="test", num_orders=1000, seed=1)
    bounds: OrderSet = OrderSet(part="train", num_orders=500, seed=2)
    search: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    variants: tuple[str, ...] = VARIANTS
    source: str = "<study>"

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "ExecutionStudy":
        from rlexec.logicq.execution import ACT_MODES
        from rlexec.training.spec import run_name

        data = read_yaml_mapping(path)
        source = str(path)
        unknown = set(data) - set(STUDY_KEYS)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)}; known: {list(STUDY_KEYS)}")
        policies = data.get("policies")
        if not isinstance(policies, list) or not policies or not all(isinstance(p, str) for p in policies):
            raise ConfigError(f"{source}: policies must be a list of run folders (the first is the base)")
        features = data.get("features") or {}
        if not isinstance(features, dict) or set(features) - {"window", "relative"}:
            raise ConfigError(f"{source}: features must be a mapping of window and relative, got {features!r}")
        act = data.get("act", "expected")
        if act not in ACT_MODES:
            raise ConfigError(f"{source}: act must be one of {ACT_MODES} (a greedy argmax ignores temperature)")
        search = dict(data.get("search") or {})
        if set(search) - set(SEARCH_KEYS):
            raise ConfigError(f"{source}: search: unknown key(s) {sorted(set(search) - set(SEARCH_KEYS))}; "
                              f"known: {list(SEARCH_KEYS)}")
        variants = tuple(data.get("variants") or VARIANTS)
        for v in variants:
            if v not in VARIANTS:
                raise ConfigError(f"{source}: variants: {v!r} is not one of {VARIANTS}")
        if "ensemble" in variants and len(policies) < 2:
            raise ConfigError(f"{source}: the ensemble variant needs at least two policies")
        seeds = data.get("seeds", [0, 1, 2, 3, 4])
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise ConfigError(f"{source}: seeds must be a list of integers >= 0, got {seeds!r}")
        split = data.get("split", {"preset": "us_equity_1min"})
        split = {"preset": split} if isinstance(split, str) else split
        if not isinstance(split, dict):
            raise ConfigError(f"{source}: split must be a preset name or a DataSplit mapping, got {split!r}")
        try:
            feature_config = TrendFeatureConfig(**{"window": 30, "relative": True, **features})
        except ConfigError as err:
            raise ConfigError(f"{source}: features: {err}") from None
        try:
            sketch = Sketch.from_dict(data.get("sketch"))
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
        aug = data.get("aug_policy")
        return cls(
            name=run_name(data.get("name"), Path(path).stem, source),
            policies=tuple(str(Path(p).resolve()) for p in policies),
            aug_policy=str(Path(aug).resolve()) if aug else None,
            split=split, features=feature_config, sketch=sketch, act=act,
            validation=_order_set(data, "validation", cls.validation, source),
            test=_order_set(data, "test", cls.test, source),
            bounds=_order_set(data, "bounds", cls.bounds, source),
            search=search, seeds=tuple(seeds), variants=variants, source=source,
        )

    def settings(self) -> dict[str, Any]:
        return {"policies": list(self.policies), "aug_policy": self.aug_policy, "split": self.split,
                "features": asdict(self.features), "sketch": self.sketch.to_dict(), "act": self.act,
                "validation": asdict(self.validation), "bounds": asdict(self.bounds)}

    def variant_sketch(self, variant: str) -> Sketch:
        return Sketch(order=()) if variant == "without_sketch" else self.sketch

    def holes(self, variant: str, bounds: ThresholdBounds) -> list[Hole]:
        sketch = self.variant_sketch(variant)
        if variant == "ensemble":
            return sketch.ensemble_holes(len(self.policies), bounds)
        return sketch.temperature_holes(bounds)

    def experiment_name(self, variant: str, seed: int) -> str:
        return f"{self.name}_{variant}_s{seed}"


def _order_set(data: dict, key: str, default: OrderSet, source: str) -> OrderSet:
    section = data.get(key) or {}
    if not isinstance(section, dict) or set(section) - {"num_orders", "seed"}:
        raise ConfigError(f"{source}: {key} must be a mapping of num_orders and seed, got {section!r}")
    values = {"num_orders": section.get("num_orders", default.num_orders), "seed": section.get("seed", default.seed)}
    for name, least in (("num_orders", 1), ("seed", 0)):
        if not isinstance(values[name], int) or isinstance(values[name], bool) or values[name] < least:
            raise ConfigError(f"{source}: {key}.{name} must be an integer >= {least}, got {values[name]!r}")
    return OrderSet(part=default.part, **values)


# ---- what a process loads once ---------------------------------------------------------------------------
@dataclass
class Loaded:
    models: list[Any]
    aug_model: Any | None
    aug_features: TrendFeatureConfig | None
    execution: Any  # ExecutionConfig
    market: Any
    split: Any
    batches: dict[OrderSet, Any] = field(default_factory=dict)

    def portable(self, orders: OrderSet) -> "Loaded":
        """What scoring ``orders`` needs (models and that batch, no market): shipped to every Tune trial,
        so that a trial process neither parses the market nor loads checkpoints."""
        return Loaded(self.models, self.aug_model, self.aug_features, self.execution, None, None,
                      {orders: self.batch(orders)})

    def batch(self, orders: OrderSet):
        from rlexec.envs.engine import prepare_orders

        if orders not in self.batches:
            drawn = self.split.orders(self.market, orders.part, orders.num_orders, orders.seed,
                                      self.execution.horizon_minutes)
            self.batches[orders] = prepare_orders(self.market, drawn, self.execution)
        return self.batches[orders]


_LOADED: dict[str, Loaded] = {}


def load(study: ExecutionStudy) -> Loaded:
    """The study's policies and data, loaded once per process (a Tune actor runs many trials)."""
    from rlexec.data.splits import DataSplit
    from rlexec.logicq.execution import aug_config
    from rlexec.policies.trained import TrainedPolicy
    from rlexec.provenance import config_hash

    key = config_hash(study.settings())
    if key in _LOADED:
        return _LOADED[key]
    _one_thread()
    policies = [TrainedPolicy.load(p) for p in study.policies]
    for p in policies:
        if p.oracle or aug_config(p.env_config) is not None or p.env_config.get("continuous"):
            raise ConfigError(f"{study.source}: policy {p.source} must be a discrete student policy on the plain bar env")
    execution = policies[0].execution
    for p in policies[1:]:
        if p.execution != execution:
            raise ConfigError(f"{study.source}: policy {p.source} was trained with other execution settings "
                              f"than the base {policies[0].source}")
    aug_model, aug_features = None, None
    if study.aug_policy:
        aug = TrainedPolicy.load(study.aug_policy)
        aug_features = aug_config(aug.env_config)
        if aug_features is None or aug.execution != execution:
            raise ConfigError(f"{study.source}: aug_policy {aug.source} must be trained on "
                              "rlexec.logicq.execution:TrendAugmentedBarEnv with the base's execution settings")
        aug_model = aug.model
    split = DataSplit.from_dict(study.split)
    loaded = Loaded([p.model for p in policies], aug_model, aug_features, execution, split.market(), split)
    _LOADED[key] = loaded
    return loaded


def _one_thread() -> None:
    import torch

    # why: a backtest's small matrix products are fastest on one thread, and a Tune trial holds one CPU;
    # torch's default (all cores) made each one several times slower on a shared machine.
    torch.set_num_threads(1)


def threshold_bounds(study: ExecutionStudy) -> ThresholdBounds:
    """Spec 3.4 bounds from the features at every decision time of the training-day orders."""
    from rlexec.logicq.execution import decision_features

    loaded = load(study)
    return ThresholdBounds.from_features(decision_features(loaded.batch(study.bounds), loaded.execution, study.features))


# ---- acting and scoring ----------------------------------------------------------------------------------
def frozen_holes(sketch: Sketch | None = None):
    """Temperature 1 everywhere: the frozen policy itself."""
    sketch = sketch or Sketch(order=())
    return sketch.temperature_assignment({"temperature.oscillation": 1.0})


def acting(study: ExecutionStudy, variant: str, values: dict[str, float] | None, seed: int, name: str | None = None):
    """The acting object of a variant (``base``, ``aug`` or one of :data:`VARIANTS`) with hole ``values``."""
    from rlexec.logicq.execution import AdjustedExecution

    loaded = load(study)
    common = dict(features=study.features, execution=loaded.execution, act=study.act, seed=seed)
    if variant == "base":
        return AdjustedExecution(name or "base", loaded.models[:1], frozen_holes(), sketch=Sketch(order=()), **common)
    if variant == "aug":
        if loaded.aug_model is None:
            raise ConfigError(f"{study.source}: no aug_policy given")
        return AdjustedExecution(name or "aug", [loaded.aug_model], frozen_holes(), sketch=Sketch(order=()),
                                 augment=loaded.aug_features, **common)
    sketch = study.variant_sketch(variant)
    if variant == "ensemble":
        holes = sketch.ensemble_assignment(values, len(loaded.models))
        return AdjustedExecution(name or variant, loaded.models, holes, sketch=sketch, **common)
    return AdjustedExecution(name or variant, loaded.models[:1], sketch.temperature_assignment(values), sketch=sketch,
                             **common)


def backtest(study: ExecutionStudy, orders: OrderSet, acting_object) -> dict[str, np.ndarray]:
    """Per-order metrics of ``acting_object`` on ``orders`` (the one evaluation loop)."""
    from rlexec.evaluation.episodes import BarEpisodes
    from rlexec.evaluation.runner import run_episodes

    loaded = load(study)
    result, _ = run_episodes(BarEpisodes(loaded.batch(orders), loaded.execution), acting_object)
    return result.metrics


class ValidationBacktest:
    """The BO objective: mean PA of one hole assignment on the study's validation orders.

    Picklable: ``payload`` (:meth:`Loaded.portable`) carries the models and the prepared validation
    orders to the trial processes; without it they load there (once per process, :func:`load`).
    """

    def __init__(self, study: ExecutionStudy, variant: str, seed: int, payload: Loaded | None = None):
        self.study, self.variant, self.seed, self.payload = study, variant, seed, payload

    def describe(self) -> dict[str, Any]:
        return {"study": self.study.settings(), "variant": self.variant, "seed": self.seed, "metric": "mean PA"}

    def __call__(self, values: dict[str, float]) -> dict[str, float]:
        from rlexec.evaluation.metrics import gain_loss_ratio, positive_rate
        from rlexec.provenance import config_hash

        key = config_hash(self.study.settings())
        if self.payload is not None and key not in _LOADED:
            _one_thread()
            _LOADED[key] = self.payload

        pa = backtest(self.study, self.study.validation, acting(self.study, self.variant, values, self.seed))[PA]
        return {"objective": float(np.nanmean(pa)), "glr": gain_loss_ratio(pa), "pos": positive_rate(pa)}


# ---- the BO runs -----------------------------------------------------------------------------------------
def search_settings(study: ExecutionStudy, variant: str, seed: int, bounds: ThresholdBounds,
                    num_samples: int | None = None):
    from rlexec.logicq.search import SearchSettings

    options = dict(study.search)
    if num_samples is not None:
        options["num_samples"] = num_samples
    return SearchSettings(name=study.experiment_name(variant, seed), holes=tuple(study.holes(variant, bounds)),
                          metric="validation_pa_bps", seed=seed, source=study.source, **options)


def tune_study(study: ExecutionStudy, *, variants: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
               num_samples: int | None = None, out: str | os.PathLike = "runs", restart: bool = False,
               local: bool = False, console=None) -> list[dict[str, Any]]:
    """One BO run per (variant, seed); each resumes if it was interrupted. Returns one summary per run."""
    from rlexec.logicq.search import run_search

    bounds = threshold_bounds(study)
    payload = load(study).portable(study.validation)
    summaries = []
    for seed in seeds or study.seeds:
        for variant in variants or study.variants:
            settings = search_settings(study, variant, seed, bounds, num_samples)
            if console is not None:
                console.print(f"tuning {len(settings.holes)} holes of [bold]{variant}[/bold], seed {seed}: "
                              f"{settings.num_samples} trials ({settings.sampler})")
            result = run_search(settings, ValidationBacktest(study, variant, seed, payload), out=out, restart=restart,
                                local=local, record={"bounds": bounds.to_dict()})
            summaries.append({"variant": variant, "seed": seed, "holes": len(settings.holes),
                              "trials": len(result.trials), "best_validation_pa_bps": result.best_score,
                              "first_trial_pa_bps": float(result.trials[settings.metric].iloc[0]),
                              "experiment": str(result.experiment)})
            if console is not None:
                console.print(f"  best validation PA {result.best_score:.3f} bp over {len(result.trials)} trials "
                              f"-> {result.best_file}")
    return summaries


# ---- the comparison on the test days ---------------------------------------------------------------------
METHOD_LABELS = {"base": "base policy", "without_sketch": "Logic-Q w/o sketch", "logicq": "Logic-Q (13 holes)",
                 "ensemble": "Logic-Q ensemble (23 holes)", "aug": "base (Aug)"}


def arr_percent(pa_bps: float) -> float:
    """ARR in percent under rlexec's convention (module docstring): PA x 1e-4 x 252 x 100."""
    return pa_bps * 1e-4 * TRADING_DAYS * 100.0


def evaluate_study(study: ExecutionStudy, *, out: str | os.PathLike = "runs", seeds: Sequence[int] | None = None
                   ) -> dict[str, Any]:
    """Every method on the test orders for every seed, with the tuned holes of that seed's BO runs.

    Returns ``{"methods": {method: {"per_seed": [...], "pa": [...], ...}}, "paired": ...}``; per seed
    the per-order PA of each method is paired with the base's (the same orders).
    """
    from rlexec.evaluation.metrics import gain_loss_ratio, positive_rate
    from rlexec.evaluation.stats import paired_difference
    from rlexec.logicq.search import read_best

    seeds = list(seeds or study.seeds)
    storage = Path(out).resolve() / "tune"
    methods = ["base"] + list(study.variants) + (["aug"] if study.aug_policy else [])
    per_order: dict[str, dict[int, np.ndarray]] = {m: {} for m in methods}
    trend_shares: dict[str, list[list[float]]] = {m: [] for m in methods}
    for seed in seeds:
        for method in methods:
            values = None
            if method in VARIANTS:
                best = storage / study.experiment_name(method, seed)
                if not (best / "best_holes.json").exists():
                    raise ConfigError(f"{study.source}: no tuned holes for {method}, seed {seed} ({best}); "
                                      f"run rlexec logicq {study.source} first")
                values = read_best(best)
            actor = acting(study, method, values, seed)
            per_order[method][seed] = backtest(study, study.test, actor)[PA]
            trends = np.concatenate(actor.trend_log)
            trend_shares[method].append(np.bincount(trends, minlength=5).astype(float).tolist())
    summary: dict[str, Any] = {"seeds": seeds, "act": study.act, "test_orders": study.test.num_orders, "methods": {},
                               "paired": {}}
    for method in methods:
        rows = [{"seed": s, "pa": float(np.nanmean(pa)), "glr": gain_loss_ratio(pa), "pos": positive_rate(pa),
                 "arr": arr_percent(float(np.nanmean(pa)))} for s, pa in per_order[method].items()]
        shares = np.asarray(trend_shares[method]).sum(axis=0)
        summary["methods"][method] = {"label": METHOD_LABELS[method], "per_seed": rows,
                                      "trend_share": (shares / shares.sum()).tolist()}
    pairs = [(m, "base") for m in methods if m != "base"]
    if "logicq" in methods and "without_sketch" in methods:
        pairs.append(("logicq", "without_sketch"))
    for a, b in pairs:
        diffs = [paired_difference(per_order[a][s], per_order[b][s]) for s in seeds]
        summary["paired"][f"{a} - {b}"] = [{"seed": s, "mean": d.mean, "low": d.low, "high": d.high, "n": d.n}
                                           for s, d in zip(seeds, diffs)]
    return summary


def _spread(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


def results_markdown(summary: dict[str, Any]) -> str:
    """The comparison table (mean ± std over seeds) and the paired differences, as Markdown."""
    lines = [f"Test orders: {summary['test_orders']}, actions: {summary['act']}, seeds: {summary['seeds']} "
             "(mean ± std over seeds).", "",
             "| method | PA (bp) | GLR | POS | ARR (%) |", "|---|---|---|---|---|"]
    for method in summary["methods"].values():
        cells = []
        for key, digits in (("pa", 3), ("glr", 3), ("pos", 3), ("arr", 2)):
            mean, sd = _spread([r[key] for r in method["per_seed"]])
            cells.append(f"{mean:.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd) else f"{mean:.{digits}f}")
        lines.append(f"| {method['label']} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences in PA on the same test orders (bp): mean ± std over seeds of the per-seed "
              "mean difference; 'CI>0' counts seeds whose 95% interval lies above 0, 'CI<0' below.", "",
              "| difference | mean ± std (bp) | CI>0 | CI<0 |", "|---|---|---|---|"]
    for name, rows in summary["paired"].items():
        mean, sd = _spread([r["mean"] for r in rows])
        above = sum(r["low"] > 0 for r in rows)
        below = sum(r["high"] < 0 for r in rows)
        lines.append(f"| {name} | {mean:.3f} ± {sd:.3f} | {above}/{len(rows)} | {below}/{len(rows)} |")
    lines += ["", "Share of decisions per trend (steady descend, steady ascend, rapid descend, rapid ascend, "
              "oscillation):", ""]
    for method in summary["methods"].values():
        lines.append(f"- {method['label']}: " + ", ".join(f"{s:.2f}" for s in method["trend_share"]))
    return "\n".join(lines) + "\n"


# ---- the price with its trend label (the seed's Figure 5 analogue) ---------------------------------------
TREND_COLORS = ("#d62728", "#2ca02c", "#8c1a1a", "#1f6f1f", "#7f7f7f")


def plot_trend_labels(study: ExecutionStudy, values: dict[str, float], path: str | os.PathLike,
                      symbol: str | None = None, day: str | None = None) -> Path:
    """One test session's minute closes with the sketch's trend at every minute coloured underneath.

    Each minute's label uses the window of closes up to it (the previous session's last minutes fill
    the first windows), with the tuned thresholds ``values``.
    """
    import datetime as dt

    from rlexec.data.panel import CLOSE
    from rlexec.evaluation.plots import _new_figure, save_figure
    from rlexec.logicq.features import feature_series
    from rlexec.logicq.sketch import Trend

    loaded = load(study)
    batch = loaded.batch(study.test)
    order = batch.orders[0]
    symbol, date = symbol or order.symbol, dt.date.fromisoformat(day) if day else order.date
    market = loaded.market
    prior = market.prior_rows(symbol, date, 1)
    today = market.bars[market.row(symbol, date), :, CLOSE]
    history = market.bars[prior[-1], -study.features.window:, CLOSE] if prior else today[:0]
    closes = np.concatenate([history, today])
    thresholds = study.sketch.temperature_assignment(values).thresholds
    labels = study.sketch.classify(feature_series(closes, study.features, start=len(history)), thresholds)
    fig = _new_figure(9.0, 4.2)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    minutes = np.arange(len(today))
    top.plot(minutes, today, color="black", lw=1.0)
    top.set_ylabel(f"{symbol} close (USD)")
    top.set_title(f"{symbol} {date}: minute closes and the Logic-Q trend label (g = {study.features.window} min)")
    for trend in Trend:
        hit = labels == int(trend)
        bottom.bar(minutes[hit], np.ones(hit.sum()), width=1.0, color=TREND_COLORS[trend],
                   label=f"{trend.key.replace('_', ' ')} ({hit.mean():.0%})")
    bottom.set_yticks([])
    bottom.set_xlabel("minute of the session (from 09:30)")
    bottom.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6), ncol=5, fontsize=7, frameon=False)
    return save_figure(fig, path)
