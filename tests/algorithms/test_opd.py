"""OPD (rlexec.algorithms.opd: config, learner, connectors, module): loss, teacher/student split, the recurrent module.

Everything runs on the shipped sample (split preset ``sample``) with tiny batches.
"""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexec.algorithms.opd.config import OPDConfig
from rlexec.algorithms.opd.connectors import TEACHER_ACTIONS, TeacherActionConnector
from rlexec.algorithms.opd.learner import DISTILLATION_LOSS, OPDLearner, distillation_loss
from rlexec.algorithms.opd.module import OPDRecurrentModule
from rlexec.policies.checkpoints import write_module_weights
from rlexec.envs import bar_env
from rlexec.envs.bar_env import ORACLE_OBS, BarExecutionEnv
from rlexec.envs.engine import NUM_PUBLIC_FEATURES
from rlexec.envs.interpreters import NUM_PRIVATE_FEATURES
from rlexec.errors import ConfigError
from rlexec.training.spec import TrainSpec, build_algorithm_config

MID = "default_policy"
SAMPLE = {"split": {"preset": "sample"}, "part": "train"}
TRAINING = {  # spec 2.2 settings that touch the loss, tiny batch
    "lr": 1.0e-4, "gamma": 1.0, "lambda_": 1.0, "clip_param": 0.3, "vf_clip_param": 10.0, "vf_loss_coeff": 1.0,
    "entropy_coeff": 0.01, "use_kl_loss": True, "kl_coeff": 0.5, "kl_target": 0.01, "grad_clip": 100.0,
    "train_batch_size_per_learner": 64, "minibatch_size": 32, "num_epochs": 1,
}


def make_spec(algorithm: str = "opd", env_config: dict | None = None, training: dict | None = None,
              seed: int = 3) -> TrainSpec:
    return TrainSpec.from_dict({
        "algorithm": algorithm, "name": "opd_test", "seed": seed, "stop": {"training_iterations": 1},
        "environment": {"env": "bar", "env_config": {**SAMPLE, **(env_config or {})}},
        "env_runners": {"num_envs_per_env_runner": 2},
        "training": {**TRAINING, **(training or {})},
        "rl_module": {"module": "opd"},
    })


# --------------------------------------------------------------------------------------- the loss


def test_distillation_loss_is_the_nll_of_the_teacher_action():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [2.0, 0.0, -1.0], [0.5, -0.5, 4.0]])
    teacher = torch.tensor([2, 0, 1, 0])

    def nll(row, a):
        values = logits[row].tolist()
        return -(values[a] - math.log(sum(math.exp(v) for v in values)))

    per_row = [nll(i, int(a)) for i, a in enumerate(teacher)]
    assert per_row[1] == pytest.approx(math.log(3))  # uniform over 3 actions
    assert distillation_loss(logits, teacher).item() == pytest.approx(sum(per_row) / 4, rel=1e-6)
    mask = torch.tensor([True, False, True, False])
    assert distillation_loss(logits, teacher, mask).item() == pytest.approx((per_row[0] + per_row[2]) / 2, rel=1e-6)
    # float teacher actions (as they may arrive from a numpy batch) are the same indices
    assert distillation_loss(logits, teacher.float(), mask).item() == pytest.approx((per_row[0] + per_row[2]) / 2,
                                                                                    rel=1e-6)
    # a confident correct logit -> loss near 0; the loss is differentiable w.r.t. the logits
    sharp = torch.tensor([[0.0, 50.0, 0.0]], requires_grad=True)
    loss = distillation_loss(sharp, torch.tensor([1]))
    assert loss.item() < 1e-12
    loss_wrong = distillation_loss(sharp, torch.tensor([0]))
    assert loss_wrong.item() == pytest.approx(50.0, rel=1e-6)
    loss_wrong.backward()
    assert sharp.grad is not None and sharp.grad[0, 0].item() < 0


@pytest.fixture(scope="module")
def sample_env() -> BarExecutionEnv:
    return BarExecutionEnv({**SAMPLE, "teacher_observation": True})


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory, sample_env) -> str:
    """A frozen oracle teacher: untrained, its heads rescaled so that its greedy actions vary with the state."""
    torch.manual_seed(11)
    teacher = OPDRecurrentModule(observation_space=sample_env.observation_space,
                                 action_space=sample_env.action_space, model_config={"oracle": True})
    # Centre the policy head on typical oracle states so that the argmax follows the state, not the bias.
    oracle_env = BarExecutionEnv({**SAMPLE, "oracle": True})
    states = []
    for seed in range(6):
        obs, _ = oracle_env.reset(seed=seed)
        states.append(obs)
        for a in (1, 2, 0, 3, 1, 4, 2, 0):
            obs, *_ = oracle_env.step(a)
            states.append(obs)
    with torch.no_grad():
        teacher.private_fc.weight.mul_(0.1)  # let the market (future included) weigh in against the private state
        teacher.private_fc.bias.mul_(0.1)
        features = teacher.embed(torch.from_numpy(np.stack(states)))
        teacher.pi.weight.normal_(0.0, 1.0)
        teacher.pi.bias.copy_(-teacher.pi.weight @ features.mean(0))
    path = tmp_path_factory.mktemp("teacher") / MID
    teacher.save_to_path(str(path))
    write_module_weights(path)  # what rlexec train writes next to every checkpoint
    return str(path)


@pytest.fixture(scope="module")
def opd_setup(ray_session, teacher_path):
    """A built OPD algorithm (mu 0.5, local), some sampled episodes, and the learner connector's train batch."""
    config = build_algorithm_config(make_spec(env_config={"teacher_observation": True},
                                              training={"distillation_coeff": 0.5,
                                                        "teacher_checkpoint": teacher_path}), local=True)
    algo = config.build_algo()
    learner = algo.learner_group._learner
    episodes = algo.env_runner.sample(num_episodes=4, random_actions=False)
    originals = copy.deepcopy(episodes)  # PPO's connector appends a bootstrap step to the episodes in place
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes, shared_data={},
                                       metrics=learner.metrics)
    yield {"algo": algo, "learner": learner, "episodes": originals, "batch": batch[MID], "config": config}
    algo.stop()


def test_opd_learner_adds_the_teacher_piece_only_with_distillation(opd_setup, ray_session):
    learner = opd_setup["learner"]
    assert isinstance(learner, OPDLearner)
    assert any(isinstance(p, TeacherActionConnector) for p in learner._learner_connector.connectors)
    opds = build_algorithm_config(make_spec(training={"distillation_coeff": 0.0}), local=True).build_learner(
        env=BarExecutionEnv(SAMPLE))
    assert isinstance(opds, OPDLearner)
    assert not any(isinstance(p, TeacherActionConnector) for p in opds._learner_connector.connectors)


def test_train_batch_has_teacher_actions_on_oracle_obs_and_student_obs(opd_setup):
    batch, episodes = opd_setup["batch"], opd_setup["episodes"]
    from rlexec.policies.checkpoints import load_module
    from ray.rllib.core.columns import Columns

    piece = next(p for p in opd_setup["learner"]._learner_connector.connectors
                 if isinstance(p, TeacherActionConnector))
    assert piece.teacher.oracle and not piece.teacher.training  # the frozen oracle teacher
    reference = load_module(opd_setup["config"].teacher_checkpoint)  # an independent copy
    assert all(e.is_done and len(e) == 8 for e in episodes)
    # PPO adds one bootstrap step per episode: rows = sum(len + 1), in episode order.
    student = np.concatenate([np.stack(e.get_observations()) for e in episodes])
    oracle = np.concatenate([np.stack([info[ORACLE_OBS] for info in e.get_infos()]) for e in episodes])
    assert batch[Columns.OBS].shape == student.shape == (4 * 9, student.shape[1])
    np.testing.assert_array_equal(batch[Columns.OBS].numpy(), student)
    with torch.no_grad():
        expected = reference.forward_inference({Columns.OBS: torch.from_numpy(oracle)})[Columns.ACTION_DIST_INPUTS]
        on_student = reference.forward_inference({Columns.OBS: torch.from_numpy(student)})[Columns.ACTION_DIST_INPUTS]
    np.testing.assert_array_equal(batch[TEACHER_ACTIONS].numpy(), expected.argmax(-1).numpy())
    assert len(set(expected.argmax(-1).tolist())) > 1, "the teacher's actions vary (the check can fail)"
    assert not torch.equal(expected.argmax(-1), on_student.argmax(-1)), "teacher acts on the oracle view"
    # The obs column holds no oracle data: every minute after the decision time is zero ...
    public = student[:, NUM_PRIVATE_FEATURES:].reshape(len(student), -1, NUM_PUBLIC_FEATURES)
    steps = np.rint(student[:, 1] * 8).astype(int)
    for row, t in enumerate(steps):
        assert not public[row, 30 + 30 * t:].any()
    # ... while the oracle view of the same states has the future filled in (except after the last step).
    oracle_public = oracle[:, NUM_PRIVATE_FEATURES:].reshape(len(oracle), -1, NUM_PUBLIC_FEATURES)
    assert all(oracle_public[row, 30 + 30 * t:].any() for row, t in enumerate(steps) if t < 8)
    np.testing.assert_array_equal(oracle[:, :NUM_PRIVATE_FEATURES], student[:, :NUM_PRIVATE_FEATURES])


def test_loss_is_ppo_plus_mu_times_distillation(opd_setup, ray_session):
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
    from ray.rllib.core.columns import Columns

    learner, batch = opd_setup["learner"], opd_setup["batch"]
    # An independent, plain RLlib PPO learner with the same module weights.
    ppo_config = build_algorithm_config(make_spec("ppo"), local=True)
    ppo = ppo_config.build_learner(env=BarExecutionEnv(SAMPLE))
    assert type(ppo) is PPOTorchLearner
    ppo.module.set_state(learner.module.get_state())

    fwd_opd = learner.module[MID].forward_train(batch)
    fwd_ppo = ppo.module[MID].forward_train(batch)
    assert torch.equal(fwd_opd[Columns.ACTION_DIST_INPUTS], fwd_ppo[Columns.ACTION_DIST_INPUTS])

    ppo_loss = ppo.compute_loss_for_module(module_id=MID, config=ppo.config.get_config_for_module(MID),
                                           batch=batch, fwd_out=fwd_ppo)
    mu0 = learner.config.copy(copy_frozen=False)
    mu0.distillation_coeff = 0.0
    opds_loss = learner.compute_loss_for_module(module_id=MID, config=mu0, batch=batch, fwd_out=fwd_opd)
    assert torch.equal(opds_loss, ppo_loss), "mu = 0 is exactly PPO's loss"

    config = learner.config.get_config_for_module(MID)
    assert config.distillation_coeff == 0.5
    opd_loss = learner.compute_loss_for_module(module_id=MID, config=config, batch=batch, fwd_out=fwd_opd)
    mask = batch[Columns.LOSS_MASK]
    assert mask.sum().item() == 4 * 8 and not mask.all()  # the bootstrap rows are masked out
    term = distillation_loss(fwd_opd[Columns.ACTION_DIST_INPUTS], batch[TEACHER_ACTIONS], mask)
    assert term.item() > 0.1
    assert (opd_loss - ppo_loss).item() == pytest.approx(0.5 * term.item(), rel=1e-5, abs=1e-7)
    assert torch.allclose(opd_loss, ppo_loss + 0.5 * term, rtol=0, atol=1e-6)
    # The masked bootstrap rows do not count: garbling their teacher actions changes nothing.
    garbled = dict(batch)
    garbled[TEACHER_ACTIONS] = torch.where(mask, batch[TEACHER_ACTIONS], (batch[TEACHER_ACTIONS] + 1) % 5)
    assert torch.equal(learner.compute_loss_for_module(module_id=MID, config=config, batch=garbled,
                                                       fwd_out=fwd_opd), opd_loss)


def test_distillation_loss_is_reported_by_training(opd_setup):
    result = opd_setup["algo"].train()
    value = result["learners"][MID][DISTILLATION_LOSS]
    assert np.isfinite(value) and value > 0


def test_opds_trains_exactly_like_ppo(ray_session):
    """One iteration of OPD with mu = 0 and of RLlib's PPO from the same seed: identical weights."""
    weights = {}
    for algorithm, training in (("opd", {"distillation_coeff": 0.0}), ("ppo", {})):
        algo = build_algorithm_config(make_spec(algorithm, training=training, seed=5), local=True).build_algo()
        try:
            before = {k: v.clone() for k, v in algo.learner_group._learner.module[MID].state_dict().items()}
            algo.train()
            after = algo.learner_group._learner.module[MID].state_dict()
            weights[algorithm] = (before, {k: v.clone() for k, v in after.items()})
        finally:
            algo.stop()
    (opd_before, opd_after), (ppo_before, ppo_after) = weights["opd"], weights["ppo"]
    assert opd_before.keys() == ppo_before.keys()
    for key in opd_before:
        assert torch.equal(opd_before[key], ppo_before[key]), key
        assert torch.equal(opd_after[key], ppo_after[key]), key
    assert any(not torch.equal(opd_before[k], opd_after[k]) for k in opd_before), "training changed the weights"


@pytest.mark.parametrize(
    "env_config, training, match",
    [
        ({"teacher_observation": True}, {"distillation_coeff": 0.01}, "teacher_checkpoint"),
        ({}, {"distillation_coeff": 0.01, "teacher_checkpoint": "/tmp/teacher"}, "teacher_observation"),
        ({"teacher_observation": True, "oracle": True},
         {"distillation_coeff": 0.01, "teacher_checkpoint": "/tmp/teacher"}, "oracle"),
        ({}, {"distillation_coeff": -0.1}, "distillation_coeff"),
    ],
)
def test_opd_config_validate_rejects(env_config, training, match):
    config = build_algorithm_config(make_spec(env_config=env_config, training=training), local=True)
    assert isinstance(config, OPDConfig)
    with pytest.raises(ConfigError, match=match):
        config.validate()


def test_opd_config_validate_accepts_opds_and_a_complete_student():
    build_algorithm_config(make_spec(training={"distillation_coeff": 0.0}), local=True).validate()
    build_algorithm_config(make_spec(env_config={"teacher_observation": True},
                                     training={"distillation_coeff": 0.01, "teacher_checkpoint": "/tmp/t"}),
                           local=True).validate()
    assert OPDConfig().distillation_coeff == 0.01  # spec 2.2 sup_coef


# ------------------------------------------------------------------------- teacher / student split

ORDER_ACTIONS = [1, 0, 2, 4, 1, 3, 0, 2]


def _rollout(env, order, actions=ORDER_ACTIONS):
    obs, info = env.reset(options={"order": order})
    observations, infos = [obs], [info]
    for a in actions:
        obs, _, terminated, _, info = env.step(a)
        observations.append(obs)
        infos.append(info)
    assert terminated
    return observations, infos


@pytest.fixture(scope="module")
def sample_order(sample_env):
    sample_env.reset(seed=4)
    return sample_env.state.batch.orders[0]


def test_student_observation_never_contains_future_minutes(monkeypatch, sample_order):
    base_env = BarExecutionEnv({**SAMPLE, "teacher_observation": True})
    base_obs, base_info = _rollout(base_env, sample_order)
    cut_step = 3  # minutes after decision step 3 (lookback 30 + 3 * 30) get garbled
    cut = 30 + 30 * cut_step
    real_prepare = bar_env.prepare_orders

    def prepare_with_other_future(market, orders, execution):
        batch = real_prepare(market, orders, execution)
        rng = np.random.default_rng(0)
        batch.public_features[:, cut:] += rng.normal(0.0, 5.0, batch.public_features[:, cut:].shape).astype(np.float32)
        return batch

    monkeypatch.setattr(bar_env, "prepare_orders", prepare_with_other_future)
    env = BarExecutionEnv({**SAMPLE, "teacher_observation": True})
    obs, info = _rollout(env, sample_order)
    for t in range(cut_step + 1):  # up to the step where the garbled minutes are still in the future
        np.testing.assert_array_equal(obs[t], base_obs[t])
        assert not np.array_equal(info[t][ORACLE_OBS], base_info[t][ORACLE_OBS]), t
    for t in range(cut_step + 1, 9):  # once those minutes close, the student sees them (the check can fail)
        assert not np.array_equal(obs[t], base_obs[t]), t
    assert ORACLE_OBS not in BarExecutionEnv(SAMPLE).reset(seed=0)[1]


def test_oracle_obs_in_info_equals_the_oracle_env_observation(sample_order):
    student_env = BarExecutionEnv({**SAMPLE, "teacher_observation": True})
    oracle_env = BarExecutionEnv({**SAMPLE, "oracle": True})
    student_obs, infos = _rollout(student_env, sample_order)
    oracle_obs, oracle_infos = _rollout(oracle_env, sample_order)
    assert student_env.observation_space == oracle_env.observation_space
    for t in range(9):
        np.testing.assert_array_equal(infos[t][ORACLE_OBS], oracle_obs[t])
        assert infos[t][ORACLE_OBS].dtype == np.float32
        assert infos[t]["fill_rate"] == oracle_infos[t]["fill_rate"]
    assert not np.array_equal(student_obs[0], oracle_obs[0])
    np.testing.assert_array_equal(student_obs[8], oracle_obs[8])  # at the end nothing is future any more
    # the info arrays are copies: the next step does not overwrite an earlier info
    assert not np.array_equal(infos[0][ORACLE_OBS][:2], infos[4][ORACLE_OBS][:2])


# ------------------------------------------------------------------------------- the network

def _module(n_steps=8, step_minutes=30, lookback_minutes=30, oracle=False, seed=0):
    size = NUM_PRIVATE_FEATURES + (lookback_minutes + n_steps * step_minutes) * NUM_PUBLIC_FEATURES
    torch.manual_seed(seed)
    module = OPDRecurrentModule(
        observation_space=gym.spaces.Box(-np.inf, np.inf, (size,), np.float32), action_space=gym.spaces.Discrete(5),
        model_config={"n_steps": n_steps, "step_minutes": step_minutes, "lookback_minutes": lookback_minutes,
                      "oracle": oracle},
    )
    module.eval()
    return module, size


def _observations(size, n_steps, step_minutes, lookback_minutes, seed):
    """One observation per decision step t = 0..n_steps, every public minute nonzero (future included)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(0.0, 1.0, (n_steps + 1, size)).astype(np.float32)
    obs[:, 0] = rng.uniform(0, 1, n_steps + 1)
    obs[:, 1] = np.arange(n_steps + 1) / n_steps
    obs[:, 2] = 1.0
    return obs


def _perturb_future(obs, n_steps, step_minutes, lookback_minutes, seed=99):
    rng = np.random.default_rng(seed)
    out = obs.copy()
    public = out[:, NUM_PRIVATE_FEATURES:].reshape(len(out), -1, NUM_PUBLIC_FEATURES)
    for t in range(len(out)):
        closed = lookback_minutes + t * step_minutes
        public[t, closed:] = rng.normal(0.0, 3.0, public[t, closed:].shape)
    return out


def _logits(module, obs):
    from ray.rllib.core.columns import Columns

    with torch.no_grad():
        return module.forward_inference({Columns.OBS: torch.from_numpy(obs)})[Columns.ACTION_DIST_INPUTS]


@pytest.mark.parametrize("n_steps, step_minutes, lookback_minutes", [(8, 30, 30), (4, 10, 15), (4, 10, 0), (3, 20, 50)])
def test_module_student_ignores_the_future_and_oracle_reads_it(n_steps, step_minutes, lookback_minutes):
    student, size = _module(n_steps, step_minutes, lookback_minutes, oracle=False)
    oracle, _ = _module(n_steps, step_minutes, lookback_minutes, oracle=True)
    obs = _observations(size, n_steps, step_minutes, lookback_minutes, seed=1)
    perturbed = _perturb_future(obs, n_steps, step_minutes, lookback_minutes)
    assert not np.array_equal(obs[:-1], perturbed[:-1])
    np.testing.assert_array_equal(obs[-1], perturbed[-1])  # at t = n_steps nothing is future

    base, moved = _logits(student, obs), _logits(student, perturbed)
    assert base.shape == (n_steps + 1, 5)
    for t in range(n_steps + 1):
        assert torch.equal(base[t], moved[t]), f"student logits moved with the future at step {t}"
    # ... but the student does read the past: garbling a closed minute changes its logits.
    past = obs.copy()
    past[n_steps, NUM_PRIVATE_FEATURES:NUM_PRIVATE_FEATURES + 6 * (lookback_minutes + step_minutes)] += 2.0
    assert not torch.equal(_logits(student, past)[n_steps], base[n_steps])

    oracle_base, oracle_moved = _logits(oracle, obs), _logits(oracle, perturbed)
    for t in range(n_steps):
        assert not torch.allclose(oracle_base[t], oracle_moved[t]), f"oracle logits ignore the future at step {t}"
    assert torch.equal(oracle_base[n_steps], oracle_moved[n_steps])


def test_module_outputs_and_values_shapes():
    from ray.rllib.core.columns import Columns

    module, size = _module()
    obs = torch.from_numpy(_observations(size, 8, 30, 30, seed=2))
    out = module.forward_train({Columns.OBS: obs})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (9, 5)
    assert out[Columns.EMBEDDINGS].shape == (9, 32)
    values = module.compute_values({Columns.OBS: obs})
    assert values.shape == (9,)
    assert torch.allclose(values, module.compute_values({Columns.OBS: obs}, embeddings=out[Columns.EMBEDDINGS]))
    assert torch.equal(module.forward_exploration({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS],
                       out[Columns.ACTION_DIST_INPUTS])
    # the layer sizes of spec 2.3 (OPD code): conv 6->3 k=3, GRU 64, trunk 128->64->32, 5 actions
    assert module.window_conv.in_channels == 6 and module.window_conv.out_channels == 3
    assert module.market_rnn.hidden_size == 64 and module.trunk[0].in_features == 128 and module.pi.out_features == 5


def test_module_matches_the_bar_env_observation(sample_env):
    from ray.rllib.core.columns import Columns

    module = OPDRecurrentModule(observation_space=sample_env.observation_space, action_space=sample_env.action_space,
                                model_config={})
    obs, _ = sample_env.reset(seed=0)
    logits = module.forward_inference({Columns.OBS: torch.from_numpy(obs[None])})[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (1, sample_env.action_space.n)


def test_module_rejects_a_wrong_observation_size_and_unknown_keys():
    box = gym.spaces.Box(-np.inf, np.inf, (NUM_PRIVATE_FEATURES + 6 * 270 + 6,), np.float32)
    with pytest.raises(ConfigError, match="observation size"):
        OPDRecurrentModule(observation_space=box, action_space=gym.spaces.Discrete(5), model_config={})
    ok = gym.spaces.Box(-np.inf, np.inf, (NUM_PRIVATE_FEATURES + 6 * 270,), np.float32)
    with pytest.raises(ConfigError, match="observation size"):  # right size for the defaults, wrong settings
        OPDRecurrentModule(observation_space=ok, action_space=gym.spaces.Discrete(5), model_config={"n_steps": 4})
    with pytest.raises(ConfigError, match="hiden"):
        OPDRecurrentModule(observation_space=ok, action_space=gym.spaces.Discrete(5), model_config={"hiden": 32})
