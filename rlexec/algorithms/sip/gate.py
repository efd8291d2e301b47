"""A gate ``g(x)``: context features known at the window start -> weights over the experts (spec 1.3, 1.5).

SIP leaves one weight vector per regime; the gate regresses those weights on the context of each
training episode, ``min_phi  -(1/N) sum_n sum_k w_nk log softmax(g_phi(x_n))_k`` (cross-entropy to the
SIP weights), so that a context no regime label describes still gets weights, and the MoE-DPO learner
(spec 1.5: "initialise the gate g_phi from the SIP weights") starts from this module and its weights.

With ``hidden_sizes = ()`` (rlexec's [DEFAULT]) the gate is a multinomial logistic regression; a
tuple such as ``(64, 64)`` (spec 1.5's gate MLP) adds ReLU layers. Features are standardised with
the fitting set's mean and std, stored as buffers with the weights, so :meth:`Gate.forward` takes raw
features. Files: ``<dir>/gate.pt`` (torch ``state_dict``) and ``<dir>/gate.json`` (architecture,
feature and expert names, fit record).

Context features (:data:`CONTEXT_FEATURES`) are what the LOB env shows before the first decision:
the first observation of each episode (``spread_bps``, ``imbalance_1``, ``imbalance_5`` and the
``mid_return_*_bps`` of the warm-up intervals before the window, summarised as their standard
deviation ``recent_vol_bps``), the order's side, ``log(quantity)``, the window's start time of day
(hours after 09:30), and a one-hot of the regime. :func:`context_features` builds them from a
:class:`~rlexec.evaluation.episodes.LOBEpisodes`-like reset and identity table.

This is rlexec's one context-feature function: the SIP gate, the MoE-DPO preference sets
(:func:`rlexec.algorithms.moe_dpo.preferences.groups_from_store`) and the ``kind: moe_dpo`` actor all
call it, so a SIP gate can initialise the MoE-DPO gate and the trained gate sees at evaluation the
features it was trained on. Named features of the observation (rather than the whole raw first
observation) keep the inputs that vary across episodes at the window start; ``holdings_pct`` and
``time_pct`` are the same for every episode there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlexec.configs import config_from_dict
from rlexec.errors import ConfigError
from rlexec.provenance import write_atomic

FORMAT, FORMAT_VERSION = "rlexec.sip_gate", 1
WEIGHTS_FILE, META_FILE = "gate.pt", "gate.json"
SESSION_OPEN_S = 9.5 * 3600  # 09:30, the simulator's session start (rlexec.market.config)
OBSERVED = ("spread_bps", "imbalance_1", "imbalance_5")
CONTEXT_FEATURES = ("time_of_day_h", "side", "log_quantity", "recent_vol_bps", *OBSERVED)


def context_names(regimes: Sequence[str]) -> list[str]:
    """The gate's input names: :data:`CONTEXT_FEATURES`, then ``regime_<name>`` one-hots."""
    return [*CONTEXT_FEATURES, *(f"regime_{r}" for r in regimes)]


def lob_observation_names(obs_dim: int) -> list[str]:
    """The LOB env's observation names for an observation of ``obs_dim`` entries (placement or shared
    action space; the two layouts differ in length), for callers that hold observations but no env."""
    from rlexec.envs.lob_env import SHARED_OBSERVATION_NAMES
    from rlexec.envs.lob_interpreters import OBSERVATION_NAMES

    for names in (OBSERVATION_NAMES, SHARED_OBSERVATION_NAMES):
        if len(names) == obs_dim:
            return list(names)
    raise ConfigError(f"gate context: an observation of {obs_dim} entries is not the LOB env's "
                      f"({len(OBSERVATION_NAMES)} or {len(SHARED_OBSERVATION_NAMES)} entries)")


def context_features(first_observations: np.ndarray, observation_names: Sequence[str], identity: dict[str, Any],
                     regime: str, regimes: Sequence[str]) -> np.ndarray:
    """(N, len(context_names(regimes))) context of N episodes, from their first observations and identity.

    ``identity`` holds the columns ``side`` ("buy"/"sell"), ``quantity`` and ``window_start_s`` (seconds
    since midnight) of :meth:`LOBEpisodes.identity`.
    """
    names = list(observation_names)
    obs = np.asarray(first_observations, dtype=np.float64)
    missing = [n for n in OBSERVED if n not in names]
    if missing:
        raise ConfigError(f"gate context: the observation has no {missing} (it has {names})")
    returns = [i for i, n in enumerate(names) if n.startswith("mid_return_")]
    if regime not in regimes:
        raise ConfigError(f"gate context: regime {regime!r} is not one of {list(regimes)}")
    n = len(obs)
    side = np.where(np.asarray(identity["side"]) == "sell", 1.0, -1.0)
    columns = [
        (np.asarray(identity["window_start_s"], dtype=np.float64) - SESSION_OPEN_S) / 3600.0,
        side,
        np.log(np.asarray(identity["quantity"], dtype=np.float64)),
        obs[:, returns].std(axis=1) if returns else np.zeros(n),
        *(obs[:, names.index(name)] for name in OBSERVED),
        *(np.full(n, float(r == regime)) for r in regimes),
    ]
    return np.stack(columns, axis=1)


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    """How the gate is fitted; every value is rlexec's [DEFAULT] except spec 1.5's gate lr (1e-3) for the MLP."""

    hidden_sizes: tuple[int, ...] = ()  # () = multinomial logistic regression; spec 1.5's MLP is (64, 64)
    target: str = "final"  # "final": each episode's target is its regime's last SIP weights; "history": w^(n)
    epochs: int = 500  # full-batch Adam steps
    lr: float = 0.05
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "hidden_sizes": all(isinstance(h, int) and h >= 1 for h in self.hidden_sizes),
            "target": self.target in ("final", "history"),
            "epochs": self.epochs >= 0, "lr": self.lr > 0, "weight_decay": self.weight_decay >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"gate.{name}: invalid value {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: dict | None) -> GateConfig:
        return config_from_dict(cls, data or {}, converters={"hidden_sizes": tuple})

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden_sizes": list(self.hidden_sizes)}


class Gate(nn.Module):
    """``w(x) = softmax(MLP((x - mean) / std))`` over the experts; ``forward`` returns the logits."""

    def __init__(self, *, feature_names: Sequence[str], expert_names: Sequence[str],
                 hidden_sizes: Sequence[int] = (), metadata: dict[str, Any] | None = None):
        super().__init__()
        self.feature_names, self.expert_names = list(feature_names), list(expert_names)
        if not self.feature_names or len(self.expert_names) < 2:
            raise ConfigError(f"Gate: features and at least 2 experts needed, got {self.feature_names}, "
                              f"{self.expert_names}")
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.metadata: dict[str, Any] = dict(metadata or {})
        d = len(self.feature_names)
        self.register_buffer("feature_mean", torch.zeros(d))
        self.register_buffer("feature_std", torch.ones(d))
        layers: list[nn.Module] = []
        width = d
        for hidden in self.hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, len(self.expert_names)))
        self.net = nn.Sequential(*layers)

    def forward(self, features) -> torch.Tensor:
        x = torch.as_tensor(features, dtype=torch.float32)
        return self.net((x - self.feature_mean) / self.feature_std)

    def weights(self, features) -> np.ndarray:
        """(N, K) expert weights for raw features (numpy in, numpy out)."""
        with torch.no_grad():
            return torch.softmax(self(np.asarray(features, dtype=np.float32)), dim=-1).double().numpy()

    def set_prior(self, weights) -> None:
        """Output ``weights`` for every input: zero last layer, bias ``log w`` (spec 1.5's bias-only init)."""
        w = np.clip(np.asarray(weights, dtype=np.float64), 1e-12, None)
        last = self.net[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(torch.as_tensor(np.log(w / w.sum()), dtype=torch.float32))

    def save(self, path: str | Path) -> Path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / WEIGHTS_FILE, lambda tmp: torch.save(self.state_dict(), tmp))
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "feature_names": self.feature_names,
                "expert_names": self.expert_names, "hidden_sizes": list(self.hidden_sizes), "metadata": self.metadata}
        text = json.dumps(meta, indent=2, default=float)
        write_atomic(folder / META_FILE, lambda tmp: tmp.write_text(text))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Gate:
        folder = Path(path)
        meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{meta_path}: gate metadata not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{meta_path}: corrupt gate metadata ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise ConfigError(f"{meta_path}: not an rlexec SIP gate (format {FORMAT!r} v{FORMAT_VERSION} expected)")
        gate = cls(feature_names=meta["feature_names"], expert_names=meta["expert_names"],
                   hidden_sizes=meta["hidden_sizes"], metadata=meta.get("metadata"))
        try:
            gate.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        except FileNotFoundError:
            raise ConfigError(f"{weights_path}: gate weights not found") from None
        except Exception as exc:  # torch raises several types for a damaged or mismatched file
            raise ConfigError(f"{weights_path}: unreadable gate weights ({type(exc).__name__}: {exc})") from None
        return gate


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``-(1/N) sum_n sum_k t_nk log softmax(logits_n)_k``."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def fit_gate(features, targets, *, feature_names: Sequence[str], expert_names: Sequence[str],
             config: GateConfig = GateConfig()) -> Gate:
    """A gate fitted by full-batch Adam on the cross-entropy to ``targets`` (N, K rows on the simplex).

    It starts from the mean target (:meth:`Gate.set_prior`), so zero epochs give the pooled weights.
    """
    x = np.asarray(features, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if x.ndim != 2 or t.ndim != 2 or len(x) != len(t) or len(x) == 0:
        raise ValueError(f"features (N, d) and targets (N, K) with N > 0 needed, got {x.shape} and {t.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("gate features must be finite")
    torch.manual_seed(config.seed)
    gate = Gate(feature_names=feature_names, expert_names=expert_names, hidden_sizes=config.hidden_sizes)
    if x.shape[1] != len(gate.feature_names) or t.shape[1] != len(gate.expert_names):
        raise ValueError(f"features {x.shape} / targets {t.shape} do not match {len(gate.feature_names)} names and "
                         f"{len(gate.expert_names)} experts")
    std = x.std(axis=0)
    gate.feature_mean.copy_(torch.as_tensor(x.mean(axis=0), dtype=torch.float32))
    gate.feature_std.copy_(torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))  # constant -> as is
    gate.set_prior(t.mean(axis=0))
    xt, tt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(t, dtype=torch.float32)
    optimiser = torch.optim.Adam(gate.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for _ in range(config.epochs):
        optimiser.zero_grad()
        loss = cross_entropy(gate(xt), tt)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        final = float(cross_entropy(gate(xt), tt))
        entropy = float(-(tt * torch.log(tt.clamp_min(1e-12))).sum(-1).mean())
    gate.metadata.update({"fit": config.to_dict(), "samples": len(x), "cross_entropy": final,
                          "target_entropy": entropy, "kl_to_targets": final - entropy})
    return gate.eval()
