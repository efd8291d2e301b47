"""Speed of the market simulator: one JSON line on stdout.

Measures full default-population days (after a JIT warm-up day) and, as a reference, the very
same code interpreted by Python (``NUMBA_DISABLE_JIT=1`` in a subprocess) on the first minutes of
a session, next to the compiled code on that same slice.

    python benchmarks/bench_market.py [--days 3] [--reference-minutes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rlexec.market.config import NS_PER_SECOND, MarketConfig  # noqa: E402
from rlexec.market.simulator import MarketSimulator  # noqa: E402

TARGET_SECONDS_PER_DAY = 0.5


def timed_run(seed: int, minutes: float | None) -> tuple[float, int]:
    """(seconds in the event loop, events processed) for one session or its first minutes."""
    config = MarketConfig()
    sim = MarketSimulator(config, seed)
    end = config.session.end_ns if minutes is None else config.session.start_ns + int(minutes * 60 * NS_PER_SECOND)
    started = time.perf_counter()
    sim.run_until(end)
    return time.perf_counter() - started, sim.events_processed


def interpreted_reference(minutes: float) -> tuple[float, int]:
    """The same slice with numba disabled, in a fresh interpreter."""
    code = (f"import sys, json; sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r});"
            f"import bench_market as b; print(json.dumps(b.timed_run(0, {minutes!r})))")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    seconds, events = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="timed full days (after one warm-up day)")
    parser.add_argument("--reference-minutes", type=float, default=5.0, help="session slice for the reference")
    args = parser.parse_args()

    timed_run(0, None)  # JIT compile (or load the cache) and warm up
    runs = [timed_run(seed, None) for seed in range(1, args.days + 1)]
    seconds_per_day = sum(s for s, _ in runs) / len(runs)
    events_per_day = sum(e for _, e in runs) / len(runs)

    compiled_slice_s, slice_events = timed_run(0, args.reference_minutes)
    python_slice_s, python_events = interpreted_reference(args.reference_minutes)
    compiled_rate = slice_events / compiled_slice_s
    python_rate = python_events / python_slice_s
    print(json.dumps({
        "benchmark": "rlexec.market full default-population day (6.5 h, 1,126 agents)",
        "seconds_per_day": round(seconds_per_day, 4),
        "events_per_day": int(events_per_day),
        "events_per_second": int(events_per_day / seconds_per_day),
        "days_timed": args.days,
        "reference": f"same code with NUMBA_DISABLE_JIT=1 (pure Python), first {args.reference_minutes:g} min of seed 0",
        "reference_events": python_events,
        "reference_events_per_second": int(python_rate),
        "compiled_events_per_second_same_slice": int(compiled_rate),
        "speedup_vs_reference": round(compiled_rate / python_rate, 1),
        "target_seconds_per_day": TARGET_SECONDS_PER_DAY,
        "target_met": seconds_per_day <= TARGET_SECONDS_PER_DAY,
    }))


if __name__ == "__main__":
    main()
