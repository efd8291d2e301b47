"""Writing and restoring algorithm checkpoints in a run folder (reading them is :mod:`rlexec.policies.checkpoints`).

A checkpoint is written to ``iter_N.partial`` and renamed only when complete, so a run killed while
saving still resumes from its previous checkpoint; ``checkpoints/latest.json`` names the newest.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

from rlexec.policies.checkpoints import (
    LATEST,
    MODULE_SUBPATH,
    CheckpointError,
    latest_checkpoint,
    write_module_weights,
)


def save_algorithm(algo, path: str | os.PathLike) -> Path:
    """RLlib's checkpoint, plus a weights-only copy of every module in it, so that evaluating a trained
    policy never has to unpickle the checkpoint (:func:`rlexec.policies.checkpoints.load_module`)."""
    path = Path(path)
    algo.save_to_path(str(path.resolve()))
    modules = path / MODULE_SUBPATH
    for folder in sorted(p for p in modules.iterdir() if p.is_dir()) if modules.is_dir() else []:
        try:
            write_module_weights(folder, folder.name)
        except (CheckpointError, TypeError, ValueError) as exc:  # e.g. a model config JSON cannot hold
            warnings.warn(f"{folder}: no weights-only copy ({exc}); it loads only with --trust-checkpoint")
    return path


def save_checkpoint(algo, run_dir: Path, iteration: int, keep: int = 3) -> Path:
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"iter_{iteration:06d}"
    partial = folder / f"iter_{iteration:06d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    save_algorithm(algo, partial)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    tmp = folder / (LATEST + ".partial")
    tmp.write_text(json.dumps({"iteration": iteration, "path": final.name}) + "\n")
    os.replace(tmp, folder / LATEST)
    for old in sorted(folder.glob("iter_[0-9]*"))[:-keep] if keep > 0 else []:
        if old.is_dir() and not old.name.endswith(".partial"):
            shutil.rmtree(old, ignore_errors=True)
    return final


def restore_algorithm(algo, path: str | os.PathLike) -> Path:
    checkpoint = latest_checkpoint(path)
    try:
        algo.restore_from_path(str(checkpoint.resolve()))
    except Exception as exc:
        raise CheckpointError(f"{checkpoint}: cannot restore the algorithm ({type(exc).__name__}: {exc})") from None
    return checkpoint
