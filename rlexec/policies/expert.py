"""Broker experts as policies over the LOB env's shared action space (spec 1.1, issue 9).

:class:`ExpertPolicy` is expert k of the MoE-DPO pipeline: a stochastic policy over the ``1 + 2 S``
shared actions (hold; market or limit at the near touch of ``SIZE_MULTIPLIERS[b]`` x pace), a pure
function of the shared observation (``SHARED_OBSERVATION_NAMES``, which ends in each broker's size
bucket)::

    pi_k(hold | s)          = P_k(hold | s)
    pi_k((b, place) | s)    = P_k(place | s) * P_k(b | s),   place in {market, limit}
    P_k(place | s)          = softmax(Q_k(s, .) / tau_k)                (market, limit, hold)
    P_k(b | s)              ~ exp(-size_concentration * |b - bucket_k(s)|)

so its mode is broker k's size placed as its Q-table says, and every shared action has positive
probability: any trajectory, from any expert or mixture, has a finite log-likelihood under it.
``Q_k`` is the trained table itself over the binned state (no distillation, so the exported expert
is the expert), ``tau_k`` is set from the spread of the Q-advantages on the visited states
(:func:`calibrate_temperature`). :meth:`ExpertPolicy.module` gives it as a differentiable torch
module (the table of placement logits is the parameter) for MoE-DPO to fine-tune;
:meth:`ExpertPolicy.frozen_copy` is its reference.

:class:`MLPPolicy` is the older export of a placement-mode table (3 actions at the broker's own
size) distilled into a 2 x 64 MLP (spec 1.1 [DEFAULT]); :meth:`ExpertPolicy.load` reads either file.
:class:`BrokerActor` is broker k with a fixed placement in the shared action space.

Files: ``<dir>/policy.pt`` (torch ``state_dict``, loaded ``weights_only``) and ``<dir>/policy.json``.
This module does not import Ray: a saved expert loads anywhere torch does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlexec.envs.lob_env import BROKERS, SHARED_OBSERVATION_NAMES
from rlexec.envs.lob_interpreters import HOLD, LIMIT, MARKET, SIZE_MULTIPLIERS, num_shared_actions, shared_action
from rlexec.errors import ConfigError
from rlexec.policies.binning import StateBinning
from rlexec.provenance import write_atomic

FORMAT = "rlexec.expert_policy"  # the MLP's file format
FORMAT_VERSION = 1
WEIGHTS_FILE, META_FILE = "policy.pt", "policy.json"


class MLPPolicy(nn.Module):
    """Categorical policy ``pi(a|s) = softmax(MLP((s - mean) / std))`` (the placement-mode export)."""

    def __init__(
        self,
        *,
        obs_dim: int,
        num_actions: int,
        hidden_sizes: Sequence[int] = (64, 64),  # spec 1.1: 2 x 64, ReLU
        obs_mean: np.ndarray | torch.Tensor | None = None,
        obs_std: np.ndarray | torch.Tensor | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__()
        if obs_dim < 1 or num_actions < 2 or any(h < 1 for h in hidden_sizes):
            raise ConfigError(f"MLPPolicy: obs_dim >= 1, num_actions >= 2 and positive hidden_sizes needed, got "
                              f"{obs_dim}, {num_actions}, {list(hidden_sizes)}")
        self.obs_dim, self.num_actions = int(obs_dim), int(num_actions)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.metadata: dict[str, Any] = dict(metadata or {})
        mean = torch.zeros(obs_dim) if obs_mean is None else torch.as_tensor(obs_mean, dtype=torch.float32)
        std = torch.ones(obs_dim) if obs_std is None else torch.as_tensor(obs_std, dtype=torch.float32)
        self.register_buffer("obs_mean", mean.clone().reshape(obs_dim))
        self.register_buffer("obs_std", std.clone().reshape(obs_dim))
        layers: list[nn.Module] = []
        width = obs_dim
        for hidden in self.hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, num_actions))
        self.net = nn.Sequential(*layers)

    # ---- the policy ---------------------------------------------------------------------------
    def _as_obs(self, observations) -> torch.Tensor:
        obs = torch.as_tensor(observations, dtype=torch.float32, device=self.obs_mean.device)
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"observations must end in dimension {self.obs_dim}, got shape {tuple(obs.shape)}")
        return obs

    def logits(self, observations) -> torch.Tensor:
        """Unnormalised log-probabilities, shape ``(..., num_actions)``."""
        return self.net((self._as_obs(observations) - self.obs_mean) / self.obs_std)

    def forward(self, observations) -> torch.Tensor:
        return self.logits(observations)

    def probs(self, observations) -> torch.Tensor:
        return torch.softmax(self.logits(observations), dim=-1)

    def log_probs(self, observations) -> torch.Tensor:
        """log pi(. | s) for every action, shape ``(..., num_actions)``."""
        return torch.log_softmax(self.logits(observations), dim=-1)

    def log_prob(self, actions, observations) -> torch.Tensor:
        """Per-step log pi(a_t | s_t); ``actions`` shape ``(...)``, ``observations`` ``(..., obs_dim)``."""
        actions = torch.as_tensor(actions, dtype=torch.long, device=self.obs_mean.device)
        return self.log_probs(observations).gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    def trajectory_log_prob(self, actions, observations, mask=None) -> torch.Tensor:
        """log pi(tau) = sum_t log pi(a_t | s_t) over the time axis (the last of ``actions``).

        ``actions`` (T,) and ``observations`` (T, obs_dim) give a scalar; (B, T) and (B, T, obs_dim) give
        (B,). ``mask`` (same shape as ``actions``, 1 = real step) leaves out padding.
        """
        per_step = self.log_prob(actions, observations)
        if mask is not None:
            per_step = per_step * torch.as_tensor(mask, dtype=per_step.dtype, device=per_step.device)
        return per_step.sum(dim=-1)

    def frozen_copy(self) -> "MLPPolicy":
        """A detached copy with ``requires_grad = False`` in eval mode: the expert's DPO reference."""
        frozen = copy.deepcopy(self)
        frozen.requires_grad_(False)
        return frozen.eval()

    # ---- files --------------------------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION, "obs_dim": self.obs_dim, "num_actions": self.num_actions,
                "hidden_sizes": list(self.hidden_sizes), "activation": "relu"}

    def save(self, path: str | Path) -> Path:
        """Write ``path/policy.pt`` and ``path/policy.json``; returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        # Weights first, metadata last: a folder whose policy.json exists holds complete weights.
        write_atomic(folder / WEIGHTS_FILE, lambda tmp: torch.save(self.state_dict(), tmp))
        meta = json.dumps({**self.architecture(), "metadata": self.metadata}, indent=2, default=_json_default)
        write_atomic(folder / META_FILE, lambda tmp: tmp.write_text(meta))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> "MLPPolicy":
        """Read a folder written by :meth:`save`; a missing or corrupt file raises ConfigError naming it."""
        folder = Path(path)
        meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
        meta = _read_meta(meta_path)
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{meta_path}: not an rlexec expert policy (format {FORMAT!r} expected)")
        if meta.get("version") != FORMAT_VERSION:
            raise ConfigError(f"{meta_path}: expert policy format version {meta.get('version')!r}, "
                              f"this rlexec reads {FORMAT_VERSION}")
        try:
            policy = cls(obs_dim=int(meta["obs_dim"]), num_actions=int(meta["num_actions"]),
                         hidden_sizes=tuple(meta["hidden_sizes"]), metadata=meta.get("metadata") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{meta_path}: invalid expert policy architecture ({exc})") from None
        _load_weights(policy, weights_path, meta_path)
        return policy


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


SHARED_FORMAT = "rlexec.shared_expert"
SHARED_FORMAT_VERSION = 1
PLACEMENT_ORDER = (MARKET, LIMIT, HOLD)  # columns of the placement Q-table / logits
SIZE_CONCENTRATION = 2.0  # rlexec default: exp(-2) ~ 0.14 per bucket away from the broker's
GREEDY_MASS = 0.9  # rlexec default: the mean top placement probability tau is set to reach on visited states


def bucket_feature_index(broker: str) -> int:
    """Position of ``bucket_<broker>`` in the shared observation."""
    if broker not in BROKERS:
        raise ConfigError(f"broker must be one of {BROKERS}, got {broker!r}")
    return SHARED_OBSERVATION_NAMES.index(f"bucket_{broker}")


def _as_numpy_obs(observations) -> np.ndarray:
    obs = np.asarray(observations, dtype=np.float32)
    return obs[None] if obs.ndim == 1 else obs


def calibrate_temperature(q_rows: np.ndarray, target: float = GREEDY_MASS, weights: np.ndarray | None = None,
                          ) -> tuple[float, float]:
    """``(tau, mass)``: the temperature at which the mean (``weights``-weighted) top probability of
    ``softmax(q_rows / tau)`` equals ``target``, and the mass reached.

    The mean top probability falls monotonically from its tau -> 0 limit (the mean of 1 / number of tied
    maxima) to 1/A as tau grows, so bisection in log tau finds it. The search is bracketed by the
    spread of the Q-advantages (the weighted mean per-state standard deviation of Q(s, .), ``sigma``):
    tau in [1e-4 sigma, 1e4 sigma]. Rows of all-equal Q count but cannot be moved; when the target is out of
    reach the bracket's end is used and the mass it reaches returned.
    """
    q = np.asarray(q_rows, dtype=np.float64)
    if q.ndim != 2 or len(q) == 0:
        raise ConfigError(f"calibrate_temperature: Q rows must be a non-empty (N, A) array, got shape {q.shape}")
    if not 1.0 / q.shape[1] < target < 1.0:
        raise ConfigError(f"calibrate_temperature: target must be in (1/A, 1), got {target}")
    w = np.ones(len(q)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    spread = float((w * q.std(axis=1)).sum())
    if spread <= 0:
        return 1.0, 1.0 / q.shape[1]

    def mass(tau: float) -> float:
        z = (q - q.max(axis=1, keepdims=True)) / tau
        p = np.exp(z)
        return float((w * (p.max(axis=1) / p.sum(axis=1))).sum())

    lo, hi = np.log(spread * 1e-4), np.log(spread * 1e4)
    if mass(np.exp(lo)) < target:
        return float(np.exp(lo)), mass(np.exp(lo))
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if mass(np.exp(mid)) >= target:
            lo = mid
        else:
            hi = mid
    return float(np.exp(lo)), mass(np.exp(lo))


class SharedExpertModule(nn.Module):
    """obs [B, d] -> log-probabilities [B, 1 + 2 S] of the shared actions (they are also its logits).

    The parameter is the table of placement logits ``Q_k(s, .) / tau_k`` (columns market, limit, hold)
    over the binned states; gradients reach the rows of the states in the batch. The size part
    (broker k's bucket read from the observation, ``size_concentration``) is fixed.
    """

    def __init__(self, *, binning: StateBinning, placement_logits, bucket_index: int, num_buckets: int,
                 size_concentration: float = SIZE_CONCENTRATION, obs_dim: int = len(SHARED_OBSERVATION_NAMES)):
        super().__init__()
        table = torch.as_tensor(np.asarray(placement_logits), dtype=torch.float32)
        if table.shape != (binning.num_states, 3):
            raise ConfigError(f"SharedExpertModule: placement logits must be ({binning.num_states}, 3), "
                              f"got {tuple(table.shape)}")
        if not 0 <= bucket_index < obs_dim or num_buckets < 1 or size_concentration < 0:
            raise ConfigError(f"SharedExpertModule: bucket_index in [0, {obs_dim}), num_buckets >= 1 and "
                              f"size_concentration >= 0 needed, got {bucket_index}, {num_buckets}, {size_concentration}")
        self.binning = binning
        self.obs_dim, self.bucket_index, self.num_buckets = int(obs_dim), int(bucket_index), int(num_buckets)
        self.size_concentration = float(size_concentration)
        self.placement_logits = nn.Parameter(table.clone())
        self.register_buffer("buckets", torch.arange(num_buckets, dtype=torch.float32))

    @property
    def num_actions(self) -> int:
        return num_shared_actions(self.num_buckets)

    def size_log_probs(self, obs: torch.Tensor) -> torch.Tensor:
        """[B, S] log P_k(b | s)."""
        mode = obs[:, self.bucket_index].round().clamp(0, self.num_buckets - 1)
        return torch.log_softmax(-self.size_concentration * (self.buckets[None, :] - mode[:, None]).abs(), dim=-1)

    def placement_log_probs(self, obs: torch.Tensor) -> torch.Tensor:
        """[B, 3] log P_k(market, limit, hold | s)."""
        return torch.log_softmax(self.placement_logits[self.binning.index_torch(obs)], dim=-1)

    def forward(self, observations) -> torch.Tensor:
        obs = torch.as_tensor(observations, dtype=torch.float32)
        if obs.ndim != 2 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"observations must have shape (B, {self.obs_dim}), got {tuple(obs.shape)}")
        place = self.placement_log_probs(obs)
        size = self.size_log_probs(obs)
        market = place[:, PLACEMENT_ORDER.index(MARKET), None] + size
        limit = place[:, PLACEMENT_ORDER.index(LIMIT), None] + size
        # interleave: action 1 + 2b = market of bucket b, 2 + 2b = limit of bucket b
        sized = torch.stack([market, limit], dim=-1).reshape(len(obs), 2 * self.num_buckets)
        return torch.cat([place[:, PLACEMENT_ORDER.index(HOLD), None], sized], dim=-1)


class ExpertPolicy:
    """Expert k over the shared action space (module docstring). Numpy in, numpy out (``logits`` also takes
    and returns a torch tensor, so the policies' actors drive it like any model)."""

    def __init__(self, *, broker: str, module: SharedExpertModule, temperature: float,
                 metadata: dict[str, Any] | None = None):
        self.broker, self._module, self.temperature = broker, module, float(temperature)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.name = f"expert_{broker}"

    @classmethod
    def from_q_table(cls, *, broker: str, q_table: np.ndarray, binning: StateBinning, temperature: float,
                     num_buckets: int = len(SIZE_MULTIPLIERS), size_concentration: float = SIZE_CONCENTRATION,
                     metadata: dict[str, Any] | None = None) -> "ExpertPolicy":
        """Expert from a placement Q-table ``(num_states, 3)`` in the env's placement order (market, limit, hold)."""
        if not temperature > 0:
            raise ConfigError(f"ExpertPolicy: temperature must be > 0, got {temperature}")
        q = np.asarray(q_table, dtype=np.float64)[:, list(PLACEMENT_ORDER)]
        module = SharedExpertModule(binning=binning, placement_logits=q / temperature,
                                    bucket_index=bucket_feature_index(broker), num_buckets=num_buckets,
                                    size_concentration=size_concentration)
        return cls(broker=broker, module=module, temperature=temperature, metadata=metadata)

    @property
    def num_actions(self) -> int:
        return self._module.num_actions

    @property
    def obs_dim(self) -> int:
        return self._module.obs_dim

    # ---- the policy ---------------------------------------------------------------------------
    def logits(self, observations):
        """[T, A] log pi(. | s) (normalised: they are log-probabilities)."""
        with torch.no_grad():
            if isinstance(observations, torch.Tensor):
                return self._module(observations.reshape(-1, self.obs_dim).float())
            return self._module(torch.from_numpy(_as_numpy_obs(observations))).numpy()

    def probabilities(self, observations) -> np.ndarray:
        return np.exp(self.logits(_as_numpy_obs(observations)))

    def log_probs(self, observations, actions) -> np.ndarray:
        """[T] log pi(a_t | s_t)."""
        logits = self.logits(_as_numpy_obs(observations))
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        if len(actions) != len(logits) or (actions < 0).any() or (actions >= self.num_actions).any():
            raise ValueError(f"actions must be {len(logits)} ids in [0, {self.num_actions}), got {actions.tolist()[:8]}...")
        return logits[np.arange(len(actions)), actions].astype(np.float64)

    def trajectory_log_prob(self, observations, actions) -> float:
        """log pi(tau) = sum_t log pi(a_t | s_t) of one trajectory (obs [T, d], actions [T])."""
        return float(self.log_probs(observations, actions).sum())

    def greedy(self, observations) -> np.ndarray:
        """[T] the most probable shared action: broker k's bucket, placed by argmax Q (hold when it wins)."""
        return self.logits(_as_numpy_obs(observations)).argmax(axis=-1)

    def actions(self, observations) -> np.ndarray:
        """The Actor protocol (greedy)."""
        return self.greedy(observations)

    def greedy_mass(self, observations) -> float:
        """Mean top placement probability over ``observations`` (how close to deterministic the expert is)."""
        with torch.no_grad():
            place = self._module.placement_log_probs(torch.from_numpy(_as_numpy_obs(observations)))
        return float(place.exp().max(dim=-1).values.mean())

    def module(self) -> SharedExpertModule:
        """A trainable copy of the expert as a torch module (obs [B, d] -> logits [B, A])."""
        copied = copy.deepcopy(self._module)
        copied.requires_grad_(True)
        return copied.train()

    def frozen_copy(self) -> "ExpertPolicy":
        """An independent copy whose module has ``requires_grad = False`` in eval mode (the DPO reference)."""
        frozen = copy.deepcopy(self._module)
        frozen.requires_grad_(False)
        return ExpertPolicy(broker=self.broker, module=frozen.eval(), temperature=self.temperature,
                            metadata=copy.deepcopy(self.metadata))

    # ---- files --------------------------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        m = self._module
        return {"format": SHARED_FORMAT, "version": SHARED_FORMAT_VERSION, "broker": self.broker,
                "obs_dim": m.obs_dim, "num_actions": m.num_actions, "num_buckets": m.num_buckets,
                "bucket_index": m.bucket_index, "size_concentration": m.size_concentration,
                "temperature": self.temperature, "binning": m.binning.to_dict(),
                "observation_names": list(SHARED_OBSERVATION_NAMES)}

    def save(self, path: str | Path) -> Path:
        """Write ``path/policy.pt`` and ``path/policy.json``; returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / WEIGHTS_FILE, lambda tmp: torch.save(self._module.state_dict(), tmp))
        meta = json.dumps({**self.architecture(), "metadata": self.metadata}, indent=2, default=_json_default)
        write_atomic(folder / META_FILE, lambda tmp: tmp.write_text(meta))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> "ExpertPolicy | MLPPolicy":
        """Read a folder written by :meth:`save` (or by :meth:`MLPPolicy.save`, returned as an MLPPolicy);
        a missing or corrupt file raises ConfigError naming it."""
        folder = Path(path)
        meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
        meta = _read_meta(meta_path)
        if meta.get("format") == FORMAT:
            return MLPPolicy.load(folder)
        if meta.get("format") != SHARED_FORMAT:
            raise ConfigError(f"{meta_path}: not an rlexec expert policy (format {SHARED_FORMAT!r} expected)")
        if meta.get("version") != SHARED_FORMAT_VERSION:
            raise ConfigError(f"{meta_path}: expert policy format version {meta.get('version')!r}, "
                              f"this rlexec reads {SHARED_FORMAT_VERSION}")
        try:
            binning = StateBinning.from_any(meta["binning"])
            module = SharedExpertModule(
                binning=binning, placement_logits=np.zeros((binning.num_states, 3)),
                bucket_index=int(meta["bucket_index"]), num_buckets=int(meta["num_buckets"]),
                size_concentration=float(meta["size_concentration"]), obs_dim=int(meta["obs_dim"]))
            broker, temperature = str(meta["broker"]), float(meta["temperature"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{meta_path}: invalid expert policy architecture ({exc})") from None
        _load_weights(module, weights_path, meta_path)
        return cls(broker=broker, module=module, temperature=temperature, metadata=meta.get("metadata") or {})


class BrokerActor:
    """Broker k with a fixed placement in the shared action space: action (bucket_k(s), placement), read from
    the observation; ``placement`` MARKET, LIMIT or HOLD (from :mod:`rlexec.envs.lob_interpreters`)."""

    def __init__(self, broker: str, placement: int, name: str | None = None):
        if placement not in (MARKET, LIMIT, HOLD):
            raise ConfigError(f"BrokerActor: placement must be MARKET (0), LIMIT (1) or HOLD (2), got {placement!r}")
        self.broker, self.placement = broker, int(placement)
        self.bucket_index = bucket_feature_index(broker)
        self.name = name or f"{broker}_{('market', 'limit', 'hold')[placement]}"

    def actions(self, observations) -> np.ndarray:
        buckets = np.rint(_as_numpy_obs(observations)[:, self.bucket_index]).astype(np.int64)
        return np.array([shared_action(int(b), self.placement) for b in buckets], dtype=np.int64)


def _read_meta(meta_path: Path) -> dict:
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{meta_path}: expert policy metadata not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{meta_path}: corrupt expert policy metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{meta_path}: not an rlexec expert policy (a JSON object expected)")
    return meta


def _load_weights(module: nn.Module, weights_path: Path, meta_path: Path) -> None:
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{weights_path}: expert policy weights not found") from None
    except Exception as exc:  # torch raises several types (pickle, zip, runtime) for a damaged file
        raise ConfigError(f"{weights_path}: corrupt expert policy weights ({type(exc).__name__}: {exc})") from None
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{weights_path}: weights do not match the architecture in {meta_path.name} ({exc})") from None
