"""write_simulation output files."""

from __future__ import annotations

import pyarrow.parquet as pq

from rlexec.market.report import write_simulation


def test_write_simulation_writes_tables_and_one_page_figure(baseline_day, tmp_path):
    paths = write_simulation(baseline_day, tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"tape.parquet", "book.parquet",
                                                               "minute_bars.parquet", "day.png"}
    assert pq.read_table(paths["tape"]).equals(baseline_day.tape)
    assert pq.read_table(paths["minute_bars"]).num_rows == 390
    assert pq.read_table(paths["book"]).column_names == baseline_day.book.column_names
    png = paths["day"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
