"""The SIP mixture as a policy of ``rlexec regimes`` (``kind: sip``).

```yaml
- {name: sip, kind: sip, run: runs/sip/sip/<time>-<hash>, mixture: blend}
```

``run`` is an ``rlexec sip`` run folder: its final weights of the evaluated regime, over the same
expert folders it was fitted with (its recorded config). ``mixture`` picks the execution of spec 1.3:
``blend`` (c, deterministic; the spec's [DEFAULT] for reporting), ``episode`` (a) or ``step`` (b);
``sample_seed`` seeds (a) and (b) (default: the regime's first episode seed). The regime table plots
the weights over the fitting episodes (``mixture_weights``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rlexec.algorithms.sip.driver import SIPRunConfig, load_weights
from rlexec.algorithms.sip.mixture import MIXTURE_KINDS, make_mixture
from rlexec.errors import ConfigError


class _MixtureWithHistory:
    """A mixture actor that also reports its weights over the SIP fitting episodes."""

    def __init__(self, actor: Any, history: dict[str, np.ndarray]):
        self._actor = actor
        self._history = history
        self.name = actor.name

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_"):
            raise AttributeError(item)
        return getattr(self._actor, item)

    def actions(self, observations: np.ndarray) -> np.ndarray:
        return self._actor.actions(observations)

    def mixture_weights(self) -> dict[str, np.ndarray]:
        return self._history


def weights_history(run: Path, regime: str, names: list[str]) -> dict[str, np.ndarray]:
    """Each expert's SIP weight after 0, 1, ... fitting episodes of ``regime``."""
    import pyarrow.parquet as pq

    table = pq.read_table(run / "weights.parquet").to_pydict()
    rows = [i for i, r in enumerate(table["regime"]) if r == regime]
    order = sorted(rows, key=lambda i: table["episodes_seen"][i])
    return {name: np.asarray([table[f"w_{name}"][i] for i in order], dtype=np.float64) for name in names}


def sip_policy(spec: Any, context: Any) -> Any:
    """Factory of ``kind: sip`` (see the module docstring)."""
    from rlexec.policies.expert import ExpertPolicy

    run = context.path(spec.param("run"), policy=spec.name)
    names, weights = load_weights(run)
    if context.regime not in weights:
        raise ConfigError(f"policy {spec.name!r}: the SIP run {run} has no weights for regime {context.regime!r} "
                          f"(has {sorted(weights)})")
    kind = spec.param("mixture", "blend")
    if kind not in MIXTURE_KINDS:
        raise ConfigError(f"policy {spec.name!r}: mixture must be one of {list(MIXTURE_KINDS)}, got {kind!r}")
    try:
        config = SIPRunConfig.from_dict(json.loads((run / "run.json").read_text())["config"], source=str(run / "run.json"))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"policy {spec.name!r}: {run / 'run.json'}: unreadable SIP run record ({exc})") from None
    paths = config.expert_paths(context.regime)
    experts = [ExpertPolicy.load(paths[name]) for name in names]
    actor = make_mixture(kind, weights[context.regime], experts, seed=int(spec.param("sample_seed", context.seed)),
                         size_multipliers=context.env_config.size_multipliers, name=spec.name)
    return _MixtureWithHistory(actor, weights_history(run, context.regime, names))
