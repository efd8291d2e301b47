"""configs/experts/: the 28 broker-expert YAMLs are valid training specs, and what the committed script writes."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from rlexec.envs.lob_env import LOBExecutionConfig, LOBExecutionEnv
from rlexec.training.spec import TrainSpec, build_algorithm_config

ROOT = Path(__file__).resolve().parents[2]
EXPERTS = ROOT / "configs" / "experts"
YAMLS = sorted(EXPERTS.glob("*.yaml"))
REGIMES = ("baseline", "open", "midday", "bullish", "bearish", "illiquid", "volatility_ramp")


def test_one_yaml_per_broker_and_regime():
    assert {p.stem for p in YAMLS} == {f"{b}_{r}" for b in ("twap", "vwap", "is", "pov") for r in REGIMES}


@pytest.mark.parametrize("path", YAMLS, ids=[p.stem for p in YAMLS])
def test_expert_yaml_builds_a_shared_placement_q_learner(path):
    spec = TrainSpec.from_yaml(path)
    broker, regime = path.stem.split("_", 1)
    env_config = spec.sections["environment"]["env_config"]
    config = LOBExecutionConfig.from_dict(env_config)
    assert (config.broker.name, config.regime, config.action_space) == (broker, regime, "shared_placement")
    algo_config = build_algorithm_config(spec, local=True)
    algo_config.validate()
    env = LOBExecutionEnv(config)
    decisions = round(config.window_minutes * 60 / config.decision_interval_s)
    assert decisions == 60 and algo_config.gamma == pytest.approx(1 - 1 / decisions, abs=1e-6)
    assert algo_config.epsilon_decay_unit == "episode" and env.action_space.n == 3


def test_yamls_are_what_the_committed_script_writes(tmp_path):
    header = YAMLS[0].read_text().splitlines()[0]
    args = shlex.split(re.search(r"make_configs\.py(.*)$", header).group(1))
    subprocess.run([sys.executable, str(EXPERTS / "make_configs.py"), *args, "--out", str(tmp_path)], check=True)
    for path in YAMLS:
        assert (tmp_path / path.name).read_text() == path.read_text(), path.name
