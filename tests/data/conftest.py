"""Helpers shared by the data-layer tests: small CSV fixtures written under ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest

VENDOR_HEADER = "datetime,open,high,low,close,volume"
RLEXEC_HEADER = "symbol,ts,open,high,low,close,volume"


@pytest.fixture
def write_csv(tmp_path: Path):
    """``write_csv(rows, name=..., header=...)``: write a header and the given data rows, return the path.

    Line numbers follow the loader's convention: the header is line 1, ``rows[k]`` is line ``k + 2``.
    """

    def write(rows: list[str], name: str = "X_1min.csv", header: str = VENDOR_HEADER) -> Path:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n")
        return path

    return write
