"""Entry point of the ``rlexec`` command. Errors a user can fix print as one line, exit code 2."""

from __future__ import annotations

import argparse
import sys

from rlexec import __version__
from rlexec.errors import RlexecError


def build_parser() -> argparse.ArgumentParser:
    from rlexec.cli import (data, evaluate, figures, foresight, llmoe, logicq, preferences, regimes, report, simulate,
                            sip, train, tune, walkforward)

    parser = argparse.ArgumentParser(prog="rlexec", description="Reinforcement learning for optimal trade execution.")
    parser.add_argument("--version", action="version", version=f"rlexec {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    evaluate.add_parser(subparsers)
    simulate.add_parser(subparsers)
    data.add_parser(subparsers)
    train.add_parser(subparsers)
    tune.add_parser(subparsers)
    report.add_parser(subparsers)
    llmoe.add_parser(subparsers)
    logicq.add_parser(subparsers)
    preferences.add_parser(subparsers)
    regimes.add_parser(subparsers)
    sip.add_parser(subparsers)
    figures.add_parser(subparsers)
    walkforward.add_parser(subparsers)
    foresight.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RlexecError as exc:
        print(f"rlexec: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"rlexec: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlexec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
