"""The one list of training algorithms and RL modules that ``rlexec train`` and ``rlexec tune`` read.

Each algorithm folder (``rlexec/algorithms/<name>/``) registers itself in its ``__init__.py``::

    register_algorithm(AlgorithmEntry(
        name="opd",
        config_class="rlexec.algorithms.opd.config:OPDConfig",     # an RLlib AlgorithmConfig subclass
        after_training="rlexec.algorithms.opd.export:after",         # optional: (algo, run_dir) -> dict
    ))
    register_module(ModuleEntry(name="opd", spec_builder="rlexec.algorithms.opd.module:module_spec"))

References are ``"package.module:attribute"`` strings, resolved on first use, so listing the
algorithms imports neither Ray nor torch. :func:`algorithm_names` imports every sub-package of
``rlexec.algorithms`` once (discovery), so adding an algorithm is adding a folder: nothing outside
it names the new algorithm. A config may also name an algorithm outside rlexec as
``"package.module:ConfigClass"``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlexec.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class AlgorithmEntry:
    name: str
    config_class: str  # "module:Class" of the RLlib AlgorithmConfig
    after_training: str | None = None  # "module:function" called as f(algo, run_dir) -> dict at the end of a run
    description: str = ""

    def load_config_class(self) -> type:
        return resolve(self.config_class, f"algorithm {self.name!r}: config class")

    def load_after_training(self) -> Callable[..., dict[str, Any]] | None:
        return resolve(self.after_training, f"algorithm {self.name!r}: after_training") if self.after_training else None


@dataclass(frozen=True, kw_only=True)
class ModuleEntry:
    """An RLModule choice for ``rl_module: {module: <name>}``: ``spec_builder(model_config, env_config)``
    returns the ``RLModuleSpec`` (it may copy the env's shape into the model config)."""

    name: str
    spec_builder: str
    description: str = ""

    def build_spec(self, model_config: dict[str, Any], env_config: dict[str, Any]):
        return resolve(self.spec_builder, f"rl_module {self.name!r}: spec builder")(model_config, env_config)


_ALGORITHMS: dict[str, AlgorithmEntry] = {}
_MODULES: dict[str, ModuleEntry] = {}
_discovered = False


def register_algorithm(entry: AlgorithmEntry) -> AlgorithmEntry:
    _register(_ALGORITHMS, entry, "algorithm")
    return entry


def register_module(entry: ModuleEntry) -> ModuleEntry:
    _register(_MODULES, entry, "rl_module")
    return entry


def _register(table: dict, entry, kind: str) -> None:
    known = table.get(entry.name)
    if known is not None and known != entry:
        raise ConfigError(f"{kind} {entry.name!r} is registered twice, differently: {known} and {entry}")
    table[entry.name] = entry


def discover() -> None:
    """Import every sub-package of ``rlexec.algorithms`` once, so each registers itself."""
    global _discovered
    if _discovered:
        return
    import rlexec.algorithms as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.ispkg:
            importlib.import_module(f"{package.__name__}.{info.name}")
    _discovered = True


def algorithm_names() -> list[str]:
    discover()
    return sorted(_ALGORITHMS)


def module_names() -> list[str]:
    discover()
    return sorted(_MODULES)


def get_algorithm(name: str, source: str = "<config>") -> AlgorithmEntry:
    """The entry for a registered name, or an external ``"package.module:ConfigClass"``."""
    discover()
    if name in _ALGORITHMS:
        return _ALGORITHMS[name]
    if isinstance(name, str) and ":" in name:
        entry = AlgorithmEntry(name=name, config_class=name)
        resolve(name, f"{source}: algorithm")  # fail now, naming the file, not when the run starts
        return entry
    raise ConfigError(f"{source}: algorithm must be one of {algorithm_names()} or 'package.module:ConfigClass', "
                      f"got {name!r}")


def get_module(name: str, source: str = "<config>") -> ModuleEntry:
    discover()
    if name in _MODULES:
        return _MODULES[name]
    raise ConfigError(f"{source}: rl_module.module must be one of {['default', *module_names()]}, got {name!r}")


def resolve(reference: str, what: str) -> Any:
    """``"package.module:attribute"`` -> the attribute; a clear error naming ``what`` if it is missing."""
    module_name, _, attribute = reference.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {reference!r} cannot be loaded ({type(exc).__name__}: {exc})") from None
