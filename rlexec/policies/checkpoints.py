"""Reading what a training run left behind: which checkpoint a path means, the run's config, the RLModule.

Loads without a running Ray (RLlib's classes are imported to unpickle the module, nothing is started).
Writing checkpoints is the training driver's job (:mod:`rlexec.training.checkpoints`).

A run folder (``runs/train/<name>/<time>-<hash>/``) holds ``checkpoints/iter_000010/`` (RLlib's
``Algorithm.save_to_path`` layout) and ``checkpoints/latest.json`` naming the newest complete one.
A checkpoint is written to ``iter_N.partial`` and renamed only when complete, so a run killed while
saving still resumes from its previous checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path

from rlexec.errors import RlexecError
from rlexec.provenance import write_atomic

LATEST = "latest.json"
CHECKPOINT_NAME = re.compile(r"iter_(\d+)")  # a complete checkpoint folder: iter_<training iteration>
REPLACED = ".replaced"  # a complete checkpoint set aside while its replacement moves in
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
    marker = folder / LATEST
    if marker.exists():
        try:
            name = json.loads(marker.read_text())["path"]
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{marker}: corrupt checkpoint marker (expected JSON with 'path')") from None
        if not isinstance(name, str) or not CHECKPOINT_NAME.fullmatch(name):
            raise CheckpointError(f"{marker}: names {name!r}, not a checkpoint folder (iter_N) of {folder}")
        if (folder / name).is_dir():
            return folder / name
    complete: dict[int, Path] = {}
    for candidate in folder.iterdir() if folder.is_dir() else []:
        match = CHECKPOINT_NAME.fullmatch(candidate.name.removesuffix(REPLACED))
        if match and candidate.is_dir() and (candidate.name == match[0] or int(match[1]) not in complete):
            complete[int(match[1])] = candidate
    if not complete:
        raise CheckpointError(f"{path}: no complete checkpoint in it")
    return complete[max(complete)]


def checkpoint_iteration(checkpoint: str | os.PathLike) -> int | None:
    """The training iteration of a checkpoint folder ``iter_N``; None for any other path."""
    match = CHECKPOINT_NAME.fullmatch(Path(checkpoint).name)
    return int(match[1]) if match else None


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


WEIGHTS_FILE, MANIFEST_FILE = "weights.pt", "rlexec_module.json"
MANIFEST_FORMAT = "rlexec.module_weights"
TRUSTED_CLASS_PREFIXES = ("rlexec.", "ray.rllib.")


def load_module(path: str | os.PathLike, module_id: str = DEFAULT_MODULE_ID, *, trusted: bool = False):
    """A trained RLModule (the Learner's full copy), usable without Ray running.

    By default only **weights** are read: the module is rebuilt from ``rlexec_module.json`` (its class,
    which must be rlexec's or RLlib's, its spaces and model config) and ``weights.pt`` is loaded with
    ``torch.load(weights_only=True)``, which cannot run code. ``rlexec train`` writes both next to every
    checkpoint. An RLlib checkpoint without them is loaded only with ``trusted=True``: that unpickles
    it, and a pickle can run any code, so trust only checkpoints you made (a run folder is code).
    """
    folder = module_checkpoint(path, module_id)
    if (folder / MANIFEST_FILE).exists():
        return _load_weights(folder)
    if not trusted:
        raise CheckpointError(
            f"{folder}: no {MANIFEST_FILE} (weights-only copy) next to this checkpoint; loading it would unpickle it, "
            "which runs code from the file. If you made it yourself, load it trusted (--trust-checkpoint)")
    from ray.rllib.core.rl_module.rl_module import RLModule

    try:
        module = RLModule.from_checkpoint(str(folder.resolve()))
    except Exception as exc:  # pickle, torch and pyarrow all raise their own types for a damaged file
        raise CheckpointError(f"{folder}: cannot load the RLModule ({type(exc).__name__}: {exc})") from None
    if not hasattr(module, "eval"):  # RLlib falls back to a bare RLModule when the pickled class is unusable
        raise CheckpointError(f"{folder}: the checkpoint does not hold a torch RLModule ({type(module).__name__})")
    module.eval()
    return module


def write_module_weights(folder: str | os.PathLike, module_id: str = DEFAULT_MODULE_ID) -> Path:
    """Next to an RLlib module checkpoint the caller has just written (so it trusts it): ``weights.pt``
    (the state dict) and ``rlexec_module.json`` (class, spaces, model config), for :func:`load_module`."""
    import torch

    folder = module_checkpoint(folder, module_id)
    module = load_module(folder, trusted=True)
    cls = type(module)
    manifest = {
        "format": MANIFEST_FORMAT, "version": 1, "class": f"{cls.__module__}:{cls.__qualname__}",
        "observation_space": _space_to_json(module.observation_space),
        "action_space": _space_to_json(module.action_space),
        "model_config": _plain(module.model_config),
    }
    text = json.dumps(manifest, indent=2)  # fails here, before anything is written, on a config JSON cannot hold
    write_atomic(folder / WEIGHTS_FILE, lambda tmp: torch.save(module.state_dict(), tmp))
    write_atomic(folder / MANIFEST_FILE, lambda tmp: tmp.write_text(text))
    return folder


def _load_weights(folder: Path):
    import importlib

    import torch

    manifest_path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        module_name, _, class_name = manifest["class"].partition(":")
        if not module_name.startswith(TRUSTED_CLASS_PREFIXES):
            raise ValueError(f"class {manifest['class']!r} is not rlexec's or RLlib's")
        cls = getattr(importlib.import_module(module_name), class_name)
        with _quiet_rllib():  # RLlib 2.60 warns about its own internal RLModuleConfig use on every build
            module = cls(observation_space=_space_from_json(manifest["observation_space"]),
                         action_space=_space_from_json(manifest["action_space"]),
                         inference_only=False, model_config=manifest["model_config"])
    except (ValueError, KeyError, TypeError, AttributeError, ImportError) as exc:
        raise CheckpointError(f"{manifest_path}: cannot rebuild the module ({type(exc).__name__}: {exc})") from None
    try:
        state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    except Exception as exc:  # torch raises several types (pickle, zip, runtime) for damaged or mismatched weights
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: cannot load the weights ({type(exc).__name__}: {exc})") from None
    module.eval()
    return module


@contextlib.contextmanager
def _quiet_rllib():
    loggers = [logging.getLogger(name) for name in ("ray.rllib", "ray._common.deprecation")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _space_to_json(space) -> dict:
    import gymnasium as gym
    import numpy as np

    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        def bound(values):
            values = np.asarray(values, dtype=np.float64)
            flat = np.unique(values)
            return float(flat[0]) if flat.size == 1 else values.tolist()  # JSON writes inf as Infinity
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": bound(space.low), "high": bound(space.high)}
    raise TypeError(f"cannot describe a {type(space).__name__} space in the weights manifest")


def _space_from_json(data: dict):
    import gymnasium as gym
    import numpy as np

    if data["type"] == "Discrete":
        return gym.spaces.Discrete(int(data["n"]))
    if data["type"] == "Box":
        dtype = np.dtype(data["dtype"])
        shape = tuple(int(n) for n in data["shape"])
        low, high = (np.broadcast_to(np.asarray(data[k], dtype=dtype), shape) for k in ("low", "high"))
        return gym.spaces.Box(low, high, shape=shape, dtype=dtype)
    raise ValueError(f"unknown space type {data['type']!r}")


def _plain(value):
    """A model config as JSON-able data (RLlib may hand a dataclass)."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value))
