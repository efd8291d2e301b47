"""Building the frozen config dataclasses from plain mappings (YAML, RLlib ``env_config``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rlexec.errors import ConfigError

T = TypeVar("T")


def config_from_dict(
    cls: type[T],
    data: Any,
    *,
    sections: Mapping[str, type] | None = None,
    converters: Mapping[str, Callable[[Any], Any]] | None = None,
) -> T:
    """``cls(**data)`` with errors a user can act on.

    Unknown keys raise :class:`ConfigError` naming them and the known ones; a key in ``sections``
    whose value is a mapping becomes that config class in turn; a key in ``converters`` is passed
    through its function first (e.g. list -> tuple). Value checks stay in each class's
    ``__post_init__``.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__}: expected a mapping of fields, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
    kwargs = dict(data)
    for key, section in (sections or {}).items():
        if isinstance(kwargs.get(key), Mapping):
            kwargs[key] = config_from_dict(section, kwargs[key])
    for key, convert in (converters or {}).items():
        if key in kwargs:
            kwargs[key] = convert(kwargs[key])
    return cls(**kwargs)


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (empty file: {}); errors are one line naming the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: {where}invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data
