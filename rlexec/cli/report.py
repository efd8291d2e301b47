"""``rlexec report RUN_DIR``: write RUN_DIR/report.html, one page to open in a browser."""

from __future__ import annotations

import argparse
from pathlib import Path



def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page (report.html) for a run folder",
        description="Render a run folder (evaluate, train, simulate or any other) as RUN_DIR/report.html: its "
        "config, provenance (git commit, versions, command), tables and plots, in one file that opens in a "
        "browser without network access.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, e.g. runs/evaluate/<time>-<hash>")
    p.set_defaults(func=run)


def write_report(run_dir: str | Path) -> Path:
    from rlexec.evaluation.html_report import build_report  # imported here: --help stays fast
    from rlexec.evaluation.run_folders import require_run_folder
    from rlexec.provenance import write_atomic

    run_dir = require_run_folder(run_dir)
    page = build_report(run_dir)
    return write_atomic(run_dir / "report.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))


def run(args: argparse.Namespace) -> int:
    print(write_report(args.run_dir))
    return 0
