"""Reading a run folder back: what kind of run it was, its records, and a trained policy's budget.

Every ``rlexec`` command writes a run folder (:func:`rlexec.provenance.new_run_dir`): ``run.json``
(config, seed, versions, git commit, command) and the command's results. ``rlexec train`` adds
``config.yaml``, ``progress.jsonl`` (one line per iteration), ``checkpoints/iter_N`` and
``summary.json``; ``rlexec evaluate`` adds ``summary.json`` with a ``results`` table. Reports and table
labels read run folders through here, and tolerate what a killed or older run leaves: missing files,
a half-written last line of ``progress.jsonl``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rlexec.errors import ConfigError
from rlexec.policies.checkpoints import checkpoint_iteration

RECORD_FILES = ("run.json", "config.yaml", "summary.json", "rlexec_run.json")


def read_json(path: str | os.PathLike) -> dict[str, Any] | None:
    """A JSON object file, or None if it is missing; a corrupt one is a :class:`ConfigError` naming it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_progress(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The lines of ``progress.jsonl`` that are iterations (``resumed`` markers and a line cut short by a
    kill are left out)."""
    path = Path(run_dir) / "progress.jsonl"
    if not path.is_file():
        return []
    lines = []
    for text in path.read_text().splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and "iteration" in line and "event" not in line:
            lines.append(line)
    return lines


def run_kind(run_dir: str | os.PathLike) -> str:
    """``evaluate``, ``train``, ``simulate``, or the name of the folder the run sits in (a kind this
    module does not know, rendered generically)."""
    run_dir = Path(run_dir)
    if "results" in (read_json(run_dir / "summary.json") or {}):
        return "evaluate"
    if (run_dir / "progress.jsonl").is_file() or (run_dir / "checkpoints").is_dir():
        return "train"
    if (run_dir / "tape.parquet").is_file():
        return "simulate"
    return run_dir.parent.name or "run"


def require_run_folder(run_dir: str | os.PathLike) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder")
    if not any((run_dir / name).is_file() for name in RECORD_FILES):
        raise ConfigError(f"{run_dir}: not a run folder (none of {', '.join(RECORD_FILES)} in it)")
    return run_dir


def budget_label(iterations: int | None, env_steps: float | None) -> str:
    """``2 it., 4.1k steps``: how much training a policy had, short enough for a table row."""
    parts = []
    if iterations is not None:
        parts.append(f"{iterations} it.")
    if env_steps is not None:
        steps = float(env_steps)
        if steps >= 1e6:
            parts.append(f"{steps / 1e6:.3g}M steps")
        elif steps >= 1e3:
            parts.append(f"{steps / 1e3:.3g}k steps")
        else:
            parts.append(f"{steps:.0f} steps")
    return ", ".join(parts) if parts else "budget unknown"


def training_record(run_folder: str | os.PathLike | None, source: str | os.PathLike | None) -> dict[str, Any]:
    """What an evaluation records of a trained policy: the checkpoint a path resolved to, its run folder,
    that run's git commit, and the training budget up to the checkpoint (iterations, env steps sampled)."""
    record: dict[str, Any] = {"checkpoint": str(Path(source).resolve()) if source else None}
    if run_folder is None:
        return record | {"budget": budget_label(None, None)}
    run_folder = Path(run_folder)
    record["run_folder"] = str(run_folder.resolve())
    run = _quiet(read_json, run_folder / "run.json") or {}
    record["git_commit"] = run.get("git_commit")
    progress = read_progress(run_folder)
    iteration = checkpoint_iteration(source) if source else None
    if iteration is None:  # an exported expert: the budget of the whole run
        summary = _quiet(read_json, run_folder / "summary.json") or {}
        iteration = summary.get("iterations") or (progress[-1]["iteration"] if progress else None)
    at = [line for line in progress if line.get("iteration") == iteration]
    record["iterations"] = iteration
    record["env_steps"] = at[-1].get("env_steps_sampled_lifetime") if at else None
    record["budget"] = budget_label(iteration, record["env_steps"])
    return record


def _quiet(read, path: Path):
    """A label is not worth failing an evaluation for: a corrupt record reads as missing."""
    try:
        return read(path)
    except ConfigError:
        return None
