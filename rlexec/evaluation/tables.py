"""The results and comparison tables of an evaluation as plain text cells, built from what
``summary.json`` records: the terminal (rich) and the HTML report show the same rows.

A table says what it ran on (its title names the data, the days or the LOB regime / replay file, and
how many orders or episodes) and carries a legend (its caption) that defines each column with its
unit and sign. The ``reward`` column is each env's own episode return, whose unit differs between the
envs: :func:`bar_reward_note` and :func:`lob_reward_note` name it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rlexec.envs.config import RewardConfig
from rlexec.evaluation.metrics import ACROSS_ORDERS, ORDER_METRICS
from rlexec.evaluation.stats import MeanSE


@dataclass(frozen=True)
class TextTable:
    title: str
    columns: tuple[str, ...]  # the first is the row label, left-aligned; the rest are numbers
    rows: tuple[tuple[str, ...], ...]  # a row label may hold a second line (a policy's training budget)
    caption: str = ""  # the legend


@dataclass(frozen=True)
class RewardNote:
    """The unit of an env's episode return, and what it is."""

    unit: str
    definition: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def bar_reward_note(reward: RewardConfig) -> RewardNote:
    """Bar env: ``scale * (PA_t - alpha * concentration_t)`` summed over the episode (spec 2.1)."""
    spread_over = "minute" if reward.basis == "minute" else "step"
    return RewardNote(
        unit=f"bp × {reward.scale:g}",
        definition=f"reward = {reward.scale:g} × (PA × fill rate − {reward.alpha:g} × Σ per {spread_over} "
                   f"(filled / ordered)²), the bar env's episode return, in bp × {reward.scale:g}",
    )


LOB_REWARD_UNIT = "bp"


def lob_reward_note(unfilled_penalty_bps: float) -> RewardNote:
    """LOB env: arrival-price slippage per share of the order, less the unfilled penalty (bp)."""
    return RewardNote(
        unit=LOB_REWARD_UNIT,
        definition=f"reward = slippage of the fills vs the arrival price, bp per share of the order, + = better, "
                   f"− {unfilled_penalty_bps:g} bp × unfilled share: the LOB env's episode return",
    )


def _shown_metrics() -> list:
    return [m for m in ORDER_METRICS.values() if m.in_table and m.name != "price_advantage_bps"]


def legend(reward: dict | None = None, *, policies: bool = False) -> str:
    """One line defining every column of :func:`results`, in column order."""
    clauses = [ORDER_METRICS["price_advantage_bps"].legend]
    clauses += [figure.legend for figure in ACROSS_ORDERS.values()]
    for metric in _shown_metrics():
        clauses.append(reward["definition"] if metric.name == "reward" and reward else metric.legend)
    if policies:
        clauses.append("under a trained policy's name: its training budget up to the checkpoint evaluated "
                       "(iterations, env steps sampled)")
    return " · ".join(c for c in clauses if c)


def _what(summary: dict[str, Any]) -> tuple[int, str, str]:
    dataset = summary.get("dataset") or {}
    return int(summary.get("n_orders", 0)), dataset.get("unit", "orders"), dataset.get("description", "")


def _mean_se(value: dict | None) -> MeanSE:
    value = value or {}
    return MeanSE(float(value.get("mean", float("nan"))), float(value.get("se", float("nan"))), int(value.get("n", 0)))


def row_label(name: str, summary: dict[str, Any]) -> str:
    trained = (summary.get("trained_policies") or {}).get(name)
    return name.upper() + (f"\n({trained['budget']})" if trained and trained.get("budget") else "")


def results(summary: dict[str, Any]) -> TextTable:
    """Mean ± SE of each shown metric and GLR / POS, one row per strategy."""
    n, unit, description = _what(summary)
    reward = summary.get("reward")
    shown = _shown_metrics()
    columns = ["strategy", ORDER_METRICS["price_advantage_bps"].header]
    columns += [figure.header for figure in ACROSS_ORDERS.values()]
    columns += [f"reward ({reward['unit']})" if m.name == "reward" and reward else m.header for m in shown]
    rows = []
    for name, result in summary.get("results", {}).items():
        cells = [row_label(name, summary), _mean_se(result.get("price_advantage_bps")).format()]
        cells += [f"{float(result.get(figure, float('nan'))):.2f}" for figure in ACROSS_ORDERS]
        for metric in shown:
            value = _mean_se(result.get(metric.name))
            if metric.name == "fill_rate":  # a rate: its mean says it, the SE is noise around 1
                cells.append(f"{value.mean:.{metric.digits}f}")
            else:
                cells.append(value.format(metric.digits))
        rows.append(tuple(cells))
    title = f"{n} {unit}" + (f" · {description}" if description else "") + " · mean ± standard error"
    return TextTable(title, tuple(columns), tuple(rows),
                     legend(reward, policies=bool(summary.get("trained_policies"))))


def baseline(summary: dict[str, Any]) -> str:
    names = list(summary.get("results", {}))
    return summary.get("baseline") or next((n for n in names if n not in summary.get("paired_vs_baseline", {})), "")


def comparison(summary: dict[str, Any]) -> TextTable:
    """Each strategy's PA minus the baseline's on the same orders, with its 95% t-interval."""
    n, unit, _ = _what(summary)
    base = baseline(summary).upper()
    rows = []
    for name, d in summary.get("paired_vs_baseline", {}).items():
        rows.append((row_label(name, summary), f"{d['mean']:+.2f}", f"[{d['low']:+.2f}, {d['high']:+.2f}]",
                     "yes" if d.get("significant") else "no"))
    return TextTable(
        f"Paired PA difference vs {base} (same {n} {unit}, 95% CI)",
        ("strategy", "mean (bp)", "95% CI (bp)", "significant"),
        tuple(rows),
        f"mean over the same {unit} of (strategy's PA − {base}'s PA), bp, + = better than {base} · "
        "significant: the 95% t-interval excludes 0",
    )


def paired(rows: list[dict[str, Any]], title: str) -> TextTable:
    """Named paired differences (rows of :func:`rlexec.evaluation.study.paired_rows`), one line each."""
    units = {"price_advantage_bps": "PA (bp)", "reward": "reward"}
    out = []
    for r in rows:
        out.append((f"{r['a'].upper()} − {r['b'].upper()}", units.get(r["metric"], r["metric"]), f"{r['mean']:+.3f}",
                    f"[{r['low']:+.3f}, {r['high']:+.3f}]", "yes" if r.get("significant") else "no"))
    return TextTable(
        title, ("comparison", "metric", "mean", "95% CI", "significant"), tuple(out),
        "mean over the same orders of (first method's value − second's), + = the first is better (PA in bp; "
        "reward in the env's unit) · significant: the 95% t-interval excludes 0",
    )


def by_scope(rows: list[dict[str, Any]], metric: str = "price_advantage_bps") -> TextTable:
    """One row per method, one column per scope (a test day, ``pooled``): ``metric``'s mean ± SE, from
    rows of :func:`rlexec.evaluation.study.method_rows`."""
    scopes = list(dict.fromkeys(r["scope"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["scope"]): MeanSE(r[f"{metric}_mean"], r[f"{metric}_se"], r["n_orders"]) for r in rows}
    out = tuple((m.upper(), *(cell[(m, s)].format() if (m, s) in cell else "" for s in scopes)) for m in methods)
    header = ORDER_METRICS[metric].header if metric in ORDER_METRICS else metric
    counts = ", ".join(f"{s}: {next(r['n_orders'] for r in rows if r['scope'] == s)}" for s in scopes)
    return TextTable(f"{header} per test day, mean ± standard error", ("method", *scopes), out,
                     f"{ORDER_METRICS[metric].legend if metric in ORDER_METRICS else metric} · orders per column: "
                     f"{counts} · pooled: every test day's orders together")
