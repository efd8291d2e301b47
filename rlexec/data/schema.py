"""The one bar schema every rlexec component reads.

=========  =====================  ==============================================================
column     type                   meaning
=========  =====================  ==============================================================
symbol     string                 ticker
ts         timestamp[ns, UTC]     bar **start** (a bar covers [ts, ts + 1 minute))
open       float64                first trade price of the minute, USD
high       float64                highest trade price, USD
low        float64                lowest trade price, USD
close      float64                last trade price, USD
volume     int64                  shares traded in the minute (0 is allowed: a real bar, no trades)
=========  =====================  ==============================================================

Rows are sorted by (symbol, ts) with no duplicates.
"""

from __future__ import annotations

import pyarrow as pa

BAR_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.int64(), nullable=False),
    ]
)

PRICE_COLUMNS = ("open", "high", "low", "close")
