"""The simulated day's picture (day.png): no series or legend hides the mid price, no text is clipped."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.transforms import Bbox

from rlexec.market.report import day_figure


def _pixels_of(fig, ax, line) -> int:
    """Pixels inside ``ax`` painted in ``line``'s colour (as blended on white by its alpha)."""
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    x0, y0, x1, y1 = ax.bbox.extents
    region = image[int(image.shape[0] - y1):int(image.shape[0] - y0), int(x0):int(x1)]
    alpha = line.get_alpha() if line.get_alpha() is not None else 1.0
    colour = np.array(to_rgb(line.get_color())) * alpha + (1 - alpha)
    return int((np.abs(region - colour).max(axis=-1) < 0.08).sum())


def _price_lines(fig):
    ax = fig.axes[0]
    return ax, {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_the_mid_price_is_not_hidden_by_the_fundamental(baseline_day):
    fig = day_figure(baseline_day)
    ax, lines = _price_lines(fig)
    both = _pixels_of(fig, ax, lines["mid"])
    lines["fundamental"].set_visible(False)
    alone = _pixels_of(fig, ax, lines["mid"])
    lines["fundamental"].set_visible(True)
    lines["mid"].set_visible(False)
    fundamental_alone = _pixels_of(fig, ax, lines["fundamental"])
    lines["mid"].set_visible(True)
    fundamental_both = _pixels_of(fig, ax, lines["fundamental"])
    assert both >= 0.95 * alone, f"the fundamental covers {1 - both / alone:.0%} of the mid line"
    assert fundamental_both >= 0.5 * fundamental_alone, "the fundamental must stay visible around the mid"


def test_legends_sit_outside_the_data_and_no_text_is_clipped(baseline_day):
    fig = day_figure(baseline_day)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            overlap = Bbox.intersection(legend.get_window_extent(renderer), ax.bbox)
            assert overlap is None or overlap.width * overlap.height < 1, f"a legend covers {ax.get_ylabel()} data"
    drawn = fig.get_tightbbox(renderer)  # inches: everything drawn, titles and labels included
    width, height = fig.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01 and drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01
    title = fig._suptitle.get_text()
    assert "regime 'baseline'" in title and "seed" in title
