"""Write a simulated day to disk: three parquet tables and a one-page picture."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from rlexec.market.config import NS_PER_SECOND
from rlexec.market.simulate import SimulationResult
from rlexec.provenance import write_atomic

HOUR_NS = 3600 * NS_PER_SECOND


def write_simulation(result: SimulationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``tape.parquet``, ``book.parquet``, ``minute_bars.parquet`` and ``day.png``, each whole or not at all."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.parquet" for name in ("tape", "book", "minute_bars")}
    for name, table in (("tape", result.tape), ("book", result.book), ("minute_bars", result.minute_bars)):
        write_atomic(paths[name], partial(pq.write_table, table))
    paths["day"] = out / "day.png"
    plot_day(result, paths["day"])
    return paths


def _hours(times_ns: np.ndarray) -> np.ndarray:
    return np.asarray(times_ns, dtype=np.float64) / HOUR_NS


def _clock_label(hours: float, _position: int) -> str:
    minutes = int(round(hours * 60))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def plot_day(result: SimulationResult, path: str | Path) -> None:
    """Write :func:`day_figure` as a PNG."""
    fig = day_figure(result)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))  # a PNG, written whole


def day_figure(result: SimulationResult) -> Figure:
    """Price (mid and fundamental), spread and volume per minute on one shared time axis."""
    tick = result.config.session.tick_size
    book, bars = result.book, result.minute_bars
    t_book = _hours(book.column("time_ns").to_numpy())
    mid = book.column("mid").to_numpy(zero_copy_only=False).astype(float) * tick
    spread = book.column("spread").to_numpy(zero_copy_only=False).astype(float)
    fundamental = book.column("fundamental").to_numpy() * tick
    t_bars = _hours(bars.column("time_ns").to_numpy())
    volume = bars.column("volume").to_numpy()
    minute_spread = bars.column("spread_mean").to_numpy(zero_copy_only=False).astype(float)

    # An explicit Agg canvas instead of pyplot: no global backend state, safe in worker processes.
    fig = Figure(figsize=(11, 8.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_price, ax_spread, ax_volume = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.5]})
    # The fundamental as a wide pale band under the mid: where the two meet, the traded price stays on top.
    ax_price.plot(t_book, fundamental, lw=2.2, alpha=0.45, color="tab:orange", label="fundamental", zorder=1)
    ax_price.plot(t_book, mid, lw=0.7, color="tab:blue", label="mid", zorder=2)
    ax_price.set_ylabel("price ($)")
    ax_spread.plot(t_book, spread, lw=0.4, color="tab:purple", alpha=0.35, label="each second")
    ax_spread.plot(t_bars + 0.5 / 60, minute_spread, lw=1.0, color="tab:purple", label="1-minute mean")
    ax_spread.set_ylabel("spread (ticks)")
    for ax in (ax_price, ax_spread):  # above the plotting area, where no data can be under them
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False, fontsize="small",
                  borderaxespad=0.2)
    ax_volume.bar(t_bars, volume, width=1 / 60, align="edge", color="tab:gray")
    ax_volume.set_ylabel("volume / minute (shares)")
    ax_volume.set_xlabel("time of day")
    ax_volume.xaxis.set_major_formatter(FuncFormatter(_clock_label))
    for ax in (ax_price, ax_spread, ax_volume):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Simulated LOB session - regime '{result.config.regime}', seed {result.seed}, tick ${tick:g}: "
                 f"{result.tape.num_rows:,} trades, {int(volume.sum()):,} shares")
    return fig
