"""A two-expert MoEDPOModule with hand-set weights, and a run folder holding it, for the MoE-DPO tests."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import torch
import yaml

from rlexec.algorithms.moe_dpo.module import MoEDPOModule
from rlexec.algorithms.sip.gate import context_names
from rlexec.envs.lob_env import SHARED_OBSERVATION_NAMES
from rlexec.policies.checkpoints import MANIFEST_FILE, MANIFEST_FORMAT, MODULE_SUBPATH, WEIGHTS_FILE, _space_to_json

REGIMES = ["open", "midday"]
NAMES = context_names(REGIMES)
SPREAD = NAMES.index("spread_bps")
OBS_DIM, NUM_ACTIONS = len(SHARED_OBSERVATION_NAMES), 4
EXPERT_LOGITS = [(0, 1.0), (1, 5.0)]  # expert k puts this logit on this action, 0 elsewhere, in every state


def two_expert_module(expert_names, *, gate_hidden=(), hard=False) -> MoEDPOModule:
    """Expert 0 leans to action 0 (logit 1), expert 1 to action 1 (logit 5), whatever the state; the
    gate's logit of expert 1 is 0.5 spread_bps + 1 in the midday regime."""
    config = {"expert_names": list(expert_names), "gate": "moe", "context_dim": len(NAMES),
              "gate_hidden": list(gate_hidden), "context_names": NAMES, "expert_hidden": [4], "hard_gating": hard}
    module = MoEDPOModule(observation_space=gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32),
                          action_space=gym.spaces.Discrete(NUM_ACTIONS), inference_only=False, model_config=config)
    with torch.no_grad():
        for k, (action, logit) in enumerate(EXPERT_LOGITS):
            last = module.experts[k][-1]
            last.weight.zero_()
            last.bias.zero_()
            last.bias[action] = logit
        module.gate[-1].weight.zero_()
        module.gate[-1].bias.zero_()
        module.gate[-1].weight[1, SPREAD] = 0.5
        module.gate[-1].weight[1, NAMES.index("regime_midday")] = 1.0
    return module.eval()


def saved_run(folder, module, progress=(), preferences=None):
    """A run folder as `rlexec train` leaves it: the module's weights-only copy, config.yaml, progress.jsonl."""
    target = folder / "checkpoints" / "iter_1" / MODULE_SUBPATH / "default_policy"
    target.mkdir(parents=True)
    cls = type(module)
    (target / MANIFEST_FILE).write_text(json.dumps({
        "format": MANIFEST_FORMAT, "version": 1, "class": f"{cls.__module__}:{cls.__qualname__}",
        "observation_space": _space_to_json(module.observation_space), "action_space": _space_to_json(module.action_space),
        "model_config": dict(module.model_config)}))
    torch.save(module.state_dict(), target / WEIGHTS_FILE)
    training = {"preferences": str(preferences)} if preferences else {}
    (folder / "config.yaml").write_text(yaml.safe_dump({"algorithm": "moe_dpo", "training": training}))
    (folder / "progress.jsonl").write_text("".join(json.dumps(line) + "\n" for line in progress))
    return folder
