"""Every example in README.md runs as written (issue 14, "A tool that explains itself").

The README's ```bash blocks are read as a shell reads them (a trailing backslash continues a line, ``#``
starts a comment, ``&&`` chains commands). Each command runs in a temporary folder that links to this
checkout's shipped folders, so relative paths resolve as in a fresh clone and what a command writes
(``runs/``, ``my_regime.yaml``, ...) lands in the temporary folder; ``rlexec`` is this checkout's
``python -m rlexec.cli.main``.

* Quick commands run and must exit 0. A command is quick unless it trains (``train``, ``tune``,
  ``cluster/submit``), needs a trained run (``--policy``) or simulates the LOB market (``simulate``
  without ``--print-config``, ``evaluate --env lob`` without ``--replay``): :func:`is_quick`.
* The others are parsed by the CLI's own parser, and the repository files they name must exist; a
  training config is also loaded with its ``--set`` overrides, which checks every key without Ray.
* The set-up steps (``pip install``, ``pytest``) are CI's: .ci/run runs the README's test command.

The ```python blocks run whole; the ```yaml block is ``examples/evaluate.yaml``; table rows fit 80
columns.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SHIPPED = ("configs", "tune_configs", "examples", "rlexec", "cluster", "benchmarks")
REPO_PATH = re.compile(rf"^({'|'.join(SHIPPED)})/")
SETUP_STEPS = ("python3 -m pip ", "python3 -m pytest")


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)


def commands() -> list[str]:
    """The README's shell commands, in order: continuation lines joined, ``&&`` chains split, set-up
    steps left out."""
    found = []
    for block in fenced_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            found.extend(part.strip() for part in line.split("&&") if not part.strip().startswith(SETUP_STEPS))
    return found


def argv_of(command: str) -> list[str]:
    """The words of ``command`` up to a redirection, comments dropped."""
    words = shlex.split(command, comments=True)
    return words[:words.index(">")] if ">" in words else words


def rlexec_args(command: str) -> list[str]:
    """The arguments a command passes to rlexec (also through ``cluster/submit``)."""
    argv = argv_of(command)
    assert argv[0] in ("rlexec", "cluster/submit"), f"not an rlexec command: {command}"
    return argv[1:]


def is_quick(args: list[str]) -> bool:
    command = args[0]
    if command == "data":
        return True
    if command == "simulate":
        return "--print-config" in args
    if command == "evaluate":
        simulated_lob = "--env" in args and args[args.index("--env") + 1] == "lob" and "--replay" not in args
        return "--policy" not in args and not simulated_lob
    return False


COMMANDS = commands()
QUICK = [c for c in COMMANDS if argv_of(c)[0] == "rlexec" and is_quick(rlexec_args(c))]
OTHERS = [c for c in COMMANDS if c not in QUICK]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A folder that looks like a fresh clone's root: links to the shipped folders, nothing else."""
    root = tmp_path_factory.mktemp("clone")
    for name in SHIPPED:
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    return root


def run_shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    script = f'rlexec() {{ "{sys.executable}" -m rlexec.cli.main "$@"; }}\n{command}\n'
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_readme_has_quick_and_long_examples():
    # the rule above sorts the README as meant: the cheap evaluate/data/simulate examples run
    assert len(QUICK) >= 7 and any(c.startswith("rlexec train") for c in OTHERS)
    assert {rlexec_args(c)[0] for c in QUICK} == {"evaluate", "simulate", "data"}


def _name(command: str) -> str:
    return " ".join(shlex.split(command, comments=True))


@pytest.mark.parametrize("command", QUICK, ids=_name)
def test_quick_example_runs(clone, command):
    result = run_shell(command, clone)
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("command", OTHERS, ids=_name)
def test_long_example_parses(clone, command):
    from rlexec.cli.main import build_parser

    args = rlexec_args(command)
    for word in args + argv_of(command)[:1]:
        if REPO_PATH.match(word):
            assert glob.glob(word, root_dir=clone), f"{command}: {word} does not exist"
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"{command}: rlexec cannot parse it (exit {exc.code})")
    if parsed.command == "train":
        from rlexec.cli.train import parse_overrides
        from rlexec.training.spec import TrainSpec

        TrainSpec.from_yaml(REPO / parsed.config).with_overrides(parse_overrides(parsed.set), origin="--set")


def test_a_command_that_does_not_parse_fails_the_check(clone):
    # the check above can fail: a mistyped option does not parse
    with pytest.raises(pytest.fail.Exception, match="cannot parse"):
        test_long_example_parses(clone, "rlexec train configs/ppo.yaml --lcoal")


@pytest.mark.parametrize("code", fenced_blocks("python"), ids=lambda code: code.splitlines()[0])
def test_python_example_runs(clone, code):
    result = run_shell(f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}", clone)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_config_example_is_the_shipped_file():
    (block,) = fenced_blocks("yaml")
    assert block == (REPO / "examples" / "evaluate.yaml").read_text()


def test_tables_fit_80_columns():
    wide = [f"line {number}: {len(line)} columns" for number, line in enumerate(README.splitlines(), start=1)
            if line.startswith("|") and len(line) > 80]
    assert wide == []
