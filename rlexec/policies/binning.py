"""Observation -> state index for the Q-table: named features cut into bins, combined as a mixed-radix number.

Features are named by the env's ``observation_names`` (the LOB env's 16 ``OBSERVATION_NAMES``), so a
binning written as ``{feature name: edges}`` follows the env, not positions. The default
(:data:`DEFAULT_LOB_EDGES`, spec 1.1 rlexec note 1; the edges are rlexec's, measured on regime
``baseline``, see :mod:`rlexec.algorithms.qlearning.config`) applies to an env with those names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from rlexec.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class FeatureBins:
    """One observation feature cut into ``len(edges) + 1`` bins."""

    name: str  # the feature's name in the env's observation_names (a label when the index is explicit)
    index: int  # position of the feature in the observation vector
    edges: tuple[float, ...]  # strictly increasing cut points, in the feature's unit; bin k = [edges[k-1], edges[k])

    def __post_init__(self) -> None:
        edges = tuple(float(e) for e in self.edges)
        object.__setattr__(self, "edges", edges)
        if self.index < 0:
            raise ConfigError(f"binning.{self.name}.index must be >= 0, got {self.index}")
        if any(not math.isfinite(e) for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ConfigError(f"binning.{self.name}.edges must be finite and strictly increasing, got {list(edges)}")

    @property
    def num_bins(self) -> int:
        return len(self.edges) + 1


DECILES = tuple(k / 10 for k in range(1, 10))
# rlexec defaults (spec 1.1 rlexec note 1 gives the bin counts; the edges are ours, see module docstring).
DEFAULT_LOB_EDGES: Mapping[str, tuple[float, ...]] = MappingProxyType({
    "holdings_pct": DECILES,  # executed / Q, 10 equal bins
    "time_pct": DECILES,  # elapsed fraction, 10 equal bins
    "diff_pct": (-0.05, -0.005, 0.005, 0.05),  # holdings - time: far behind / behind / on / ahead / far ahead
    "imbalance_1": (-1 / 3, 1 / 3),  # top-of-book (bid - ask) / (bid + ask): ask-heavy / balanced / bid-heavy
    "spread_bps": (1.5, 2.5),  # 1 tick / 2 ticks / 3+ ticks at ~$100
})


@dataclass(frozen=True)
class StateBinning:
    """Observation -> state index: per-feature bins combined as a mixed-radix number.

    >>> x, y = FeatureBins(name="x", index=0, edges=(0.5,)), FeatureBins(name="y", index=1, edges=(0.0, 1.0))
    >>> b = StateBinning((x, y))
    >>> b.num_states, b.index(np.array([[1.0, 0.5], [-3.0, 9.0]])).tolist()
    (6, [4, 2])
    """

    features: tuple[FeatureBins, ...]

    def __post_init__(self) -> None:
        if not self.features:
            raise ConfigError("binning: at least one feature is needed")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ConfigError(f"binning: feature names must be unique, got {names}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(f.num_bins for f in self.features)

    @property
    def num_states(self) -> int:
        return int(np.prod(self.shape))

    @property
    def strides(self) -> tuple[int, ...]:
        """Place values of the mixed-radix index (the last feature varies fastest)."""
        return tuple(int(np.prod(self.shape[k + 1:])) for k in range(len(self.shape)))

    def bins(self, observations: np.ndarray) -> np.ndarray:
        """Per-feature bin numbers, shape (N, num_features)."""
        obs = np.atleast_2d(np.asarray(observations))
        if not np.issubdtype(obs.dtype, np.floating):
            obs = obs.astype(np.float64)
        # Edges in the observations' precision, as in index_torch, so that both agree at the edges.
        return np.stack([np.digitize(obs[:, f.index], np.asarray(f.edges, dtype=obs.dtype)) for f in self.features],
                        axis=-1)

    def index(self, observations: np.ndarray) -> np.ndarray:
        """State index of each observation row (int64, shape (N,))."""
        return (self.bins(observations) * np.asarray(self.strides)).sum(axis=-1).astype(np.int64)

    def index_torch(self, observations: torch.Tensor) -> torch.Tensor:
        """The same index computed in torch (``bucketize(right=True)`` == ``np.digitize``)."""
        obs = observations.reshape(-1, observations.shape[-1])
        index = torch.zeros(obs.shape[0], dtype=torch.long, device=obs.device)
        for feature, stride in zip(self.features, self.strides):
            edges = torch.tensor(feature.edges, dtype=obs.dtype, device=obs.device)
            index += torch.bucketize(obs[:, feature.index].contiguous(), edges, right=True) * stride
        return index

    def to_dict(self) -> dict[str, Any]:
        return {"features": [{"name": f.name, "index": f.index, "edges": list(f.edges)} for f in self.features]}

    @classmethod
    def named(cls, edges: Mapping[str, Sequence[float]], observation_names: Sequence[str]) -> "StateBinning":
        """Features given by name, placed by the env's ``observation_names``."""
        names = list(observation_names)
        unknown = [n for n in edges if n not in names]
        if unknown:
            raise ConfigError(f"binning: unknown feature(s) {unknown}; the env's observation names are {names}")
        return cls(tuple(FeatureBins(name=n, index=names.index(n), edges=tuple(e)) for n, e in edges.items()))

    @classmethod
    def from_any(cls, value: Any, observation_names: Sequence[str] | None = None) -> "StateBinning":
        """A StateBinning; ``{"features": [{name, index, edges}, ...]}`` or a list of such features (any
        env, positions explicit); or, for an env that declares ``observation_names``, ``None`` (the
        default :data:`DEFAULT_LOB_EDGES`) or a mapping ``{feature name: edges}`` that edits that
        default: a named default feature gets new edges, another name is added, ``None`` drops one."""
        if isinstance(value, StateBinning):
            return value
        if isinstance(value, Mapping) and "features" in value:
            value = value["features"]
        if value is None or isinstance(value, Mapping):
            if observation_names is None:
                raise ConfigError("binning: features given by name need an env that declares observation_names; "
                                  "give a list of {name, index, edges} instead")
            edges = dict(DEFAULT_LOB_EDGES)
            for name, new in (value or {}).items():
                if new is None:
                    edges.pop(name, None)
                else:
                    edges[name] = tuple(new)
            return cls.named(edges, observation_names)
        if isinstance(value, Sequence) and not isinstance(value, str):
            try:
                return cls(tuple(f if isinstance(f, FeatureBins) else FeatureBins(**f) for f in value))
            except TypeError as exc:
                raise ConfigError(f"binning: each feature needs name, index and edges ({exc})") from None
        raise ConfigError(f"binning: expected a StateBinning, a list of features or a mapping, got {value!r}")
