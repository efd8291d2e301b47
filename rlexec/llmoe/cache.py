"""Routes and explanations cached to parquet, keyed by (router, ticker, date, fingerprint).

The fingerprint (:func:`routing_fingerprint`) is the hash of everything a route depends on: the
router's kind and options, the seed (None for routers with ``uses_seed = False``) and the data
settings (text source, period, split, routing-label horizon). Training and backtests read the cache
instead of routing again; an LLM router's routes are computed once and shared by every seed.

Layout: ``<root>/<router>/<ticker>/<fingerprint>.parquet`` with columns ``date`` (date32),
``route``, ``probability``, ``explanation``, ``router``, ``ticker``, ``fingerprint``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from rlexec.errors import DataFileError
from rlexec.llmoe.routers.base import RouteDecision
from rlexec.provenance import config_hash, is_plain_name, write_atomic

COLUMNS = ("date", "route", "probability", "explanation", "router", "ticker", "fingerprint")


def routing_fingerprint(router: str, options: dict[str, Any] | None, seed: int | None,
                        data_settings: dict[str, Any]) -> str:
    """Short hash of what a router's decisions depend on (see the module docstring)."""
    return config_hash({"router": router, "options": dict(options or {}), "seed": seed, "data": data_settings})


def _folder_name(name: str) -> str:
    """Router kinds may be ``package.module:Class``: keep a plain folder name."""
    plain = name.replace(":", "--").replace("/", "_")
    return plain if is_plain_name(plain) else config_hash({"name": name})


class RouteCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, router: str, ticker: str, fingerprint: str) -> Path:
        return self.root / _folder_name(router) / _folder_name(ticker) / f"{fingerprint}.parquet"

    def load(self, router: str, ticker: str, fingerprint: str) -> dict[dt.date, RouteDecision]:
        """Every cached decision of that key, by date (empty when nothing is cached)."""
        import pyarrow.parquet as pq

        path = self.path(router, ticker, fingerprint)
        if not path.is_file():
            return {}
        rows = pq.read_table(path).to_pylist()
        out = {}
        for number, row in enumerate(rows, start=1):
            try:
                out[row["date"]] = RouteDecision(row["route"], float(row["probability"]), row["explanation"])
            except (KeyError, TypeError, ValueError) as exc:
                raise DataFileError(str(path), f"bad cached route ({exc}); delete the file to recompute",
                                    row=number) from None
        return out

    def get(self, router: str, ticker: str, fingerprint: str, dates: list[dt.date]) -> list[RouteDecision] | None:
        """The decisions of ``dates`` in order, or None unless every date is cached."""
        cached = self.load(router, ticker, fingerprint)
        if not all(day in cached for day in dates):
            return None
        return [cached[day] for day in dates]

    def put(self, router: str, ticker: str, fingerprint: str, dates: list[dt.date],
            decisions: list[RouteDecision]) -> Path:
        """Add (or replace) the decisions of ``dates``, keeping the other cached dates; atomic write."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if len(dates) != len(decisions):
            raise ValueError(f"RouteCache.put: {len(dates)} dates for {len(decisions)} decisions")
        merged = self.load(router, ticker, fingerprint)
        merged.update(zip(dates, decisions))
        days = sorted(merged)
        table = pa.table({
            "date": pa.array(days, type=pa.date32()),
            "route": [merged[d].route for d in days],
            "probability": pa.array([float(merged[d].probability) for d in days], type=pa.float64()),
            "explanation": [merged[d].explanation for d in days],
            "router": [router] * len(days),
            "ticker": [ticker] * len(days),
            "fingerprint": [fingerprint] * len(days),
        })
        path = self.path(router, ticker, fingerprint)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, lambda tmp: pq.write_table(table, tmp))
