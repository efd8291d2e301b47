"""Checks on raw minute bars. Each failure names the file, the line (or row) and the field.

What is rejected: missing columns, NaN or non-positive prices, ``high < low``, ``open`` or ``close``
outside ``[low, high]``, NaN or negative volume, and timestamps that are duplicated or out of order.
A file whose timestamps run strictly *newest first* (the layout of the shared vendor files) is
accepted and reversed; any other disorder is an error.

What is accepted on purpose, because real data has it: zero-volume bars and missing minutes (gaps).
``rlexec.data.panel`` fills them by a documented policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlexec.errors import BarDataError


@dataclass(frozen=True, kw_only=True)
class RowLocator:
    """Maps a 0-based position in the file's own row order to what the user sees in an editor."""

    source: str
    text_file: bool  # True: report "line" (header is line 1); False: report 1-based "row"
    header_lines: int = 1  # lines before the first data row of a text file (0 for NinjaTrader exports)

    def error(self, message: str, *, index: int | None = None, field: str | None = None) -> BarDataError:
        if index is None:
            return BarDataError(self.source, message, field=field)
        if self.text_file:
            return BarDataError(self.source, message, line=int(index) + 1 + self.header_lines, field=field)
        return BarDataError(self.source, message, row=int(index) + 1, field=field)


def require_columns(columns: list[str], required: tuple[str, ...], locator: RowLocator) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise locator.error(f"missing column(s) {missing}; found {columns}")


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def validate_prices_and_volume(
    *, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, locator: RowLocator
) -> None:
    """Raise on the first bad value in file order (the earliest line; within a line, the first check
    below). Arrays are float64 in the file's row order. Fractional volumes are accepted and later
    rounded to whole shares."""
    checks = []  # (mask, field, message for index i)
    for name, values in (("open", open_), ("high", high), ("low", low), ("close", close)):
        checks.append((~np.isfinite(values), name, lambda i, v=values: f"price is {v[i]} (NaN or missing)"))
        checks.append((values <= 0, name, lambda i, v=values: f"non-positive price {v[i]}"))
    checks.append((high < low, "high", lambda i: f"high {high[i]} is below low {low[i]}"))
    for name, values in (("open", open_), ("close", close)):
        checks.append((
            (values < low) | (values > high), name,
            lambda i, n=name, v=values: f"{n} {v[i]} lies outside [low, high] = [{low[i]}, {high[i]}]",
        ))
    checks.append((~np.isfinite(volume), "volume", lambda i: "volume is NaN or missing"))
    checks.append((volume < 0, "volume", lambda i: f"negative volume {volume[i]}"))
    first_hits = [(index, order) for order, (mask, _, _) in enumerate(checks) if (index := _first(mask)) is not None]
    if first_hits:
        index, order = min(first_hits)
        _, field, message = checks[order]
        raise locator.error(message(index), index=index, field=field)


def sort_order(ts_ns: np.ndarray, group: np.ndarray, locator: RowLocator, ts_field: str) -> np.ndarray:
    """Indices that put rows in (group, ts) order, after checking the file's own order.

    Within each group (symbol) the timestamps must be strictly increasing, or strictly decreasing
    throughout (newest first). Duplicates and any other disorder raise, naming the line.
    """
    order = np.lexsort((ts_ns, group))
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        if idx.size < 2:
            continue
        diffs = np.diff(ts_ns[idx])
        if (j := _first(diffs == 0)) is not None:
            raise locator.error(
                f"duplicated timestamp (same as {'line' if locator.text_file else 'row'} "
                f"{idx[j] + (1 + locator.header_lines if locator.text_file else 1)})",
                index=idx[j + 1],
                field=ts_field,
            )
        if np.all(diffs > 0) or np.all(diffs < 0):
            continue
        # Mixed directions: blame the first step that goes against the file's majority direction.
        ascending = np.count_nonzero(diffs > 0) >= np.count_nonzero(diffs < 0)
        j = _first(diffs < 0) if ascending else _first(diffs > 0)
        raise locator.error(
            f"timestamp out of order ({'earlier' if ascending else 'later'} than the row before it; "
            "rows must be sorted by time, oldest or newest first)",
            index=idx[j + 1],
            field=ts_field,
        )
    return order
