"""The algorithm registry: discovery of the algorithm folders, and a training driver that names none of them."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

import rlexec
from rlexec.algorithms import registry
from rlexec.errors import ConfigError
from rlexec.training.spec import TrainSpec, build_algorithm_config, module_spec

TINY_PPO = {"algorithm": "ppo", "environment": {"env": "bar"}, "env_runners": {"num_env_runners": 0}}


def test_every_algorithm_folder_registers_itself():
    assert registry.algorithm_names() == ["ddqn", "moe_dpo", "opd", "ppo", "qlearning"]
    assert registry.module_names() == ["opd"]
    assert registry.get_algorithm("qlearning").load_after_training().__name__ == "after_training"
    assert registry.get_algorithm("ppo").load_after_training() is None


def test_the_training_driver_names_no_algorithm():
    names = registry.algorithm_names() + registry.module_names()
    pattern = re.compile(r"""["'](%s)["']|rlexec\.algorithms\.(%s)\b""" % ("|".join(names), "|".join(names)))
    for path in (Path(rlexec.__file__).parent / "training").glob("*.py"):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        code = re.sub(r'"""[\s\S]*?"""', "", code)  # docstrings may give examples
        assert not pattern.search(code), f"{path.name} names an algorithm: {pattern.search(code).group(0)}"


def test_unknown_algorithm_and_module_name_the_choices():
    with pytest.raises(ConfigError, match=r"x.yaml: algorithm must be one of \['ddqn', 'moe_dpo', 'opd', 'ppo', 'qlearning'\]"):
        TrainSpec.from_dict({**TINY_PPO, "algorithm": "dqn"}, source="x.yaml")
    with pytest.raises(ConfigError, match=r"rl_module.module must be one of \['default', 'opd'\]"):
        module_spec({"module": "transformer"}, {}, "x.yaml")


def test_registering_one_name_twice_differently_is_an_error():
    entry = registry.AlgorithmEntry(name="ppo", config_class="somewhere:Else")
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register_algorithm(entry)


def test_an_algorithm_outside_rlexec_is_one_file(tmp_path, monkeypatch):
    """A user's algorithm: a config class in their own module, named as package.module:Class."""
    (tmp_path / "my_algo.py").write_text(textwrap.dedent("""
        from ray.rllib.algorithms.ppo import PPOConfig

        class SlowPPOConfig(PPOConfig):
            def __init__(self, algo_class=None):
                super().__init__(algo_class=algo_class)
                self.lr = 1.0e-6
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = TrainSpec.from_dict({**TINY_PPO, "algorithm": "my_algo:SlowPPOConfig"})
    config = build_algorithm_config(spec)
    assert type(config).__name__ == "SlowPPOConfig" and config.lr == 1.0e-6
    sys.modules.pop("my_algo", None)
    with pytest.raises(ConfigError, match="algorithm 'my_algo:Missing' cannot be loaded"):
        TrainSpec.from_dict({**TINY_PPO, "algorithm": "my_algo:Missing"})
