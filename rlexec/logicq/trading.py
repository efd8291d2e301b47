"""Logic-Q for daily stock trading (spec 3.3, the paper's second task): an ensemble of frozen sub-policies.

Three sub-policies (PPO, SAC, APPO, trained by ``rlexec train configs/trading_*.yaml`` on the
portfolio env's train part) each propose target weights over cash + N stocks for every trading day.
The sketch (:mod:`rlexec.logicq.sketch`) labels each day with one market trend from the trend
features (:mod:`rlexec.logicq.features`, window G = 20 days, spec 3.4) of the **equal-weight index of
the universe** (:meth:`~rlexec.data.daily.DailyPanel.equal_weight_index`, closes up to the decision
day only), and the day's target is the mix ``sum_m w_{tau,m} a^(m)`` with the trend's 3 weights put on
the simplex (:func:`rlexec.logicq.adjust.simplex`, :func:`~rlexec.logicq.adjust.mix`). A convex mix of
points of the simplex is on the simplex: the ensemble never shorts or borrows either.

Holes: 8 thresholds + 5 x 3 weights = 23 (``sketch.order: []``, "w/o sketch": one weight vector, 3
holes), searched by the shared BO driver (:func:`rlexec.logicq.search.run_search`) with the Sharpe
ratio of the validation part as the objective; the best holes are then backtested once on the test
part, next to buy-and-hold and each sub-policy alone.

Sub-policies act deterministically: PPO / APPO take their Gaussian's mean, SAC its squashed mean
``tanh(mean)`` (RLlib's ``to_deterministic`` of a squashed Gaussian returns the unsquashed mean, so it
is not used). Since the env's observation holds no portfolio state, each sub-policy's target on a day
depends on the market only and is computed once per part: a BO trial re-runs only the mixing and the
accounting (:meth:`~rlexec.envs.portfolio_env.PortfolioEnv.step_weights`).

``relative`` trend features (each window divided by its first close) are rlexec's choice for this
task (configurable): the index doubles over 2013-2018, and the spec's price-unit volatility would
make one threshold mean different things in different years.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlexec.configs import read_yaml_mapping
from rlexec.envs.portfolio_env import PortfolioEnv, buy_and_hold, run_weights
from rlexec.errors import ConfigError
from rlexec.evaluation.portfolio_metrics import METRICS, portfolio_metrics
from rlexec.logicq.adjust import mix, simplex
from rlexec.logicq.features import PastCloses, TrendFeatureConfig, TrendFeatures
from rlexec.logicq.sketch import Sketch, ThresholdBounds, Trend

SEARCH_KEYS = ("num_samples", "n_startup_trials", "sampler", "seed", "max_concurrent", "cpus_per_trial")
# the w/o-sketch ablation has 3 holes: it may take fewer trials (search.wo_sketch_num_samples)
WO_SKETCH_SAMPLES = "wo_sketch_num_samples"
VARIANTS = {"logicq": None, "wo_sketch": ()}  # sketch order None: the spec's; (): no conditional


@dataclass(frozen=True, kw_only=True)
class TradingSpec:
    """``tune_configs/logicq_trading.yaml``: see docs/logicq_trading.md."""

    name: str = "logicq_trading"
    sub_policies: dict[str, str] = field(default_factory=dict)  # label -> run folder or checkpoint
    env_config: dict[str, Any] = field(default_factory=dict)  # PortfolioEnv keys; ``part`` is set here
    window: int = 20  # G, spec 3.4
    relative: bool = True  # rlexec's choice, see the module docstring
    order: tuple[str, ...] | None = None  # the sketch's conditional order; None: spec 3.2's
    search: dict[str, Any] = field(default_factory=dict)
    source: str = "<spec>"

    def __post_init__(self) -> None:
        if len(self.sub_policies) < 1:
            raise ConfigError(f"{self.source}: sub_policies must name at least one trained run")
        if "part" in self.env_config:
            raise ConfigError(f"{self.source}: env_config.part is set by Logic-Q (validation for the search, test "
                              "for the results); remove it")
        unknown = set(self.search) - {*SEARCH_KEYS, WO_SKETCH_SAMPLES}
        if unknown:
            raise ConfigError(f"{self.source}: search: unknown key(s) {sorted(unknown)}; known: "
                              f"{[*SEARCH_KEYS, WO_SKETCH_SAMPLES]}")
        TrendFeatureConfig(window=self.window, relative=self.relative)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TradingSpec:
        data = read_yaml_mapping(path)
        known = {"name", "sub_policies", "env_config", "window", "relative", "sketch", "search", "task"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        sketch = dict(data.pop("sketch", None) or {})
        data.pop("task", None)
        # relative run folders are read from the directory the command runs in, as rlexec train's paths
        policies = {str(k): str(Path(v).resolve()) for k, v in dict(data.pop("sub_policies", None) or {}).items()}
        order = sketch.get("order")
        return cls(**data, sub_policies=policies, order=tuple(order) if order is not None else None,
                   source=str(path))

    def feature_config(self) -> TrendFeatureConfig:
        return TrendFeatureConfig(window=self.window, relative=self.relative)

    def sketch(self, variant: str = "logicq") -> Sketch:
        order = VARIANTS[variant] if VARIANTS[variant] is not None else self.order
        return Sketch.from_dict({} if order is None else {"order": list(order)})

    def search_settings(self, variant: str, holes: tuple) -> dict[str, Any]:
        settings = {k: v for k, v in self.search.items() if k != WO_SKETCH_SAMPLES}
        if variant == "wo_sketch" and WO_SKETCH_SAMPLES in self.search:
            settings["num_samples"] = self.search[WO_SKETCH_SAMPLES]
        return {"name": f"{self.name}_{variant}", "holes": holes, "source": self.source, **settings}

    def env(self, part: str) -> PortfolioEnv:
        return PortfolioEnv({**self.env_config, "part": part, "episode_days": None})


# -- what a part of the data gives the ensemble -------------------------------------------------------------------------
def decision_days(env: PortfolioEnv) -> np.ndarray:
    """Date indices at whose close the env rebalances in a whole-part episode."""
    return np.arange(env.first, env.last)


def index_features(env: PortfolioEnv, days: np.ndarray, config: TrendFeatureConfig) -> TrendFeatures:
    """Trend features of the universe's equal-weight index at each decision day, from closes up to it."""
    index = env.panel.equal_weight_index()
    return TrendFeatures.concatenate([config(PastCloses(index, int(t))) for t in days])


def deterministic_actions(module: Any, observations: np.ndarray) -> np.ndarray:
    """(n, N+1) the frozen module's action without exploration noise (see the module docstring)."""
    import torch
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian

    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: torch.as_tensor(observations, dtype=torch.float32)})
        dist = module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        if isinstance(dist, TorchSquashedGaussian):
            # the env's action space is [-1, 1]: RLlib's squash maps onto it with tanh alone
            return torch.tanh(dist.loc).numpy().astype(np.float64)
        return dist.to_deterministic().sample().numpy().astype(np.float64)


def sub_policy_targets(module: Any, env: PortfolioEnv, days: np.ndarray) -> np.ndarray:
    """(n, N+1) target weights of one frozen sub-policy on each decision day."""
    observations = np.stack([env.observation_at(int(t)) for t in days])
    return np.stack([env.target_weights(a) for a in deterministic_actions(module, observations)])


def backtest(env: PortfolioEnv, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dates, values) of a whole-part episode that rebalances to ``targets[k]`` on its k-th day."""
    return run_weights(env, lambda step, observation, weights: targets[step])


@dataclass
class PartData:
    """One part's inputs to the ensemble: sub-policy targets (k, n, N+1) and the index's trend features."""

    part: str
    days: np.ndarray
    components: np.ndarray
    features: TrendFeatures


def part_data(spec: TradingSpec, modules: list[Any], part: str) -> PartData:
    env = spec.env(part)
    days = decision_days(env)
    components = np.stack([sub_policy_targets(m, env, days) for m in modules])
    return PartData(part, days, components, index_features(env, days, spec.feature_config()))


class EnsembleObjective:
    """Validation Sharpe of the ensemble under one hole assignment (the BO objective). Picklable: it holds
    the precomputed targets and features and rebuilds the env (cached data) in the trial's process."""

    def __init__(self, spec: TradingSpec, data: PartData, sketch: Sketch):
        self.env_config = {**spec.env_config, "part": data.part, "episode_days": None}
        self.data, self.sketch = data, sketch
        self.k = data.components.shape[0]

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.data.components.tobytes())
        for name in ("vol", "dr", "gr"):
            digest.update(np.asarray(getattr(self.data.features, name)).tobytes())
        return {"task": "logicq_trading", "part": self.data.part, "env_config": self.env_config,
                "sketch": self.sketch.to_dict(), "inputs_sha256": digest.hexdigest()}

    def targets(self, holes: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(trend of each day, mixed targets (n, N+1)) under ``holes``."""
        assignment = self.sketch.ensemble_assignment(holes, self.k)
        trends = self.sketch.classify(self.data.features, assignment.thresholds)
        weights = simplex(assignment.weights.stack())[trends]
        return trends, mix(self.data.components, weights)

    def __call__(self, holes: dict[str, float]) -> dict[str, float]:
        _, targets = self.targets(holes)
        _, values = backtest(PortfolioEnv(self.env_config), targets)
        metrics = portfolio_metrics(values)
        return {"objective": metrics["SR"], **{f"validation_{k}": v for k, v in metrics.items()}}


# -- the experiment -----------------------------------------------------------------------------------------------------
def load_sub_policies(spec: TradingSpec) -> list[Any]:
    from rlexec.policies.checkpoints import load_module

    return [load_module(path) for path in spec.sub_policies.values()]


def run(spec: TradingSpec, *, out: str | os.PathLike = "runs", local: bool = False, restart: bool = False) -> Path:
    """Search both variants on validation, backtest everything on test; returns the results folder
    ``<out>/logicq/<name>/`` (results.json, results.md, equity_test.png, equity_validation.png)."""
    from rlexec.logicq.search import SearchSettings, run_search

    modules = load_sub_policies(spec)
    train, validation, test = (part_data(spec, modules, part) for part in ("train", "validation", "test"))
    bounds = ThresholdBounds.from_features(train.features)
    results: dict[str, Any] = {"spec": {"name": spec.name, "sub_policies": spec.sub_policies, "window": spec.window,
                                        "relative": spec.relative, "env_config": spec.env_config},
                               "threshold_bounds": bounds.to_dict(), "variants": {}}
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"validation": {}, "test": {}}
    trends_test = None
    for variant in VARIANTS:
        sketch = spec.sketch(variant)
        holes = tuple(sketch.ensemble_holes(len(modules), bounds))
        settings = SearchSettings(**spec.search_settings(variant, holes))
        found = run_search(settings, EnsembleObjective(spec, validation, sketch), out=out, local=local,
                           restart=restart, record={"task": "logicq_trading", "variant": variant})
        label = "Logic-Q" if variant == "logicq" else "Logic-Q w/o sketch"
        for data in (validation, test):
            trends, targets = EnsembleObjective(spec, data, sketch).targets(found.best_holes)
            curves[data.part][label] = backtest(spec.env(data.part), targets)
            if variant == "logicq" and data is test:
                trends_test = trends
        results["variants"][variant] = {"holes": len(holes), "best_validation_sharpe": found.best_score,
                                        "best_holes": found.best_holes, "experiment": str(found.experiment),
                                        "trials": len(found.trials)}
    for data in (validation, test):
        env = spec.env(data.part)
        curves[data.part]["buy-and-hold (equal weight)"] = buy_and_hold(env)
        for label, component in zip(spec.sub_policies, data.components):
            curves[data.part][label] = backtest(env, component)
    folder = Path(out) / "logicq" / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    for part, series in curves.items():
        results[part] = {label: portfolio_metrics(values) for label, (_, values) in series.items()}
        plot_equity(series, folder / f"equity_{part}.png", title=f"{spec.name}: {part} part",
                    trends=trends_test if part == "test" else None)
    results["test_trend_days"] = {t.key: int((trends_test == int(t)).sum()) for t in Trend}
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=float))
    (folder / "results.md").write_text(results_table(results))
    return folder


def results_table(results: dict[str, Any]) -> str:
    """Markdown tables of AR, CR, AV, MD (%) and SR per method, test part first."""
    lines = []
    for part in ("test", "validation"):
        lines += [f"**{part}**", "", "| method | AR (%) | CR (%) | AV (%) | MD (%) | SR |", "|---|---|---|---|---|---|"]
        for label, m in results[part].items():
            lines.append(f"| {label} | " + " | ".join(f"{100 * m[k]:.1f}" for k in METRICS[:4]) + f" | {m['SR']:.3f} |")
        lines.append("")
    return "\n".join(lines)


TREND_COLOURS = {Trend.STEADY_DESCEND: "#f4a582", Trend.STEADY_ASCEND: "#92c5de", Trend.RAPID_DESCEND: "#ca0020",
                 Trend.RAPID_ASCEND: "#0571b0", Trend.OSCILLATION: "#d9d9d9"}


def plot_equity(series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *, title: str,
                trends: np.ndarray | None = None) -> Path:
    """Portfolio value of each method (start = 1); with ``trends``, the sketch's label of each decision day
    as a coloured strip underneath."""
    from rlexec.evaluation.plots import _new_figure, save_figure

    fig = _new_figure(9.0, 5.0)
    grid = fig.add_gridspec(2, 1, height_ratios=(6, 1), hspace=0.08)
    ax = fig.add_subplot(grid[0])
    for label, (dates, values) in series.items():
        ax.plot(dates, values, label=label, linewidth=1.8 if label.startswith("Logic-Q") else 1.0)
    ax.set_ylabel("portfolio value (start = 1)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    if trends is not None:
        strip = fig.add_subplot(grid[1], sharex=ax)
        dates = next(iter(series.values()))[0]
        widths = np.diff(dates).astype(float)  # each decision day's label lasts until the next date
        for trend in Trend:
            hit = trends == int(trend)
            if hit.any():
                strip.bar(dates[:-1][hit], np.ones(hit.sum()), width=widths[hit], align="edge",
                          color=TREND_COLOURS[trend], label=trend.key.replace("_", " "))
        strip.set_yticks([])
        strip.set_ylabel("trend", fontsize=8)
        strip.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.4))
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m rlexec.logicq.trading tune_configs/logicq_trading.yaml``: search, backtest, print the tables."""
    import argparse

    from rlexec.errors import RlexecError

    parser = argparse.ArgumentParser(prog="python -m rlexec.logicq.trading", description=run.__doc__)
    parser.add_argument("config", help="a Logic-Q trading YAML (tune_configs/logicq_trading.yaml)")
    parser.add_argument("--out", default="runs", help="base folder: <out>/tune/<name>_<variant>, <out>/logicq/<name>")
    parser.add_argument("--local", action="store_true", help="a small private Ray (2 CPUs)")
    parser.add_argument("--restart", action="store_true", help="discard earlier searches of the same names")
    args = parser.parse_args(argv)
    try:
        folder = run(TradingSpec.from_yaml(args.config), out=args.out, local=args.local, restart=args.restart)
    except RlexecError as err:
        print(f"error: {err}")
        return 2
    print((folder / "results.md").read_text())
    print(f"results: {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
