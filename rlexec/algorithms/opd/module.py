"""The OPD policy/value network (spec 2.3) as an RLlib ``TorchRLModule``; serves PPO, the teacher and the student.

The bar env's flat observation (``rlexec.envs.interpreters``) is split back into its two sources::

    public  : (lookback + horizon) minutes x 6 features
              -> windows of ``step_minutes`` minutes (one per decision step; the lookback is
                 left-padded with zeros to whole windows)
              -> per window Conv1d(6->3, k=3) + ReLU -> Linear(->64) + ReLU        (OPD code)
              -> GRU(64, 64) across windows
              -> student: the GRU output at the last *closed* window (lookback windows + t - 1);
                 teacher (oracle): the output after the last window, i.e. the whole horizon
    private : (remaining / Q, elapsed / T, side) -> Linear(3->64) + ReLU
    trunk   : concat(128) -> Linear(128->64) + ReLU -> Linear(64->32) + ReLU
    actor   : Linear(32->actions)            critic: Linear(32->1)

Deviation from the OPD code, on purpose: the code feeds the *history* of private states through a
second GRU. Here the private state is Markov (what remains, when, which side), so a per-step MLP
carries the same information without making the module stateful; stateful RLlib modules need
sequence padding in every batch and cost throughput for no gain in this MDP.

Student features of unclosed minutes are zero in the observation, and the student reads the GRU at
the last closed window, so nothing of the future reaches it even if a caller passed oracle inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override

from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import NUM_PUBLIC_FEATURES
from rlexec.envs.interpreters import NUM_PRIVATE_FEATURES
from rlexec.errors import ConfigError

DEFAULT_MODEL_CONFIG = {
    "n_steps": 8,  # must match the env's ExecutionConfig (the trainer copies it from env_config)
    "step_minutes": 30,
    "lookback_minutes": 30,
    "oracle": False,  # True: the teacher, which reads the whole horizon
    "conv_channels": 3,  # OPD code
    "conv_kernel": 3,  # OPD code
    "hidden": 64,  # OPD code
    "head_hidden": 32,  # OPD code
}


class OPDRecurrentModule(TorchRLModule, ValueFunctionAPI):
    """Windowed-GRU market branch + private branch -> categorical policy over step fractions, and a value."""

    @override(TorchRLModule)
    def setup(self) -> None:
        rllib_defaults = {f.name for f in dataclasses.fields(DefaultModelConfig)}  # RLlib merges these in
        unknown = set(self.model_config) - set(DEFAULT_MODEL_CONFIG) - rllib_defaults
        if unknown:
            raise ConfigError(f"OPDRecurrentModule model_config: unknown key(s) {sorted(unknown)}; "
                              f"known: {sorted(DEFAULT_MODEL_CONFIG)}")
        cfg = {**DEFAULT_MODEL_CONFIG, **{k: v for k, v in self.model_config.items() if k in DEFAULT_MODEL_CONFIG}}
        self.n_steps, self.step_minutes = int(cfg["n_steps"]), int(cfg["step_minutes"])
        self.lookback_minutes, self.oracle = int(cfg["lookback_minutes"]), bool(cfg["oracle"])
        self.lookback_windows = -(-self.lookback_minutes // self.step_minutes)  # ceil
        self.pad_minutes = self.lookback_windows * self.step_minutes - self.lookback_minutes
        self.num_windows = self.lookback_windows + self.n_steps
        expected = NUM_PRIVATE_FEATURES + (self.lookback_minutes + self.n_steps * self.step_minutes) * NUM_PUBLIC_FEATURES
        size = int(np.prod(self.observation_space.shape))
        if size != expected:
            raise ConfigError(
                f"OPDRecurrentModule: observation size {size} does not match n_steps={self.n_steps}, "
                f"step_minutes={self.step_minutes}, lookback_minutes={self.lookback_minutes} (expects {expected}); "
                "give the module the env's execution settings"
            )
        hidden, channels, kernel = int(cfg["hidden"]), int(cfg["conv_channels"]), int(cfg["conv_kernel"])
        self.window_conv = nn.Conv1d(NUM_PUBLIC_FEATURES, channels, kernel_size=kernel)
        self.window_fc = nn.Linear(channels * (self.step_minutes - kernel + 1), hidden)
        self.market_rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.private_fc = nn.Linear(NUM_PRIVATE_FEATURES, hidden)
        self.trunk = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, int(cfg["head_hidden"])), nn.ReLU()
        )
        self.pi = nn.Linear(int(cfg["head_hidden"]), self.action_space.n)
        self.vf = nn.Linear(int(cfg["head_hidden"]), 1)

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, obs) -> (B, head_hidden) features shared by actor and critic."""
        batch = obs.shape[0]
        private = obs[:, :NUM_PRIVATE_FEATURES]
        public = obs[:, NUM_PRIVATE_FEATURES:].reshape(batch, -1, NUM_PUBLIC_FEATURES)
        if self.pad_minutes:
            public = nn.functional.pad(public, (0, 0, self.pad_minutes, 0))
        windows = public.reshape(batch * self.num_windows, self.step_minutes, NUM_PUBLIC_FEATURES).transpose(1, 2)
        per_window = torch.relu(self.window_conv(windows)).flatten(1)
        per_window = torch.relu(self.window_fc(per_window)).reshape(batch, self.num_windows, -1)
        sequence, last = self.market_rnn(per_window)
        if self.oracle:
            market = last[0]
        else:
            step = torch.round(private[:, 1] * self.n_steps).long().clamp(0, self.n_steps)
            index = self.lookback_windows + step - 1
            market = sequence[torch.arange(batch), index.clamp(min=0)]
            # No closed window yet (no lookback, t = 0): the GRU's initial state, never window 0 (the future).
            market = torch.where((index >= 0).unsqueeze(-1), market, torch.zeros_like(market))
        return self.trunk(torch.cat([market, torch.relu(self.private_fc(private))], dim=1))

    @override(TorchRLModule)
    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.pi(self.embed(batch[Columns.OBS]))}

    @override(TorchRLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        embeddings = self.embed(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: self.pi(embeddings), Columns.EMBEDDINGS: embeddings}

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        if embeddings is None:
            embeddings = self.embed(batch[Columns.OBS])
        return self.vf(embeddings).squeeze(-1)


def module_spec(model_config: dict[str, Any], env_config: dict[str, Any]) -> RLModuleSpec:
    """``rl_module: {module: opd}``: the OPD network with the bar env's shape and view copied in
    (``n_steps``, ``step_minutes``, ``lookback_minutes`` from ``env_config.execution``, ``oracle``)."""
    model_config = dict(model_config)
    execution = ExecutionConfig.from_dict(env_config.get("execution", {}))
    for key, value in (("n_steps", execution.n_steps), ("step_minutes", execution.step_minutes),
                       ("lookback_minutes", execution.lookback_minutes),
                       ("oracle", bool(env_config.get("oracle", False)))):
        model_config.setdefault(key, value)
    return RLModuleSpec(module_class=OPDRecurrentModule, model_config=model_config)
