"""A Q-expert as a differentiable policy (spec 1.1, "Q -> differentiable policy", [DEFAULT]).

The exact method of the source was not found. rlexec follows the spec's default: the Boltzmann
policy over a trained Q-table, ``pi^0(a|s) = softmax_a(Q(s,a) / tau)`` with ``tau = 1``, is distilled
into a small MLP (2 x 64, ReLU) by cross-entropy on the states the trained policy visits; a frozen
copy of the MLP is that expert's DPO reference ``pi_ref``.

The MLP reads the raw observation (for the LOB env the 16 features of ``OBSERVATION_NAMES``),
standardised with the mean and standard deviation of the distillation states, which are stored
with the weights. Files: ``<dir>/policy.pt`` (torch ``state_dict``) and ``<dir>/policy.json``
(architecture and metadata: what it was distilled from, final KL, greedy agreement).

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

from rlexec.errors import ConfigError
from rlexec.provenance import write_atomic

FORMAT = "rlexec.expert_policy"
FORMAT_VERSION = 1
WEIGHTS_FILE, META_FILE = "policy.pt", "policy.json"


class ExpertPolicy(nn.Module):
    """Categorical policy ``pi(a|s) = softmax(MLP((s - mean) / std))``."""

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
            raise ConfigError(f"ExpertPolicy: obs_dim >= 1, num_actions >= 2 and positive hidden_sizes needed, got "
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

    def frozen_copy(self) -> "ExpertPolicy":
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
    def load(cls, path: str | Path) -> "ExpertPolicy":
        """Read a folder written by :meth:`save`; a missing or corrupt file raises ConfigError naming it."""
        folder = Path(path)
        meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{meta_path}: expert policy metadata not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{meta_path}: corrupt expert policy metadata ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ConfigError(f"{meta_path}: not an rlexec expert policy (format {FORMAT!r} expected)")
        if meta.get("version") != FORMAT_VERSION:
            raise ConfigError(f"{meta_path}: expert policy format version {meta.get('version')!r}, "
                              f"this rlexec reads {FORMAT_VERSION}")
        try:
            policy = cls(obs_dim=int(meta["obs_dim"]), num_actions=int(meta["num_actions"]),
                         hidden_sizes=tuple(meta["hidden_sizes"]), metadata=meta.get("metadata") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{meta_path}: invalid expert policy architecture ({exc})") from None
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ConfigError(f"{weights_path}: expert policy weights not found") from None
        except Exception as exc:  # torch raises several types (pickle, zip, runtime) for a damaged file
            raise ConfigError(f"{weights_path}: corrupt expert policy weights ({type(exc).__name__}: {exc})") from None
        try:
            policy.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{weights_path}: weights do not match the architecture in {meta_path.name} ({exc})"
            ) from None
        return policy


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
