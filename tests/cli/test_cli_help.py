"""``--help`` answers at once and documents every argument; the names it offers are the real ones."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlexec.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("ray", "torch", "matplotlib", "numba", "pyarrow", "gymnasium", "rlexec.evaluation", "rlexec.training",
         "rlexec.market", "rlexec.policies", "rlexec.envs")


def test_building_the_parser_imports_no_heavy_package():
    # a fresh interpreter: this test process has imported everything already
    code = ("import json, sys; import rlexec.cli.main as m; m.build_parser(); "
            f"print(json.dumps([name for name in {list(HEAVY)!r} if name in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_names_the_parsers_offer_are_the_registries():
    from rlexec.cli import ACTOR_KINDS, LABELS, REGIMES
    from rlexec.data.loaders import LABELS as LOADER_LABELS
    from rlexec.market import REGIMES as MARKET_REGIMES
    from rlexec.policies.actors import ACTOR_KINDS as POLICY_ACTOR_KINDS

    assert REGIMES == MARKET_REGIMES
    assert ACTOR_KINDS == POLICY_ACTOR_KINDS
    assert LABELS == LOADER_LABELS


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for every parser and sub-parser below ``parser``."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


COMMANDS = [path for path, _ in _parsers(build_parser()) if path]


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_and_argument_is_described(path):
    parser = dict(_parsers(build_parser()))[path]
    assert parser.description, f"rlexec {' '.join(path)} has no description"
    undocumented = [action.dest for action in parser._actions
                    if not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert undocumented == [], f"rlexec {' '.join(path)}: no help for {undocumented}"


def _help_text(capsys, *args: str) -> str:
    """``rlexec ARGS --help`` as one line of single-spaced words."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*args, "--help"])
    assert info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_says_what_the_seeds_seed(capsys):
    assert ("--seed SEED seed of the random orders and, with --env lob, of the episodes (episode i uses seed + i)"
            in _help_text(capsys, "evaluate"))
    assert "--seed SEED seed of everything random in the day" in _help_text(capsys, "simulate")


@pytest.mark.parametrize("command", ["validate", "convert"])
def test_data_help_documents_the_files(capsys, command):
    assert "FILE minute-bar files: CSV, CSV.gz or parquet" in _help_text(capsys, "data", command)
