"""The OPD study's results (issue 11): each method's row and named paired differences, on one set of
orders or pooled over several (walk-forward test days).

Every function here takes *per-order metrics by method*: ``{method: {metric: (N,) array}}`` with the
same N orders, in the same order, for every method (what one :class:`~rlexec.evaluation.runner.Evaluation`
holds: common random numbers). Pooling test days concatenates each method's arrays day by day, so
order i is still the same order for every method and the pooled differences stay paired.

Rows are flat dicts, written as CSV (``methods.csv``, ``paired.csv``) and shown as text tables:

* a method row: ``scope`` (``test``, ``validation``, a test day or ``pooled``), ``method``,
  ``n_orders``, ``<metric>_mean`` / ``<metric>_se`` for PA, fill rate and reward, ``glr``, ``pos``;
* a paired row: ``scope``, ``a``, ``b``, ``metric``, ``mean`` / ``se`` of ``a - b`` per order,
  the two-sided 95% t-interval ``low`` / ``high``, ``n`` (orders priced under both) and ``significant``
  (the interval excludes 0).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlexec.errors import ConfigError
from rlexec.evaluation.metrics import ACROSS_ORDERS, aggregate
from rlexec.evaluation.stats import paired_difference
from rlexec.provenance import write_atomic

MethodMetrics = dict[str, dict[str, np.ndarray]]

ROW_METRICS = ("price_advantage_bps", "fill_rate", "reward")  # the table: PA, fill rate, reward (+ GLR, POS)
PAIRED_METRICS = ("price_advantage_bps", "reward")  # PA: the paper's figure; reward: what training maximises
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Comparison:
    """``a - b`` on the same orders."""

    a: str
    b: str

    @classmethod
    def parse(cls, text: str, where: str = "--compare") -> "Comparison":
        a, sep, b = str(text).partition(":")
        a, b = a.strip(), b.strip()
        if not sep or not a or not b or ":" in b:
            raise ConfigError(f"{where}: expected METHOD:METHOD (e.g. opd:opds), got {text!r}")
        if a.lower() == b.lower():
            raise ConfigError(f"{where}: {text!r} compares a method with itself")
        return cls(a, b)

    @property
    def label(self) -> str:
        return f"{self.a} - {self.b}"


def comparisons(baseline: str, methods: Sequence[str], named: Iterable[Comparison] = (),
                where: str = "--compare") -> list[Comparison]:
    """Every method against ``baseline``, then the ``named`` ones (each once, in that order). Names match
    whatever their case (the tables print them in capitals); one that was not evaluated is an error
    naming ``where``."""
    known = list(methods)
    by_lower = {m.lower(): m for m in known}
    out = [Comparison(m, baseline) for m in known if m != baseline]
    for c in named:
        missing = [m for m in (c.a, c.b) if m.lower() not in by_lower]
        if missing:
            raise ConfigError(f"{where} {c.a}:{c.b}: no method {missing} among those evaluated {known}")
        pair = Comparison(by_lower[c.a.lower()], by_lower[c.b.lower()])
        if pair not in out:
            out.append(pair)
    return out


def tables(scope: str, metrics: MethodMetrics, baseline: str, named: Iterable[Comparison] = ()
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One scope's method rows and paired rows: every method against ``baseline``, then ``named``."""
    return method_rows(scope, metrics), paired_rows(scope, metrics, comparisons(baseline, list(metrics), named))


def method_rows(scope: str, metrics: MethodMetrics) -> list[dict[str, Any]]:
    rows = []
    for method, values in metrics.items():
        summary = aggregate(values)
        row: dict[str, Any] = {"scope": scope, "method": method, "n_orders": summary.n_orders}
        for name in ROW_METRICS:
            row[f"{name}_mean"], row[f"{name}_se"] = summary.means[name].mean, summary.means[name].se
        row.update({name: summary.figures[name] for name in ACROSS_ORDERS})
        rows.append(row)
    return rows


def paired_rows(scope: str, metrics: MethodMetrics, pairs: Iterable[Comparison],
                paired_metrics: Sequence[str] = PAIRED_METRICS) -> list[dict[str, Any]]:
    rows = []
    for pair in pairs:
        for name in paired_metrics:
            d = paired_difference(metrics[pair.a][name], metrics[pair.b][name], CONFIDENCE)
            rows.append({"scope": scope, "a": pair.a, "b": pair.b, "metric": name, "mean": d.mean, "se": d.se,
                         "low": d.low, "high": d.high, "n": d.n, "significant": d.significant})
    return rows


def pool(parts: Sequence[MethodMetrics], where: str = "pooled") -> MethodMetrics:
    """Each method's per-order arrays of every part, concatenated in the parts' order (still paired)."""
    if not parts:
        raise ConfigError(f"{where}: nothing to pool")
    methods = list(parts[0])
    for k, part in enumerate(parts):
        if list(part) != methods:
            raise ConfigError(f"{where}: part {k} has methods {list(part)}, the first has {methods}; "
                              "pooled differences need every method on every part's orders")
    return {m: {name: np.concatenate([np.asarray(p[m][name], dtype=np.float64) for p in parts])
                for name in parts[0][m]} for m in methods}


def summary_of(metrics: MethodMetrics, description: str = "") -> dict[str, Any]:
    """The part of a ``summary.json`` that :func:`rlexec.evaluation.tables.results` reads."""
    n = int(next(iter(next(iter(metrics.values())).values())).size) if metrics else 0
    return {"n_orders": n, "dataset": {"description": description, "unit": "orders"},
            "results": {m: aggregate(values).to_dict() for m, values in metrics.items()}}


def write_rows(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Rows as CSV (columns in the first row's order; floats at full precision, NaN as empty)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    text = buffer.getvalue()
    return write_atomic(Path(path), lambda tmp: tmp.write_text(text))
