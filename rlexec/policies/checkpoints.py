"""Reading what a training run left behind: which checkpoint a path means, the run's config, the RLModule.

Loads without a running Ray (RLlib's classes are imported to unpickle the module, nothing is started).
Writing checkpoints is the training driver's job (:mod:`rlexec.training.checkpoints`).

A run folder (``runs/train/<name>/<time>-<hash>/``) holds ``checkpoints/iter_000010/`` (RLlib's
``Algorithm.save_to_path`` layout) and ``checkpoints/latest.json`` naming the newest complete one.
A checkpoint is written to ``iter_N.partial`` and renamed only when complete, so a run killed while
saving still resumes from its previous checkpoint.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from rlexec.errors import RlexecError

LATEST = "latest.json"
MODULE_SUBPATH = Path("learner_group") / "learner" / "rl_module"
DEFAULT_MODULE_ID = "default_policy"


class CheckpointError(RlexecError):
    """A checkpoint that is missing, incomplete or unreadable; the message names the path."""


def latest_checkpoint(path: str | os.PathLike) -> Path:
    """The algorithm checkpoint a path means: a checkpoint, a run folder (its latest), a checkpoints
    folder, or a folder of runs such as ``runs/train/<name>`` (the newest run's latest).

    ``latest.json`` must name an ``iter_N`` folder of its own checkpoints folder. When the folder it
    names is gone (a run killed while replacing it), the newest complete checkpoint is taken: the
    ``iter_N`` folders, and ``iter_N.replaced`` (a complete one set aside while being replaced) where
    no ``iter_N`` is left.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run folder")
    if (path / "rllib_checkpoint.json").exists() or (path / MODULE_SUBPATH).exists():
        return path
    runs = sorted(p for p in path.iterdir() if (p / "config.yaml").exists() and (p / "checkpoints").is_dir()) \
        if path.is_dir() else []
    if runs and not (path / "checkpoints").is_dir():  # a folder of runs (runs/train/<name>): the newest run
        path = runs[-1]
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    checkpoint_name = re.compile(r"iter_(\d+)")
    marker = folder / LATEST
    if marker.exists():
        try:
            name = json.loads(marker.read_text())["path"]
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{marker}: corrupt checkpoint marker (expected JSON with 'path')") from None
        if not isinstance(name, str) or not checkpoint_name.fullmatch(name):
            raise CheckpointError(f"{marker}: names {name!r}, not a checkpoint folder (iter_N) of {folder}")
        if (folder / name).is_dir():
            return folder / name
    complete: dict[int, Path] = {}
    for candidate in folder.iterdir() if folder.is_dir() else []:
        match = checkpoint_name.fullmatch(candidate.name.removesuffix(".replaced"))
        if match and candidate.is_dir() and (candidate.name == match[0] or int(match[1]) not in complete):
            complete[int(match[1])] = candidate
    if not complete:
        raise CheckpointError(f"{path}: no complete checkpoint in it")
    return complete[max(complete)]


def trained_run(path: str | os.PathLike) -> tuple[Path, dict]:
    """(algorithm checkpoint, the run's config.yaml as a dict) of a run written by ``rlexec train``."""
    import yaml

    checkpoint = latest_checkpoint(path)
    config_file = checkpoint.parent.parent / "config.yaml"  # <run>/checkpoints/iter_N
    if not config_file.exists():
        raise CheckpointError(f"{checkpoint}: no config.yaml in its run folder {config_file.parent}; "
                              "evaluate a checkpoint written by `rlexec train`")
    return checkpoint, yaml.safe_load(config_file.read_text()) or {}


def module_checkpoint(path: str | os.PathLike, module_id: str = DEFAULT_MODULE_ID) -> Path:
    """The RLModule folder inside an algorithm checkpoint (or the path itself if it already is one)."""
    path = Path(path)
    if (path / "module_state.pt").exists() or (path / "module_state.pkl").exists() or path.name == module_id:
        return path
    found = latest_checkpoint(path) / MODULE_SUBPATH / module_id
    if not found.is_dir():
        raise CheckpointError(f"{path}: the checkpoint holds no RLModule {module_id!r} (looked in {found})")
    return found


def load_module(path: str | os.PathLike, module_id: str = DEFAULT_MODULE_ID):
    """A trained RLModule (the Learner's full copy), usable without Ray running."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    folder = module_checkpoint(path, module_id)
    try:
        module = RLModule.from_checkpoint(str(folder.resolve()))
    except Exception as exc:  # pickle, torch and pyarrow all raise their own types for a damaged file
        raise CheckpointError(f"{folder}: cannot load the RLModule ({type(exc).__name__}: {exc})") from None
    module.eval()
    return module
