"""Plots of an evaluation (cumulative fill-rate curves, the distribution of price advantage) and of
training runs (mean episode return per iteration; validation PA per iteration, the learning curves).

Each ``*_figure`` builds a picture that names the data it shows and says how to read it; each
``plot_*`` writes one as a PNG. Figures are drawn on their own Agg canvas (no pyplot): no global
state, safe in worker processes and headless on clusters and in CI.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rlexec.errors import ConfigError
from rlexec.evaluation.runner import Evaluation
from rlexec.provenance import write_atomic

COLORS = {"twap": "#4C72B0", "vwap": "#DD8452", "is": "#55A868", "pov": "#C44E52"}
# Trained policies and other runs: tab10's colours that are not near a broker's.
OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
# Dash patterns by draw order: where two series coincide, the later one's gaps show the one below.
LINESTYLES = ("-", (0, (7, 2)), (0, (7, 2, 1.5, 2)), (0, (1.5, 1.5)), (0, (12, 2, 2, 2, 2, 2)), (0, (4, 4)))
WHISKER_IQR = 1.5  # the box plots' whisker reach, in interquartile ranges (Tukey's rule)
BAND_ALPHA = 0.25  # interquartile bands: dark enough to see against white, light enough to see through
DPI = 120


def series_styles(names: Sequence[str]) -> dict[str, dict]:
    """Colour, dash pattern and width of each series, in draw order: the first is widest, so a later
    series drawn exactly over it leaves its edges visible."""
    styles, others = {}, 0
    for i, name in enumerate(names):
        if name in COLORS:
            color = COLORS[name]
        else:
            color, others = OTHER_COLORS[others % len(OTHER_COLORS)], others + 1
        styles[name] = {"color": color, "ls": LINESTYLES[i % len(LINESTYLES)], "lw": max(1.2, 3.4 - 0.55 * i)}
    return styles


def _wrap(text: str, fig: Figure, fontsize: float) -> str:
    """Break ``text`` to the figure's width (about 0.6 em a character), keeping its own line breaks."""
    width = max(20, int(fig.get_figwidth() * 72 / (fontsize * 0.6)))
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())


def _titles(fig: Figure, title: str, data_label: str, caption: str) -> None:
    """The title and the data on top, how to read the picture below; the layout keeps both inside."""
    heading = title + (f"\n{data_label}" if data_label else "")
    fig.suptitle(_wrap(heading, fig, 11), fontsize=11)
    if caption:
        fig.supxlabel(_wrap(caption, fig, 8), fontsize=8, color="0.3")


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    data = figure_png(fig)
    return write_atomic(Path(path), lambda tmp: tmp.write_bytes(data))


# ---- fill curves -------------------------------------------------------------------------------------
def fill_curves_figure(evaluation: Evaluation, data_label: str = "") -> Figure:
    """Mean cumulative fill rate per strategy over the horizon, with the interquartile band of orders."""
    fig = _new_figure(8, 5.6)
    ax = fig.subplots()
    minutes = np.concatenate([[0.0], evaluation.curve_minutes])  # nothing is filled at the start
    styles = series_styles([r.name for r in evaluation.results])
    for i, r in enumerate(evaluation.results):
        style = styles[r.name]
        curve = np.concatenate([np.zeros((r.fill_curve.shape[0], 1)), r.fill_curve], axis=1) * 100
        q25, q75 = np.percentile(curve, [25, 75], axis=0)
        ax.fill_between(minutes, q25, q75, color=style["color"], alpha=BAND_ALPHA, lw=0, zorder=1)
        for edge in (q25, q75):
            ax.plot(minutes, edge, color=style["color"], lw=0.6, alpha=0.8, zorder=1.5)
        ax.plot(minutes, curve.mean(axis=0), color=style["color"], ls=style["ls"], lw=style["lw"],
                label=r.name.upper(), zorder=2 + i)
    if len(evaluation.decision_minutes) <= 40:  # more lines than that is noise, not information
        for boundary in evaluation.decision_minutes[1:]:
            ax.axvline(boundary, color="0.85", lw=0.8, zorder=0)
    ax.set_xlim(0, float(minutes[-1]))
    ax.set_ylim(0, 102)
    ax.set_xlabel("minutes since order start")
    ax.set_ylabel("filled, % of parent order")
    ax.legend(loc="lower right", frameon=True, framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)
    unit = "episodes" if "episode" in evaluation.orders.column_names else "orders"
    _titles(fig, f"Cumulative fill rate ({len(evaluation)} {unit})", data_label,
            f"Lines: mean over the {unit} · shaded bands: 25th to 75th percentile of the {unit} · "
            "grey verticals: decisions")
    return fig


def plot_fill_curves(evaluation: Evaluation, path: str | os.PathLike, data_label: str = "") -> Path:
    return save_figure(fill_curves_figure(evaluation, data_label), path)


# ---- price advantage ---------------------------------------------------------------------------------
def _padded(values: Sequence[float], share: float = 0.08, least: float = 0.5) -> tuple[float, float]:
    lo, hi = float(min(values)), float(max(values))
    pad = max((hi - lo) * share, least * 0.5 if hi == lo else 0.0)
    return lo - pad, hi + pad


def pa_distribution_figure(evaluation: Evaluation, data_label: str = "") -> Figure:
    """Per-order price advantage (bp), one panel per strategy on its own scale: box plot, the orders as
    dots, and the mean with its 95% confidence interval."""
    n = len(evaluation.results)
    fig = _new_figure(max(8.0, 2.3 * n), 5.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    rng = np.random.default_rng(0)  # jitter only; fixed so the picture is reproducible
    styles = series_styles([r.name for r in evaluation.results])
    for ax, r in zip(axes, evaluation.results):
        pa = r.metrics["price_advantage_bps"]
        pa = pa[np.isfinite(pa)]
        s = r.summary.price_advantage_bps
        ax.axhline(0, color="0.5", lw=0.8, ls="--", zorder=0)
        ax.set_title(f"{r.name.upper()}\nmean {s.mean:+.2f} bp" if pa.size else r.name.upper(), fontsize=10)
        ax.set_xticks([])
        ax.set_xlim(-0.5, 0.8)
        ax.grid(axis="y", alpha=0.3)
        if not pa.size:
            ax.text(0.5, 0.5, "no order filled", transform=ax.transAxes, ha="center", va="center")
            continue
        ax.boxplot([pa], positions=[0], whis=WHISKER_IQR, showfliers=False, widths=0.5,
                   medianprops={"color": "black"}, zorder=2)
        ax.set_xticks([])  # the panel's title names the strategy
        few = pa.size < 50  # a handful of dots must stand out; hundreds must not blot out the box
        ax.scatter(rng.uniform(-0.18, 0.18, pa.size), pa, s=18 if few else 9, alpha=0.85 if few else 0.45,
                   color=styles[r.name]["color"], lw=0, zorder=3)
        half = 1.96 * s.se if np.isfinite(s.se) else 0.0
        ax.errorbar(0.5, s.mean, yerr=half, fmt="D", color="black", ms=5, capsize=4, zorder=4)
        ax.set_ylim(*_padded([pa.min(), pa.max(), 0.0, s.mean - half, s.mean + half]))
    axes[0].set_ylabel("PA vs horizon average price, bp (+ = better)")
    unit = "episodes" if "episode" in evaluation.orders.column_names else "orders"
    _titles(fig, f"Price advantage per order ({len(evaluation)} {unit})", data_label,
            f"Each panel has its own scale (dashed line: 0). Box: quartiles, black line: median; whiskers: "
            f"the furthest order within {WHISKER_IQR:g} × IQR of the box; dots: every order, those beyond the "
            "whiskers too; diamond: mean ± 95% CI (1.96 standard errors).")
    return fig


def plot_pa_distribution(evaluation: Evaluation, path: str | os.PathLike, data_label: str = "") -> Path:
    return save_figure(pa_distribution_figure(evaluation, data_label), path)


# ---- training ----------------------------------------------------------------------------------------
def training_curve_figure(progress: Sequence[dict], data_label: str = "", reward_unit: str = "") -> Figure:
    """Mean episode return per training iteration (and the evaluation return where it was logged)."""
    fig = _new_figure(8, 4.6)
    ax = fig.subplots()
    series = (("episode_return_mean", "training episodes", "#4C72B0", "-"),
              ("evaluation_return_mean", "evaluation episodes", "#C44E52", (0, (7, 2))))
    drawn = 0
    for key, label, color, ls in series:
        points = [(line["iteration"], line[key]) for line in progress if key in line]
        if points:
            x, y = zip(*points)
            ax.plot(x, y, color=color, ls=ls, lw=2.0 - 0.6 * drawn, marker="o" if len(x) <= 30 else None, ms=4,
                    label=label)
            drawn += 1
    if drawn:
        ax.legend(loc="best", frameon=True, framealpha=0.9)
    else:
        ax.text(0.5, 0.5, "no episode finished yet", transform=ax.transAxes, ha="center", va="center")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training iteration")
    ax.set_ylabel("mean episode return" + (f" ({reward_unit})" if reward_unit else ""))
    ax.grid(alpha=0.3)
    _titles(fig, "Mean episode return per iteration", data_label, "")
    return fig


VALIDATION_PA = "validation_pa_bps"  # rlexec.training.validation logs it (with validation_pa_se) per iteration


def validation_curves_figure(progress: dict[str, Sequence[dict]], data_label: str = "") -> Figure:
    """Mean PA on the split's validation orders per training iteration, one line per run (±1 SE band)."""
    fig = _new_figure(8, 4.6)
    ax = fig.subplots()
    styles = series_styles(list(progress))
    drawn = 0
    for name, lines in progress.items():
        points = [(line["iteration"], line[VALIDATION_PA], line.get("validation_pa_se", float("nan")))
                  for line in lines if VALIDATION_PA in line]
        if not points:
            continue
        x, y, se = (np.asarray(v, dtype=np.float64) for v in zip(*points))
        style = styles[name]
        ax.plot(x, y, color=style["color"], ls=style["ls"], lw=style["lw"], marker="o" if len(x) <= 30 else None,
                ms=4, label=name.upper())
        if np.isfinite(se).any():
            ax.fill_between(x, y - se, y + se, color=style["color"], alpha=BAND_ALPHA / 2, lw=0)
        drawn += 1
    if drawn:
        ax.legend(loc="best", frameon=True, framealpha=0.9)
    else:
        ax.text(0.5, 0.5, "no run logged a validation PA", transform=ax.transAxes, ha="center", va="center")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training iteration")
    ax.set_ylabel("validation PA (bp)")
    ax.grid(alpha=0.3)
    _titles(fig, "Learning curves: mean PA on the validation orders per iteration", data_label,
            "PA = price advantage vs the horizon's average market price, bp, + = better; the same validation "
            "orders at every iteration; band: ±1 standard error over the orders.")
    return fig


def plot_validation_curves(progress: dict[str, Sequence[dict]], path: str | os.PathLike, data_label: str = "") -> Path:
    return save_figure(validation_curves_figure(progress, data_label), path)


# ---- policies across market regimes (rlexec regimes) -------------------------------------------------
def _regime_grid(n: int, width: float = 4.2, height: float = 3.4) -> tuple[Figure, np.ndarray]:
    columns = min(n, 4)
    rows = -(-n // columns)
    fig = _new_figure(max(8.0, width * columns), height * rows + 1.4)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def many_series_styles(names: Sequence[str]) -> dict[str, dict]:
    """:func:`series_styles`, told apart past its six colours: the dash pattern (and a bar's hatch)
    changes with each round of colours, so that twelve policies still give twelve distinct series."""
    styles = series_styles(names)
    if len(names) <= len(OTHER_COLORS):
        return {name: {**style, "hatch": ""} for name, style in styles.items()}
    return {name: {**styles[name], "ls": LINESTYLES[(i // len(OTHER_COLORS)) % len(LINESTYLES)],
                   "hatch": HATCHES[(i // len(OTHER_COLORS)) % len(HATCHES)]} for i, name in enumerate(names)}


def regime_fill_curves_figure(evaluations: dict[str, Evaluation], data_label: str = "") -> Figure:
    """Mean cumulative fill rate of each policy, one panel per regime."""
    fig, axes = _regime_grid(len(evaluations))
    names = [r.name for r in next(iter(evaluations.values())).results]
    styles = many_series_styles(names)
    for ax, (regime, evaluation) in zip(axes, evaluations.items()):
        minutes = np.concatenate([[0.0], evaluation.curve_minutes])
        for i, r in enumerate(evaluation.results):
            curve = np.concatenate([np.zeros((r.fill_curve.shape[0], 1)), r.fill_curve], axis=1) * 100
            ax.plot(minutes[:curve.shape[1]], curve.mean(axis=0), color=styles[r.name]["color"],
                    ls=styles[r.name]["ls"], lw=styles[r.name]["lw"], label=r.name, zorder=2 + i)
        ax.set_title(regime, fontsize=10)
        ax.set_ylim(0, 102)
        ax.set_xlim(0, float(minutes[-1]))
        ax.grid(axis="y", alpha=0.3)
        ax.set_xlabel("minutes since window start", fontsize=8)
        ax.set_ylabel("filled, % of Q", fontsize=8)
    axes[0].legend(loc="lower right", fontsize=7, frameon=True, framealpha=0.9)
    _titles(fig, "Cumulative fill rate per policy and regime", data_label,
            "Lines: mean over the regime's episodes (the same seeds for every policy).")
    return fig


def regime_metric_figure(means: dict[tuple[str, str], tuple[float, float]], regimes: Sequence[str],
                         policies: Sequence[str], ylabel: str, title: str, data_label: str = "") -> Figure:
    """A metric's mean ± 95% CI (1.96 SE) per policy (bars) and regime (groups); ``means[(regime, policy)]
    = (mean, se)``."""
    fig = _new_figure(max(8.0, 1.2 + 0.35 * len(regimes) * len(policies)), 5.0)
    ax = fig.subplots()
    styles = many_series_styles(policies)
    width = 0.8 / len(policies)
    x = np.arange(len(regimes))
    for i, name in enumerate(policies):
        values = np.array([means[(r, name)] for r in regimes], dtype=np.float64)
        half = np.where(np.isfinite(values[:, 1]), 1.96 * values[:, 1], 0.0)
        ax.bar(x + (i - (len(policies) - 1) / 2) * width, values[:, 0], width, yerr=half, capsize=2,
               color=styles[name]["color"], hatch=styles[name]["hatch"], edgecolor="white", label=name,
               error_kw={"lw": 0.8})
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks(x, regimes)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=True, framealpha=0.9, ncols=min(4, len(policies)))
    _titles(fig, title, data_label, "Bars: mean over the regime's episodes; whiskers: 95% CI (1.96 standard errors).")
    return fig


def mixture_weights_figure(weights: dict[str, dict[str, dict[str, np.ndarray]]], data_label: str = "") -> Figure:
    """``weights[regime][mixture][expert]`` = (E,) weight over episodes: one panel per (mixture, regime)."""
    panels = [(regime, mixture, w) for regime, by_mixture in weights.items() for mixture, w in by_mixture.items()]
    fig, axes = _regime_grid(len(panels))
    for ax, (regime, mixture, by_expert) in zip(axes, panels):
        styles = series_styles(list(by_expert))
        for expert, values in by_expert.items():
            values = np.asarray(values, dtype=np.float64)
            ax.plot(np.arange(1, values.size + 1), values, color=styles[expert]["color"], ls=styles[expert]["ls"],
                    lw=1.6, label=expert)
        ax.set_title(f"{mixture} · {regime}", fontsize=10)
        ax.set_ylim(0, 1)
        ax.set_xlabel("episode", fontsize=8)
        ax.set_ylabel("weight", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=True, framealpha=0.9)
    _titles(fig, "Mixture weights over episodes, per regime", data_label,
            "Each line: one expert's weight after each of the mixture's own updating episodes (for SIP, its fitting "
            "episodes, not the evaluation's); weights sum to 1.")
    return fig


# ---- volatility levels -------------------------------------------------------------------------------
VOLATILITY_METRICS = {  # metric of per_episode.parquet -> panel label (rlexec.evaluation.regime_table.TABLE_METRICS)
    "profit_usd": "profit, USD per parent order (+ = gain vs arrival)",
    "execution_cost_usd": "execution cost, USD per parent order (+ = cost vs arrival)",
}


def volatility_level_means(per_episode, metrics: Sequence[str] = tuple(VOLATILITY_METRICS)
                           ) -> tuple[list[float], list[str], dict[str, dict[str, np.ndarray]]]:
    """Mean and SE per (metric, policy, level) from a ``rlexec regimes`` run's per_episode table.

    Only the rows of levelled volatility_ramp regimes count (``volatility_ramp`` itself is level 1).
    Returns ``(levels, policies, values)`` with ``values[metric][policy]`` of shape (L, 2): mean and
    standard error (ddof 1) over the level's episodes, NaN where a policy has no episode."""
    from rlexec.evaluation.stats import mean_se
    from rlexec.market.regimes import regime_family, regime_level

    regimes = per_episode.column("regime").to_pylist()
    policies_column = per_episode.column("strategy").to_pylist()
    levels_of = {r: regime_level(r) for r in set(regimes) if regime_family(r) == "volatility_ramp"}
    levels = sorted(set(levels_of.values()))
    if len(levels) < 2:
        raise ConfigError(f"volatility levels: need at least 2 levels of volatility_ramp (e.g. volatility_ramp@2), "
                          f"the run has {sorted(levels_of) or 'none'}")
    policies = list(dict.fromkeys(policies_column))
    row_level = np.array([levels_of.get(r, np.nan) for r in regimes], dtype=np.float64)
    row_policy = np.asarray(policies_column, dtype=object)
    values: dict[str, dict[str, np.ndarray]] = {}
    for metric in metrics:
        column = np.asarray(per_episode.column(metric).to_numpy(zero_copy_only=False), dtype=np.float64)
        values[metric] = {}
        for policy in policies:
            cells = []
            for level in levels:
                summary = mean_se(column[(row_policy == policy) & (row_level == level)])
                cells.append((summary.mean, summary.se))
            values[metric][policy] = np.asarray(cells, dtype=np.float64)
    return levels, policies, values


def volatility_levels_figure(per_episode, data_label: str = "") -> Figure:
    """Profit and execution cost (mean ± 1 SE) of each policy against the volatility_ramp level."""
    levels, policies, values = volatility_level_means(per_episode)
    fig = _new_figure(11.0, 4.8)
    axes = fig.subplots(1, len(VOLATILITY_METRICS), squeeze=False)[0]
    styles = many_series_styles(policies)
    # Policies side by side within a level, so that overlapping whiskers stay readable.
    spread = 0.25 * (min(np.diff(levels)) if len(levels) > 1 else 1.0)
    offsets = np.linspace(-spread / 2, spread / 2, len(policies)) if len(policies) > 1 else np.zeros(1)
    for ax, (metric, label) in zip(axes, VOLATILITY_METRICS.items()):
        for offset, policy in zip(offsets, policies):
            cells = values[metric][policy]
            ax.errorbar(np.asarray(levels) + offset, cells[:, 0], yerr=np.nan_to_num(cells[:, 1]), capsize=2,
                        color=styles[policy]["color"], ls=styles[policy]["ls"], lw=1.4, marker="o", ms=3,
                        label=policy)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks(levels, [f"{level:g}" for level in levels])
        ax.set_xlabel("volatility_ramp level (close multiplier 1 + 3 x level)", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, frameon=True, framealpha=0.9, ncols=2)
    _titles(fig, "Profit and execution cost under increasing volatility", data_label,
            "Points: mean over the level's episodes (the same seeds at every level and for every policy); "
            "whiskers: ±1 standard error. Level 1 is the volatility_ramp regime; level L ramps volatility and "
            "shock intensity x1 -> x(1 + 3L) over the day.")
    return fig
