"""Writing and restoring algorithm checkpoints in a run folder (reading them is :mod:`rlexec.policies.checkpoints`).

A checkpoint is written to ``iter_N.partial`` and renamed only when complete, so a run killed while
saving still resumes from its previous checkpoint; ``checkpoints/latest.json`` names the newest.
A complete checkpoint is never deleted before its replacement is complete: an existing ``iter_N``
is renamed to ``iter_N.replaced``, the new one moved in, and only then the old one deleted (the
reading side takes ``iter_N.replaced`` when a crash left no ``iter_N``).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from rlexec.policies.checkpoints import (
    LATEST,
    MODULE_SUBPATH,
    REPLACED,
    CheckpointError,
    checkpoint_iteration,
    latest_checkpoint,
    write_module_weights,
)
from rlexec.provenance import write_json_atomic

PARTIAL = ".partial"


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
    partial = final.with_name(final.name + PARTIAL)
    shutil.rmtree(partial, ignore_errors=True)
    save_algorithm(algo, partial)
    # `partial` holds the complete checkpoint here; from the next line on `final` does.
    _move_in(partial, final)
    write_json_atomic({"iteration": iteration, "path": final.name}, folder / LATEST)
    _prune(folder, keep)
    return final


def _move_in(partial: Path, final: Path) -> None:
    """Rename the complete ``partial`` to ``final``, keeping a complete copy at every moment."""
    if not final.exists():
        os.replace(partial, final)
        return
    aside = final.with_name(final.name + REPLACED)
    shutil.rmtree(aside, ignore_errors=True)  # left by an earlier crash; `final` is complete
    os.replace(final, aside)
    os.replace(partial, final)
    shutil.rmtree(aside)


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints, after tidying what killed saves left: copies set
    aside by a replacement are deleted where the replacement is in place, renamed back where a crash
    left none; ``.partial`` folders (never a checkpoint; this run is their only writer) are deleted."""
    for partial in folder.glob("iter_*" + PARTIAL):
        shutil.rmtree(partial, ignore_errors=True)
    for aside in folder.glob("iter_*" + REPLACED):
        original = aside.with_name(aside.name.removesuffix(REPLACED))
        if original.is_dir():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, original)
    complete = sorted((iteration, path) for path in folder.iterdir()
                      if (iteration := checkpoint_iteration(path)) is not None and path.is_dir())
    for _, old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def restore_algorithm(algo, path: str | os.PathLike) -> Path:
    checkpoint = latest_checkpoint(path)
    try:
        algo.restore_from_path(str(checkpoint.resolve()))
    except Exception as exc:
        raise CheckpointError(f"{checkpoint}: cannot restore the algorithm ({type(exc).__name__}: {exc})") from None
    return checkpoint
