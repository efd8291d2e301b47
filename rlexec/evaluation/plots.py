"""Plots of an evaluation: cumulative fill-rate curves and the distribution of price advantage."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: evaluation runs headless on clusters and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rlexec.evaluation.runner import Evaluation  # noqa: E402
from rlexec.provenance import write_atomic  # noqa: E402

COLORS = {"twap": "#4C72B0", "vwap": "#DD8452", "is": "#55A868", "pov": "#C44E52"}


def _color(name: str, index: int) -> str:
    return COLORS.get(name, plt.get_cmap("tab10")(index % 10))


def plot_fill_curves(evaluation: Evaluation, path: str | os.PathLike, title_suffix: str = "") -> Path:
    """Mean cumulative fill rate per strategy over the horizon, with the interquartile band."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    minutes = evaluation.curve_minutes
    for i, r in enumerate(evaluation.results):
        color = _color(r.name, i)
        ax.plot(minutes, r.fill_curve.mean(axis=0) * 100, color=color, lw=2, label=r.name.upper())
        q25, q75 = np.percentile(r.fill_curve, [25, 75], axis=0) * 100
        ax.fill_between(minutes, q25, q75, color=color, alpha=0.12, lw=0)
    horizon = float(minutes[-1])
    if len(evaluation.decision_minutes) <= 40:  # more lines than that is noise, not information
        for boundary in evaluation.decision_minutes[1:]:
            ax.axvline(boundary, color="0.85", lw=0.8, zorder=0)
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 102)
    ax.set_xlabel("minutes since order start (grey lines: decisions)")
    ax.set_ylabel("filled, % of parent order")
    ax.set_title(f"Cumulative fill rate, mean and interquartile band ({len(evaluation)} orders){title_suffix}")
    ax.legend(loc="lower right", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)


def plot_pa_distribution(evaluation: Evaluation, path: str | os.PathLike, title_suffix: str = "") -> Path:
    """Per-order price advantage (bp) per strategy: box plots over the points, mean ± SE marked."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    rng = np.random.default_rng(0)  # jitter only; fixed so the picture is reproducible
    data, labels = [], []
    for i, r in enumerate(evaluation.results):
        pa = r.metrics["price_advantage_bps"]
        pa = pa[np.isfinite(pa)]
        data.append(pa)
        labels.append(r.name.upper())
        x = i + 1 + rng.uniform(-0.18, 0.18, pa.size)
        ax.scatter(x, pa, s=6, alpha=0.25, color=_color(r.name, i), lw=0)
        s = r.summary.price_advantage_bps
        ax.errorbar(i + 1.32, s.mean, yerr=1.96 * s.se, fmt="D", color="black", ms=5, capsize=4)
    ax.boxplot(data, showfliers=False, widths=0.5, medianprops={"color": "black"})
    ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.axhline(0, color="0.5", lw=0.8, ls="--")
    ax.set_ylabel("price advantage vs horizon average price, bp (positive = better)")
    ax.set_title(f"Price advantage per order (diamond: mean ± 95% CI){title_suffix}")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)
