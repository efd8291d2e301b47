"""The MoE-DPO RLModule: K expert policies, their frozen references, and the gate (spec 1.5).

``model_config`` keys (set by :class:`~rlexec.algorithms.moe_dpo.config.MoEDPOConfig`):

* ``expert_names`` (K names) and either ``expert_paths`` (K folders of
  :class:`~rlexec.policies.expert.ExpertPolicy`: each network starts as the exported expert and its
  frozen copy is the reference ``pi_ref,k``) or none (fresh ``expert_hidden`` MLPs, for tests);
* ``gate``: ``"moe"`` (an MLP on the context x, ``gate_hidden`` layers, softmax over K) or ``"mix"``
  (input-independent weights, a buffer the learner updates in closed form);
* ``initial_weights``: the gate's starting weights (e.g. SIP's); the MoE gate starts as the bias-only
  softmax ``log w`` (last layer's weights zero), so ``w(x) = initial_weights`` for every x;
* ``gate_init``: optional, replaces the above: an ``rlexec sip`` run folder (or its ``gate/`` folder),
  whose gate is taken over exactly (:func:`sip_gate_network`: its architecture, and its feature
  standardisation folded into the first layer), or a torch ``state_dict`` file of a gate of this shape;
* ``context_dim``, ``context_names`` (the preference set's feature names, from
  :func:`rlexec.algorithms.sip.gate.context_names`); ``hard_gating`` (inference follows
  ``argmax_k w_k(x)`` alone).

Inference (:meth:`MoEDPOModule.mixture_log_probs`): ``pi(a|s, x) = sum_k w_k(x) pi_k(a|s)``. The
context travels in the batch column :data:`CONTEXT`; without it the module uses ``average_weights``,
the running mean of the gate over the training contexts (kept for context-free callers such as
RLlib's EnvRunners). :class:`MixturePolicy` binds one episode's context for the evaluation loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rlexec.errors import ConfigError
import itertools

# Train-batch columns (padded trajectories of B pairs; masks are 1 on real steps).
CONTEXT = "context"  # (B, context_dim) gate input x
CHOSEN_OBS, CHOSEN_ACTIONS, CHOSEN_MASK = "chosen_obs", "chosen_actions", "chosen_mask"  # (B, T, d), (B, T), (B, T)
REJECTED_OBS, REJECTED_ACTIONS, REJECTED_MASK = "rejected_obs", "rejected_actions", "rejected_mask"
REF_LOGP_CHOSEN, REF_LOGP_REJECTED = "ref_logp_chosen", "ref_logp_rejected"  # (B, K) cached sum_t log pi_ref,k
REGIME = "regime"  # (B,) regime index, for the per-regime gate logs
# forward_train outputs
LOGP_CHOSEN, LOGP_REJECTED, LOG_GATE = "logp_chosen", "logp_rejected", "log_gate"  # (B, K) each


def expert_network(expert: nn.Module) -> nn.Module:
    """The differentiable obs -> logits network of an exported expert (``module()`` in the shared
    action contract; an expert that is itself such a network is used as is)."""
    module = getattr(expert, "module", None)
    return module() if callable(module) and not isinstance(module, nn.Module) else expert


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(width_in, width_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MoEDPOModule(TorchRLModule):
    """K experts + frozen references + gate; ``forward_train`` scores padded preference pairs."""

    @override(TorchRLModule)
    def setup(self) -> None:
        config = self.model_config
        names = list(config.get("expert_names") or [])
        if not names:
            raise ConfigError("MoE-DPO module: model_config.expert_names must name at least one expert")
        self.expert_names = names
        num_experts = len(names)
        obs_dim = int(np.prod(self.observation_space.shape))
        num_actions = int(self.action_space.n)
        paths = config.get("expert_paths")
        if paths:
            from rlexec.policies.expert import ExpertPolicy

            if len(paths) != num_experts:
                raise ConfigError(f"MoE-DPO module: {len(paths)} expert_paths for {num_experts} expert_names")
            experts = [expert_network(ExpertPolicy.load(path)) for path in paths]
        else:
            sizes = [obs_dim, *[int(h) for h in config.get("expert_hidden", (64, 64))], num_actions]
            experts = [_mlp(sizes) for _ in range(num_experts)]
        self.experts = nn.ModuleList(experts)
        self.references = nn.ModuleList([_frozen(e) for e in experts])

        weights = np.asarray(config.get("initial_weights") or [1.0 / num_experts] * num_experts, dtype=np.float64)
        if weights.shape != (num_experts,) or (weights <= 0).any():
            raise ConfigError(f"MoE-DPO module: initial_weights must be {num_experts} positive numbers, got {weights}")
        log_weights = torch.as_tensor(np.log(weights / weights.sum()), dtype=torch.float32)
        self.gate_kind = config.get("gate", "moe")
        self.hard_gating = bool(config.get("hard_gating", False))
        if self.gate_kind == "moe":
            self.context_dim = int(config["context_dim"])
            self.gate = _mlp([self.context_dim, *[int(h) for h in config.get("gate_hidden", (64, 64))], num_experts])
            with torch.no_grad():  # bias-only start: w(x) = initial_weights for every x (spec 1.5, "init from SIP")
                self.gate[-1].weight.zero_()
                self.gate[-1].bias.copy_(log_weights)
            if config.get("gate_init") and Path(config["gate_init"]).is_dir():
                self.gate = sip_gate_network(config["gate_init"], list(config.get("context_names") or []), names)
            elif config.get("gate_init"):
                self.gate.load_state_dict(torch.load(config["gate_init"], map_location="cpu", weights_only=True))
        elif self.gate_kind == "mix":
            self.register_buffer("mix_log_weights", log_weights.clone())
        else:
            raise ConfigError(f"MoE-DPO module: gate must be 'moe' or 'mix', got {self.gate_kind!r}")
        self.register_buffer("average_weights", log_weights.exp().clone())

    # ---- the gate ---------------------------------------------------------------------------------------
    def log_gate(self, context: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """``log w_k(x)``, shape (B, K)."""
        if self.gate_kind == "mix":
            # A copy, not a view: the learner updates the buffer in place after computing the loss.
            return self.mix_log_weights.unsqueeze(0).repeat(batch_size, 1)
        if context is None:
            raise ConfigError("the MoE gate needs the context column 'context' (the gate input x)")
        return torch.log_softmax(self.gate(context.float()), dim=-1)

    def set_mix_weights(self, weights: torch.Tensor) -> None:
        self.mix_log_weights.copy_(torch.log(weights.clamp_min(1e-12) / weights.sum()))

    # ---- the experts ------------------------------------------------------------------------------------
    def step_log_probs(self, observations: torch.Tensor, actions: torch.Tensor, *,
                       reference: bool = False) -> torch.Tensor:
        """``log pi_k(a|s)`` of N (state, action) pairs under each expert: (N, d) / (N,) -> (N, K)."""
        networks = self.references if reference else self.experts
        index = actions.reshape(-1, 1).long()
        return torch.stack([torch.log_softmax(network(observations.float()), dim=-1).gather(-1, index).squeeze(-1)
                            for network in networks], dim=-1)

    def trajectory_log_probs(self, observations: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor,
                             *, reference: bool = False) -> torch.Tensor:
        """``sum_t log pi_k(a_t|s_t)`` of padded trajectories (B, T, d) / (B, T) / (B, T) -> (B, K)."""
        batch, steps = actions.shape
        per_step = self.step_log_probs(observations.reshape(batch * steps, -1), actions, reference=reference)
        return (per_step.reshape(batch, steps, -1) * mask.unsqueeze(-1)).sum(dim=1)

    def mixture_log_probs(self, observations: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
        """``log sum_k w_k pi_k(a|s)`` for every action, (N, A); ``log_weights`` (N, K) or (K,)."""
        if self.hard_gating:
            best = log_weights.argmax(dim=-1, keepdim=True)
            log_weights = torch.where(torch.zeros_like(log_weights, dtype=torch.bool).scatter(-1, best, True),
                                      0.0, float("-inf"))
        per_expert = torch.stack([torch.log_softmax(network(observations.float()), dim=-1)
                                  for network in self.experts], dim=-2)  # (N, K, A)
        return torch.logsumexp(per_expert + log_weights.unsqueeze(-1), dim=-2)

    # ---- RLlib forward passes ---------------------------------------------------------------------------
    def _inference_logits(self, batch: dict[str, Any]) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        if CONTEXT in batch:
            log_weights = self.log_gate(batch[CONTEXT], obs.shape[0])
        else:
            log_weights = torch.log(self.average_weights.clamp_min(1e-12))
        return {Columns.ACTION_DIST_INPUTS: self.mixture_log_probs(obs, log_weights)}

    @override(TorchRLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            return self._inference_logits(batch)

    @override(TorchRLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            return self._inference_logits(batch)

    @override(TorchRLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        batch_size = batch[CHOSEN_ACTIONS].shape[0]
        return {
            LOGP_CHOSEN: self.trajectory_log_probs(batch[CHOSEN_OBS], batch[CHOSEN_ACTIONS], batch[CHOSEN_MASK]),
            LOGP_REJECTED: self.trajectory_log_probs(batch[REJECTED_OBS], batch[REJECTED_ACTIONS], batch[REJECTED_MASK]),
            LOG_GATE: self.log_gate(batch.get(CONTEXT), batch_size),
        }


def sip_gate_network(folder: str | Path, context_names: Sequence[str], expert_names: Sequence[str]) -> nn.Sequential:
    """An ``rlexec sip`` run's gate (``folder``: the run or its ``gate/``) as this module's gate network.

    The SIP gate standardises its input, ``net((x - mean) / std)``; folding that into the first layer
    (``W' = W / std``, ``b' = b - W (mean / std)``) gives a plain MLP with the same logits on raw x. Its
    columns are matched to ``context_names`` by name; a SIP feature the preference set lacks (e.g. the
    one-hot of a regime it has no pairs for) is taken as 0, which the bias absorbs.
    """
    from rlexec.algorithms.sip.gate import Gate

    folder = Path(folder)
    gate = Gate.load(folder / "gate" if (folder / "gate").is_dir() else folder)
    if list(gate.expert_names) != list(expert_names):
        raise ConfigError(f"gate_init {folder}: the SIP gate's experts {gate.expert_names} are not this run's "
                          f"{list(expert_names)} (same names, same order)")
    missing = [n for n in context_names if n not in gate.feature_names]
    if not context_names or missing:
        raise ConfigError(f"gate_init {folder}: the preference set's context features {missing or '(none recorded)'} "
                          f"are not the SIP gate's {gate.feature_names}; build the preferences with this rlexec")
    network = _mlp([len(context_names), *gate.hidden_sizes, len(expert_names)])
    with torch.no_grad():
        network.load_state_dict({k: v.clone() for k, v in gate.net.state_dict().items() if not k.startswith("0.")},
                                strict=False)
        first = gate.net[0]
        scaled = first.weight / gate.feature_std  # (H, D_sip)
        columns = [gate.feature_names.index(n) for n in context_names]
        network[0].weight.copy_(scaled[:, columns])
        network[0].bias.copy_(first.bias - scaled @ gate.feature_mean)
    return network


def _frozen(network: nn.Module) -> nn.Module:
    import copy

    frozen = copy.deepcopy(network)
    frozen.requires_grad_(False)
    return frozen.eval()


class MixturePolicy:
    """The trained mixture as an evaluation-loop actor for one context x (one episode's gate input).

    ``actions(observations)``: greedy (argmax of ``pi(.|s, x)``) or sampled from it with a seeded
    generator; ``log_probs(observations, actions)``: ``log pi(a|s, x)``. ``context=None`` uses the
    module's average training weights.
    """

    def __init__(self, module: MoEDPOModule, context: np.ndarray | None = None, *, mode: str = "greedy",
                 seed: int = 0, name: str = "moe_dpo"):
        if mode not in ("greedy", "sampled"):
            raise ConfigError(f"MixturePolicy: mode must be 'greedy' or 'sampled', got {mode!r}")
        self.module, self.mode, self.name = module, mode, name
        self.context = None if context is None else np.asarray(context, dtype=np.float32).reshape(1, -1)
        self._generator = torch.Generator().manual_seed(int(seed))

    def gate_weights(self) -> np.ndarray:
        """``w(x)`` for this policy's context, shape (K,)."""
        with torch.no_grad():
            if self.context is None:
                return self.module.average_weights.numpy().copy()
            return self.module.log_gate(torch.from_numpy(self.context), 1)[0].exp().numpy()

    def _logits(self, observations: np.ndarray) -> torch.Tensor:
        obs = torch.from_numpy(np.ascontiguousarray(observations, dtype=np.float32))
        batch = {Columns.OBS: obs}
        if self.context is not None:
            batch[CONTEXT] = torch.from_numpy(np.repeat(self.context, len(obs), axis=0))
        return self.module._forward_inference(batch)[Columns.ACTION_DIST_INPUTS]

    def actions(self, observations: np.ndarray) -> np.ndarray:
        logits = self._logits(observations)
        if self.mode == "greedy":
            return logits.argmax(dim=-1).numpy()
        return torch.multinomial(logits.exp(), 1, generator=self._generator).squeeze(-1).numpy()

    def log_probs(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        index = torch.as_tensor(np.asarray(actions, dtype=np.int64).reshape(-1, 1))
        return self._logits(observations).gather(-1, index).squeeze(-1).numpy().astype(np.float64)
