"""``rlexec train``: a mistyped ``--set`` key is named as the flag's, with the keys its section takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlexec.cli.main import main

PPO = str(Path(__file__).resolve().parents[2] / "configs" / "ppo.yaml")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("rlexec: error: ") and "Traceback" not in err
    return lines[0]


def test_mistyped_stop_key_names_the_flag_and_lists_the_stop_keys(tmp_path, capsys):
    assert main(["train", PPO, "--set", "stop.training_iteration=2", "--out", str(tmp_path)]) == 2
    assert _one_error_line(capsys) == ("rlexec: error: --set stop.training_iteration: unknown key 'training_iteration' "
                                       "in 'stop'; stop takes ['env_steps', 'time_s', 'training_iterations']")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("item", "expected"), [
    ("optimiser.lr=1", "--set optimiser.lr: unknown top-level key 'optimiser'; known: ['algorithm', "),
    ("rl_module.modle=x", ("--set rl_module.modle: unknown key 'modle' in 'rl_module'; "
                           "rl_module takes ['model_config', 'module']")),
    ("seed.value=1", "--set seed.value goes through a non-mapping ('seed' is not a section)"),
    ("stop.training_iterations=-1", ("stop.training_iterations must be a positive number, got -1 "
                                     "(with --set stop.training_iterations)")),
])
def test_bad_set_is_named_as_the_flags(tmp_path, capsys, item, expected):
    assert main(["train", PPO, "--set", item, "--out", str(tmp_path)]) == 2
    assert expected in _one_error_line(capsys)


def test_mistyped_rllib_key_is_caught_before_ray_starts(tmp_path, capsys):
    # PPOConfig.training() takes **kwargs and passes them up to AlgorithmConfig.training(): the keys of both count
    assert main(["train", PPO, "--set", "training.lrr=1e-4", "--out", str(tmp_path)]) == 2
    assert _one_error_line(capsys) == ("rlexec: error: --set training.lrr: unknown key 'lrr' in 'training'; "
                                       "did you mean ['lr']?")
    assert not any(tmp_path.iterdir())
