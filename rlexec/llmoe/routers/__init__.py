"""Routers by name: the YAML's ``routers`` list names entries of :data:`ROUTERS` (or ``package.module:Class``).

Every router class is built as ``cls(seed=seed, **options)`` (``options`` = the YAML mapping of that
router) and follows :class:`rlexec.llmoe.routers.base.Router`. Modules are imported only when a
router is built, so the text/LLM routers' optional dependencies are not needed for the numeric one.
"""

from __future__ import annotations

import importlib
from typing import Any

from rlexec.errors import ConfigError
from rlexec.llmoe.routers.base import ROUTES, Route, RouteDecision, Router, decision_from_probability, routing_labels

ROUTERS: dict[str, str] = {
    "numeric": "rlexec.llmoe.routers.numeric:NumericRouter",
    "text_embedding": "rlexec.llmoe.routers.text_embedding:TextEmbeddingRouter",
    "llm": "rlexec.llmoe.routers.llm:LLMRouter",
}

__all__ = ["ROUTERS", "ROUTES", "Route", "RouteDecision", "Router", "decision_from_probability", "make_router",
           "router_class", "routing_labels"]


def router_class(kind: str) -> type:
    """The class registered as ``kind``, or the ``package.module:Class`` it spells."""
    target = ROUTERS.get(kind, kind)
    if ":" not in target:
        raise ConfigError(f"routers: unknown router {kind!r}; known: {sorted(ROUTERS)} or 'package.module:Class'")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"routers: router {kind!r} cannot be imported ({exc}); "
                          f"the text routers need `pip install rlexec[text]`") from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ConfigError(f"routers: {module_name} has no class {class_name!r} (router {kind!r})") from None


def make_router(kind: str, options: dict[str, Any] | None = None, seed: int = 0) -> Router:
    """A fresh, unfitted router: ``router_class(kind)(seed=seed, **options)``."""
    cls = router_class(kind)
    try:
        return cls(seed=seed, **dict(options or {}))
    except TypeError as exc:
        raise ConfigError(f"routers.{kind}: {exc}") from None
