"""What ``rlexec llmoe`` writes into its run folder.

* ``results.csv`` / ``results.parquet``: one row per (ticker, model, seed, cost) with TR, SR, MDD, CR,
  AR (annualised return), accuracy (signal = next-day direction), exposure (share of days invested), trades;
* ``summary.csv`` and ``table.md``: mean ± standard deviation over seeds;
* ``equity_<ticker>.png``: test-period equity curves (first seed, cost 0), one panel per router with
  its optimistic days shaded green and pessimistic days red under the curve;
* ``routes_<ticker>.csv`` (every day, every router, first seed) and ``routes_<ticker>.md`` (test days):
  route, P(optimistic), the routed expert's P(up), the position and the explanation.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rlexec.provenance import write_atomic

if TYPE_CHECKING:
    from rlexec.llmoe.data import TickerData
    from rlexec.llmoe.pipeline import LLMoEConfig, ModelRun

SUMMARY_METRICS = (("TR", True), ("SR", False), ("MDD", True), ("CR", False), ("accuracy", True))


def cell(mean: float, std: float, percent: bool) -> str:
    if not math.isfinite(mean):
        return "n/a"
    scale, unit = (100.0, "%") if percent else (1.0, "")
    return f"{mean * scale:.2f}{unit} ± {std * scale:.2f}{unit}"


def markdown_table(summary: list[dict]) -> str:
    header = ["ticker", "model", "cost (bp)", "seeds", *[m for m, _ in SUMMARY_METRICS]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary:
        lines.append("| " + " | ".join([row["ticker"], row["model"], f"{row['cost_bps']:g}", str(row["seeds"]),
                                         *[cell(row[f"{m}_mean"], row[f"{m}_std"], p) for m, p in SUMMARY_METRICS]])
                     + " |")
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: list[dict]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    return write_atomic(path, write)


def _write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return write_atomic(path, lambda tmp: pq.write_table(pa.Table.from_pylist(rows), tmp))


def route_rows(data: TickerData, runs: list[ModelRun]) -> list[dict]:
    """Per day and router: route, P(optimistic), and on test days the MoE's P(up) and position."""
    test = data.split["test"]
    part = np.empty(len(data.windows), dtype=object)
    for name, index in data.split.items():
        part[index] = name
    moe = {run.model[len("moe["):-1]: run for run in runs if run.model.startswith("moe[")}
    rows = []
    for router, run in moe.items():
        test_position = {int(i): k for k, i in enumerate(test)}
        for i, (window, decision) in enumerate(zip(data.windows, run.routes)):
            k = test_position.get(i)
            rows.append({"date": window.date.isoformat(), "part": part[i], "router": router, "route": decision.route,
                         "p_optimistic": round(decision.probability, 4),
                         "expert_p_up": "" if k is None else round(float(run.probability_up[k]), 4),
                         "position": "" if k is None else ("stock" if run.signal[k] else "cash"),
                         "next_day_return": round(float(data.next_return[i]), 5),
                         "explanation": decision.explanation})
    return rows


def routes_markdown(ticker: str, rows: list[dict]) -> str:
    lines = [f"# {ticker}: routes and explanations on the test days", "",
             "| date | router | route | P(opt) | expert P(up) | position | next-day return | explanation |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["part"] != "test":
            continue
        reason = str(row["explanation"]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row['date']} | {row['router']} | {row['route']} | {row['p_optimistic']:.2f} | "
                     f"{row['expert_p_up']:.2f} | {row['position']} | {row['next_day_return'] * 100:+.2f}% | {reason} |")
    return "\n".join(lines) + "\n"


def plot_equity(path: Path, data: TickerData, runs: list[ModelRun], cost_bps: float = 0.0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlexec.llmoe.backtest import all_in_all_out

    test = data.split["test"]
    prices = np.concatenate([[1.0], np.cumprod(1.0 + data.next_return[test])])
    days = np.arange(len(test) + 1)
    curves = {run.model: all_in_all_out(run.signal, prices, cost_bps).equity for run in runs}
    routed = [run for run in runs if run.model.startswith("moe[")]
    panels = 1 + len(routed)
    fig, axes = plt.subplots(panels, 1, figsize=(10, 3.2 * panels), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for name, equity in curves.items():
        if not name.startswith(("moe[", "router[")):
            axes[0].plot(days, equity, label=name)
    axes[0].set_title(f"{data.ticker} test period {data.dates[test[0]]}..{data.dates[test[-1]]}: baselines "
                      f"(cost {cost_bps:g} bp)")
    for ax, run in zip(axes[1:], routed):
        optimistic = np.array([d.route == "optimistic" for d in run.routes])[test]
        for k, is_optimistic in enumerate(optimistic):
            ax.axvspan(k, k + 1, color="tab:green" if is_optimistic else "tab:red", alpha=0.12, lw=0)
        ax.plot(days, curves[run.model], color="black", label=run.model)
        router_curve = curves.get("router" + run.model[3:])
        if router_curve is not None:
            ax.plot(days, router_curve, color="tab:purple", ls=":", label="router" + run.model[3:] + " alone")
        if "buy_and_hold" in curves:
            ax.plot(days, curves["buy_and_hold"], color="tab:gray", ls="--", label="buy_and_hold")
        ax.set_title(f"{run.model}: shaded by route (green optimistic, red pessimistic)")
    for ax in axes:
        ax.set_ylabel("equity")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    ticks = np.linspace(0, len(test), min(7, len(test) + 1)).astype(int)
    axes[-1].set_xticks(ticks, [str(data.dates[test[min(k, len(test) - 1)]]) for k in ticks], fontsize=8)
    axes[-1].set_xlabel("decision day (the position is held from that close to the next)")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def write_outputs(run_dir: Path, rows: list[dict], summary: list[dict],
                  first_seed_runs: dict[str, tuple[TickerData, list[ModelRun]]], config: LLMoEConfig) -> dict[str, Path]:
    import yaml

    files = {
        "results_csv": _write_csv(run_dir / "results.csv", rows),
        "results_parquet": _write_parquet(run_dir / "results.parquet", rows),
        "summary_csv": _write_csv(run_dir / "summary.csv", summary),
        "table": write_atomic(run_dir / "table.md", lambda tmp: tmp.write_text(markdown_table(summary))),
        "config": write_atomic(run_dir / "config.yaml", lambda tmp: tmp.write_text(
            yaml.safe_dump(_plain(config.to_dict()), sort_keys=False))),
    }
    for ticker, (data, runs) in first_seed_runs.items():
        files[f"equity_{ticker}"] = plot_equity(run_dir / f"equity_{ticker}.png", data, runs)
        day_rows = route_rows(data, runs)
        if day_rows:
            files[f"routes_{ticker}_csv"] = _write_csv(run_dir / f"routes_{ticker}.csv", day_rows)
            files[f"routes_{ticker}_md"] = write_atomic(run_dir / f"routes_{ticker}.md",
                                                        lambda tmp: tmp.write_text(routes_markdown(ticker, day_rows)))
    return files


def _plain(value):
    """Tuples -> lists, so the YAML is plain (no python/tuple tags)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
