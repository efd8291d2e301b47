"""The evaluation plots: they name the data, show the interquartile bands, keep every series visible,
state the box-plot whisker rule, give each strategy a readable scale and clip no text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from matplotlib.colors import to_rgb

from rlexec.evaluation.metrics import aggregate
from rlexec.evaluation.plots import fill_curves_figure, pa_distribution_figure
from rlexec.evaluation.runner import Evaluation, StrategyResult

REPLAY_LABEL = ("LOBSTER replay LOBSTER_SampleFile_AMZN_2012-06-21_1_0930-1000.zip, 10-minute windows "
                "(seeds 0 to 4); market child orders every 30 s")


def synthetic(pa_bps: dict[str, np.ndarray], curves: dict[str, np.ndarray] | None = None) -> Evaluation:
    """An evaluation with the given per-order PA and (N, K) fill curves, over K = 100 one-minute points."""
    n = len(next(iter(pa_bps.values())))
    curves = curves or {name: np.tile(np.linspace(0.01, 1, 100), (n, 1)) for name in pa_bps}
    results = []
    for name, values in pa_bps.items():
        metrics = {"price_advantage_bps": np.asarray(values, dtype=float)}
        results.append(StrategyResult(name, metrics, curves[name], aggregate(metrics)))
    return Evaluation(orders=pa.table({"symbol": ["AAPL"] * n}), results=results, baseline=results[0].name,
                      curve_minutes=np.arange(1, 101, dtype=float), decision_minutes=np.arange(0, 100, 25.0))


def rendered(fig) -> np.ndarray:
    """RGB in [0, 1], row 0 at the top."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255


def pixel_at(fig, ax, x: float, y: float) -> np.ndarray:
    image = rendered(fig)
    px, py = ax.transData.transform((x, y))
    return image[round(image.shape[0] - py), round(px)]


def count_colour(fig, ax, colour) -> int:
    image = rendered(fig)
    x0, y0, x1, y1 = ax.bbox.extents
    region = image[int(image.shape[0] - y1):int(image.shape[0] - y0), int(x0):int(x1)]
    return int((np.abs(region - np.array(to_rgb(colour))).max(axis=-1) < 0.06).sum())


def test_fill_curve_bands_stand_out_from_the_background():
    # 40 orders filling linearly at different speeds: at minute 30 the quartiles are far apart
    speeds = np.linspace(0.2, 2.0, 40)
    curve = np.minimum(1.0, np.outer(speeds, np.arange(1, 101) / 100))
    fig = fill_curves_figure(synthetic({"twap": np.zeros(40)}, {"twap": curve}))
    ax = fig.axes[0]
    q25 = np.percentile(curve[:, 29] * 100, 25)
    mean = curve[:, 29].mean() * 100
    inside = pixel_at(fig, ax, 30, (q25 + mean) / 2)  # in the band, clear of its edges and the mean line
    assert (1 - inside).max() >= 40 / 255, f"band pixel {inside} is barely distinguishable from white"


def test_a_series_drawn_over_an_identical_one_leaves_it_visible():
    # a smoke-trained policy that trades like POV: the same curve twice
    curve = np.minimum(1.0, np.outer(np.ones(10), np.arange(1, 101) / 30))
    fig = fill_curves_figure(synthetic({"pov": np.zeros(10), "smoke": np.zeros(10)}, {"pov": curve, "smoke": curve}))
    ax = fig.axes[0]
    ax.get_legend().remove()
    under, over = (line for line in ax.get_lines() if not line.get_label().startswith("_"))
    under_pixels, over_pixels = count_colour(fig, ax, under.get_color()), count_colour(fig, ax, over.get_color())
    assert over_pixels > 0
    assert under_pixels >= 0.2 * over_pixels, f"POV shows {under_pixels} pixels under SMOKE's {over_pixels}"


@pytest.mark.parametrize("figure", [fill_curves_figure, pa_distribution_figure])
def test_the_figure_names_the_data_and_clips_no_text(figure):
    ev = synthetic({"twap": np.linspace(-2, 1, 5), "vwap": np.linspace(-3, 2, 5), "is": np.linspace(-1, 3, 5),
                    "pov": np.linspace(-9, -2, 5)})
    fig = figure(ev, REPLAY_LABEL)
    texts = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_visible()))
    assert " ".join(REPLAY_LABEL.split()) in " ".join(texts.split())
    fig.canvas.draw()
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches; beyond the figure = clipped
    width, height = fig.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, drawn
    assert drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01, drawn


def _panel(fig, name: str):
    """The axes that shows strategy ``name``: titled by it, or with it among its tick labels."""
    (ax,) = [ax for ax in fig.axes if ax.get_title().split("\n")[0] == name
             or name in [label.get_text() for label in ax.get_xticklabels()]]
    return ax


def test_each_strategy_gets_a_scale_its_orders_fill():
    rng = np.random.default_rng(1)
    ev = synthetic({"twap": rng.uniform(-1.5, -0.5, 60), "pov": rng.uniform(-50, 50, 60)})
    fig = pa_distribution_figure(ev)
    for name, values in (("TWAP", ev.result("twap").metrics["price_advantage_bps"]),
                         ("POV", ev.result("pov").metrics["price_advantage_bps"])):
        low, high = _panel(fig, name).get_ylim()
        own = max(values.max(), 0) - min(values.min(), 0)  # the panel also shows 0
        assert low <= values.min() and high >= max(values.max(), 0)
        assert high - low <= 1.5 * own, f"{name}: axis spans {high - low:.1f} bp for {own:.1f} bp of data"


def test_whiskers_follow_the_rule_the_figure_states():
    # quartiles 2.25 and 6.75 (numpy's linear rule), IQR 4.5: the upper reach is 6.75 + 1.5 * 4.5 = 13.5,
    # so the upper whisker ends at 8, the furthest order within it; 100 lies beyond it
    values = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 100], dtype=float)
    fig = pa_distribution_figure(synthetic({"twap": values}))
    ax = _panel(fig, "TWAP")
    caps = sorted({line.get_ydata()[0] for line in ax.get_lines()
                   if len(line.get_ydata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]
                   and line.get_xdata()[1] - line.get_xdata()[0] < 0.3})  # short horizontal: caps and median
    assert 8.0 in caps and 0.0 in caps and 100.0 not in caps
    texts = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    assert "whiskers: the furthest order within 1.5 × IQR of the box" in " ".join(texts.split())
