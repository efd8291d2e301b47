"""Loading a trained policy reads weights, never code, unless the caller says the checkpoint is trusted."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from rlexec.algorithms.opd.module import module_spec
from rlexec.algorithms.qlearning.binning import StateBinning
from rlexec.algorithms.qlearning.module import TabularQModule
from rlexec.envs.lob_env import OBSERVATION_NAMES, LOBExecutionEnv
from rlexec.policies.checkpoints import MANIFEST_FILE, CheckpointError, load_module, write_module_weights

EXECUTION = {"n_steps": 2, "step_minutes": 10, "lookback_minutes": 10}


def saved(module, folder):
    module.save_to_path(str(folder))
    return folder


@pytest.fixture
def opd_module():
    import gymnasium as gym

    torch.manual_seed(0)
    size = 3 + (10 + 2 * 10) * 6
    spec = module_spec({}, {"execution": EXECUTION})
    spec.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
    spec.action_space = gym.spaces.Discrete(5)
    return spec.build()


def test_weights_only_copy_acts_like_the_module(opd_module, tmp_path):
    folder = write_module_weights(saved(opd_module, tmp_path / "m"))
    loaded = load_module(folder)
    assert type(loaded) is type(opd_module)
    obs = torch.randn(7, opd_module.observation_space.shape[0])
    with torch.no_grad():
        expected = opd_module.forward_inference({"obs": obs})["action_dist_inputs"]
        np.testing.assert_array_equal(loaded.forward_inference({"obs": obs})["action_dist_inputs"], expected)


def test_a_q_table_round_trips_with_its_binning_and_buffers(tmp_path):
    env = LOBExecutionEnv({})
    binning = StateBinning.from_any(None, OBSERVATION_NAMES).to_dict()
    module = TabularQModule(observation_space=env.observation_space, action_space=env.action_space,
                            model_config={"binning": binning, "epsilon": 0.3})
    with torch.no_grad():
        module.q_table.normal_()
        module.num_updates.fill_(17)
    loaded = load_module(write_module_weights(saved(module, tmp_path / "q")))
    assert torch.equal(loaded.q_table, module.q_table) and int(loaded.num_updates) == 17
    assert loaded.binning == module.binning


def test_a_checkpoint_without_the_weights_copy_is_not_unpickled(opd_module, tmp_path):
    folder = saved(opd_module, tmp_path / "m")
    marker = tmp_path / "code_ran"

    class Payload:  # unpickling this runs code: what a hostile checkpoint would do
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "class_and_ctor_args.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="would unpickle it.*--trust-checkpoint"):
        load_module(folder)
    assert not marker.exists()
    with pytest.raises(CheckpointError):
        load_module(folder, trusted=True)  # trusted: it does unpickle (and the payload is no module)
    assert marker.exists()


def test_the_manifest_names_only_rlexec_or_rllib_classes(opd_module, tmp_path):
    folder = write_module_weights(saved(opd_module, tmp_path / "m"))
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["class"] = "subprocess:Popen"
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="not rlexec's or RLlib's"):
        load_module(folder)


def test_damaged_weights_name_the_file(opd_module, tmp_path):
    folder = write_module_weights(saved(opd_module, tmp_path / "m"))
    (folder / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="weights.pt: cannot load the weights"):
        load_module(folder)
