"""A batched rollout path for the bar env on RLlib's new API stack (``env_runners: {batched: true}``).

RLlib's ``SingleAgentEnvRunner`` steps a gymnasium vector env one timestep at a time and grows every
episode item by item; for 8-step episodes with 1,623-float observations that bookkeeping, not the
simulator, bounds throughput. :class:`BatchedBarEnvRunner` keeps the same runner (RLModule, weights
sync, metrics, checkpoint state, fan-out over ``num_env_runners``) and replaces only ``_sample``:

1. **Orders.** The runner's vector env is built as usual (``num_envs_per_env_runner`` plain
   :class:`~rlexec.envs.bar_env.BarExecutionEnv` instances, seeded ``seed + worker_index + i`` by RLlib);
   here they are only order sources ("lanes"). Each lane draws its orders with
   :meth:`BarExecutionEnv.next_order_index`, the draws its own ``reset()`` makes, so lane i hosts the
   orders that sub-env i of the plain path would host, in the same sequence.
2. **Stepping.** All drawn orders go into one :class:`~rlexec.envs.engine.OrderBatch`; the first lane's
   engine, observation interpreter(s), action interpreter and reward step the whole batch in lockstep
   (the env's own pieces, so an action means the same as in the plain env).
3. **Policy.** Per decision step one ``forward_exploration`` (or ``forward_inference``) of the RLModule on
   the whole ``[N, obs]`` batch, called directly, not through the env-to-module / module-to-env
   connector pipelines (those iterate over episodes item by item). Actions are drawn the way RLlib's
   default ``GetActions`` connector draws them: the module's action distribution ``from_logits``,
   sampled (deterministic under ``explore=False``), with ``action_logp`` and ``action_dist_inputs``
   kept for PPO's learner. A module that returns its own actions (DQN's epsilon-greedy or argmax) keeps
   them, and no log-probabilities are stored. Custom env-to-module / module-to-env connectors and
   stateful modules are refused with a clear error.
4. **Episodes.** Each finished order becomes one numpy ``SingleAgentEpisode`` built from array slices in
   one constructor call. Infos are slim: empty, or only ``oracle_obs`` (the teacher's view) under
   ``env_config.teacher_observation: true``, which is what the OPD learner reads.

Only whole episodes are returned: a ``sample(num_timesteps=T)`` call runs ``ceil(T / n_steps)`` orders,
rounded up to a multiple of the lanes so that every lane advances by the same number of episodes
(as the plain path's sub-envs do). Per-episode callbacks are not called (refused if configured).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils import force_list
from ray.rllib.utils.annotations import override
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.utils.metrics import ENV_RESET_TIMER, ENV_STEP_TIMER, RLMODULE_INFERENCE_TIMER, WEIGHTS_SEQ_NO

import gymnasium as gym

from rlexec.envs.bar_env import ORACLE_OBS, BarExecutionEnv
from rlexec.envs.engine import OrderBatch
from rlexec.errors import ConfigError

_EPISODE_CALLBACKS = ("on_episode_created", "on_episode_start", "on_episode_step", "on_episode_end")


class BatchedBarEnvRunner(SingleAgentEnvRunner):
    """``SingleAgentEnvRunner`` whose ``sample()`` steps all of a call's orders at once (see the module doc)."""

    @override(SingleAgentEnvRunner)
    def __init__(self, *, config, **kwargs):
        if config._env_to_module_connector is not None or config._module_to_env_connector is not None:
            raise ConfigError("env_runners.batched: the batched runner calls the RLModule directly and cannot run "
                              "custom env-to-module / module-to-env connectors; set env_runners.batched: false")
        callbacks = [c for c in force_list(config.callbacks_class) if c is not RLlibCallback]
        if callbacks or any(getattr(config, f"callbacks_{name}", None) for name in _EPISODE_CALLBACKS):
            raise ConfigError("env_runners.batched: the batched runner builds whole episodes and calls no per-episode "
                              "callbacks; remove the callbacks or set env_runners.batched: false")
        super().__init__(config=config, **kwargs)
        if self.module is not None and self.module.is_stateful():
            raise ConfigError("env_runners.batched: stateful (recurrent-state) RLModules are not supported")
        self._action_rng = np.random.default_rng(self._seed)

    @override(SingleAgentEnvRunner)
    def make_env(self) -> None:
        super().make_env()
        vector = self.env.unwrapped
        if not hasattr(vector, "envs"):
            raise ConfigError("env_runners.batched needs the sync vector env (gym_env_vectorize_mode: SYNC), "
                              f"got {type(vector).__name__}")
        self._lanes: list[BarExecutionEnv] = [env.unwrapped for env in vector.envs]
        for lane in self._lanes:
            if not isinstance(lane, BarExecutionEnv):
                raise ConfigError(f"env_runners.batched runs the bar env only (environment.env: bar), "
                                  f"got {type(lane).__name__}")
        if not isinstance(self._lanes[0].action_space, gym.spaces.Discrete):
            raise ConfigError("env_runners.batched supports discrete actions only (env_config.continuous: false)")

    @override(SingleAgentEnvRunner)
    def _sample(self, *, num_timesteps: int | None = None, num_episodes: int | None = None, explore: bool,
                random_actions: bool = False, force_reset: bool = False) -> list[SingleAgentEpisode]:
        n_steps = self._lanes[0].execution.n_steps
        wanted = num_episodes if num_episodes is not None else math.ceil(num_timesteps / n_steps)
        if wanted <= 0:
            return []
        with self.metrics.log_time(ENV_RESET_TIMER):
            batch = self._draw_orders(math.ceil(wanted / len(self._lanes)), num_episodes)
        if num_episodes is not None:
            batch = batch.select(np.arange(num_episodes))
        episodes = self._run(batch, n_steps, explore=explore, random_actions=random_actions)
        self._done_episodes_for_metrics.extend(episodes)
        steps = len(episodes) * n_steps
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=steps)
        self._increase_sampled_metrics(steps, len(episodes))
        return episodes

    def _draw_orders(self, per_lane: int, num_episodes: int | None) -> OrderBatch:
        """``per_lane`` orders from every lane, episode-major (lane 0's k-th, lane 1's k-th, ...): the order
        in which the plain path's lockstepped sub-envs finish their episodes."""
        # The plain runner seeds its sub-envs on its first reset (also after make_env) and again after every
        # num_episodes call (it then sets _needs_initial_reset), with seed + i for sub-env i.
        reseed = self._needs_initial_reset
        indices = np.empty((per_lane, len(self._lanes)), dtype=np.int64)
        for i, lane in enumerate(self._lanes):
            seed = self._seed + i if (reseed and self._seed is not None) else None
            for k in range(per_lane):
                indices[k, i] = lane.next_order_index(seed=seed if k == 0 else None)
        self._needs_initial_reset = num_episodes is not None
        per_lane_batches = [lane.order_pool.select(indices[:, i]) for i, lane in enumerate(self._lanes)]
        lane_major = OrderBatch.concatenate(per_lane_batches)
        episode_major = np.arange(len(lane_major)).reshape(len(self._lanes), per_lane).T.reshape(-1)
        return lane_major.select(episode_major)

    def _run(self, batch: OrderBatch, n_steps: int, *, explore: bool, random_actions: bool) -> list[SingleAgentEpisode]:
        env = self._lanes[0]  # its pieces step the whole batch; the lane's own episode is not used
        n = len(batch)
        observations = np.empty((n, n_steps + 1, env.observation_space.shape[0]), dtype=np.float32)
        oracle = np.empty_like(observations) if env.observe_oracle is not None else None
        actions = np.empty((n, n_steps), dtype=np.int64)
        # Random actions (RLlib's warm-up sampling) come with no model outputs, as in the plain runner;
        # nor do a module's own actions (DQN's epsilon-greedy and argmax): they stay None then.
        logp = dist_inputs = None
        rewards = np.empty((n, n_steps), dtype=np.float64)

        state = env.engine.reset(batch)
        observations[:, 0] = env.observe(state)
        if oracle is not None:
            oracle[:, 0] = env.observe_oracle(state)
        for t in range(n_steps):
            if random_actions:
                actions[:, t] = self._action_rng.integers(env.action_space.n, size=n)
            else:
                with self.metrics.log_time(RLMODULE_INFERENCE_TIMER):
                    actions[:, t], step_logp, step_inputs = self._act(observations[:, t], explore, t)
                if step_logp is not None:
                    if logp is None:
                        logp = np.empty((n, n_steps), dtype=np.float32)
                        dist_inputs = np.empty((n, n_steps, step_inputs.shape[-1]), dtype=np.float32)
                    logp[:, t], dist_inputs[:, t] = step_logp, step_inputs
            with self.metrics.log_time(ENV_STEP_TIMER):
                outcome = env.engine.step(env.interpret_action(actions[:, t], state))
                rewards[:, t] = env.reward_fn(outcome, batch.quantity)
                observations[:, t + 1] = env.observe(state)
                if oracle is not None:
                    oracle[:, t + 1] = env.observe_oracle(state)
        return [self._episode(i, observations, actions, rewards, logp, dist_inputs, oracle) for i in range(n)]

    def _act(self, observations: np.ndarray, explore: bool,
             t: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Actions, their log-probabilities and the distribution inputs for a ``[N, obs]`` batch, drawn as
        RLlib's ``GetActions`` connector draws them: a module that returns its own actions (DQN) keeps
        them, with no log-probabilities or distribution inputs (None)."""
        module = self.module
        inputs = {Columns.OBS: torch.from_numpy(observations).to(self._device)}
        with torch.no_grad():
            if explore:
                # PPO ignores t; exploration schedules see the global step count as in the plain runner.
                runners = self.config.num_env_runners or 1
                global_t = (self.num_env_steps_sampled_lifetime // runners + t * len(observations)) * runners
                out = module.forward_exploration(inputs, t=global_t)
                dist_class = module.get_exploration_action_dist_cls()
            else:
                out = module.forward_inference(inputs)
                dist_class = module.get_inference_action_dist_cls()
            if Columns.ACTIONS in out:
                return out[Columns.ACTIONS].cpu().numpy(), None, None
            logits = out[Columns.ACTION_DIST_INPUTS]
            dist = dist_class.from_logits(logits)
            if not explore:
                dist = dist.to_deterministic()
            actions = dist.sample()
            logp = out[Columns.ACTION_LOGP] if Columns.ACTION_LOGP in out else dist.logp(actions)
        return actions.cpu().numpy(), logp.cpu().numpy(), logits.cpu().numpy()

    def _episode(self, i: int, observations, actions, rewards, logp, dist_inputs, oracle) -> SingleAgentEpisode:
        n_steps = actions.shape[1]
        infos = [{} for _ in range(n_steps + 1)] if oracle is None else [{ORACLE_OBS: view} for view in oracle[i]]
        # Buffers over numpy arrays are born finalized: the episode is what to_numpy() would make of the
        # plain runner's lists, without the per-item appends.
        model_outputs = {WEIGHTS_SEQ_NO: InfiniteLookbackBuffer(np.full(n_steps, self._weights_seq_no))}
        if logp is not None:
            model_outputs[Columns.ACTION_LOGP] = InfiniteLookbackBuffer(logp[i])
            model_outputs[Columns.ACTION_DIST_INPUTS] = InfiniteLookbackBuffer(dist_inputs[i])
        return SingleAgentEpisode(
            observations=InfiniteLookbackBuffer(observations[i]),
            infos=infos,
            actions=InfiniteLookbackBuffer(actions[i]),
            rewards=InfiniteLookbackBuffer(rewards[i]),
            extra_model_outputs=model_outputs,
            terminated=True,
            observation_space=self.env.single_observation_space,
            action_space=self.env.single_action_space,
            len_lookback_buffer=0,
        )

    @override(SingleAgentEnvRunner)
    def get_metrics(self) -> dict[str, Any]:
        # Episode statistics are sliding windows of this many episodes; older ones would be logged
        # only to fall out of the window again (thousands of log calls per sample for nothing).
        window = max(1, math.ceil(self.config.metrics_num_episodes_for_smoothing / (self.config.num_env_runners or 1)))
        del self._done_episodes_for_metrics[:-window]
        return super().get_metrics()
