"""After training: the Q-table's visited states -> a Boltzmann policy distilled into a differentiable expert.

Trained on the shared observation (env ``action_space: shared_placement``, issue 9), the table itself
becomes the expert: :class:`~rlexec.policies.expert.ExpertPolicy` over the shared actions, with
``tau`` set so that the mean top placement probability on the states the trained policy visits is
``expert_greedy_mass`` (:func:`~rlexec.policies.expert.calibrate_temperature`). Otherwise:

``softmax(Q / tau)`` (spec 1.1 [DEFAULT]: tau_Q = 1) is fitted by cross-entropy into a small MLP
(:class:`~rlexec.policies.expert.MLPPolicy`, 2 x 64) on the states the trained epsilon-greedy
policy visits, and saved in ``<run>/expert``; a frozen copy of it is that expert's DPO reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlexec.algorithms.qlearning.binning import StateBinning
from rlexec.errors import ConfigError
from rlexec.policies.expert import ExpertPolicy, MLPPolicy, calibrate_temperature

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm


def boltzmann_targets(q_values: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(Q / tau)`` (spec 1.1: tau_Q = 1)."""
    return torch.softmax(q_values / temperature, dim=-1)


def distill_expert(
    q_source: Callable[[np.ndarray], Any] | Any,
    observations: np.ndarray,
    *,
    temperature: float = 1.0,
    epochs: int = 60,
    batch_size: int = 512,
    lr: float = 3e-3,
    hidden_sizes: Sequence[int] = (64, 64),
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
) -> MLPPolicy:
    """Fit an :class:`MLPPolicy` to the Boltzmann policy of ``q_source`` on ``observations``.

    ``q_source``: a function of an (N, obs_dim) array returning Q values (N, A), or an object with a
    ``q_values`` method (e.g. a :class:`~rlexec.algorithms.qlearning.module.TabularQModule`). Training
    minimises the cross-entropy ``-sum_a p(a|s) log pi(a|s)`` (= KL(p || pi) + const) with Adam over
    shuffled minibatches (rlexec defaults: lr 3e-3, batch 512, 60 epochs). The result's
    ``metadata["distillation"]`` holds the final mean KL(p || pi) (nats), the greedy-action
    agreement ``argmax pi == argmax Q`` and the share of states whose Q row has a unique maximum.
    """
    if temperature <= 0:
        raise ConfigError(f"distill_expert: temperature must be > 0, got {temperature}")
    obs = np.asarray(observations, dtype=np.float32)
    if obs.ndim != 2 or len(obs) == 0:
        raise ConfigError(f"distill_expert: observations must be a non-empty (N, obs_dim) array, got {obs.shape}")
    with torch.no_grad():
        if hasattr(q_source, "q_values"):  # an RLModule: takes and returns tensors
            q = q_source.q_values(torch.from_numpy(obs))
        else:
            q = q_source(obs)
        q = torch.as_tensor(_to_numpy(q), dtype=torch.float32)
    if q.shape != (len(obs), q.shape[-1]) or q.shape[-1] < 2:
        raise ConfigError(f"distill_expert: Q values must have shape (N, num_actions >= 2), got {tuple(q.shape)}")
    targets = boltzmann_targets(q, temperature)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2 x 64 MLP gains nothing from threads, and they stall on a busy machine
    try:
        return _fit(obs, q, targets, temperature=temperature, epochs=epochs, batch_size=batch_size, lr=lr,
                    hidden_sizes=hidden_sizes, seed=seed, metadata=metadata)
    finally:
        torch.set_num_threads(threads)


def _fit(obs, q, targets, *, temperature, epochs, batch_size, lr, hidden_sizes, seed, metadata) -> MLPPolicy:
    torch.manual_seed(seed)
    std = obs.std(axis=0)
    policy = MLPPolicy(obs_dim=obs.shape[1], num_actions=q.shape[1], hidden_sizes=hidden_sizes,
                          obs_mean=obs.mean(axis=0), obs_std=np.where(std > 1e-6, std, 1.0), metadata=metadata)
    x = torch.from_numpy(obs)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = -(targets[batch] * policy.log_probs(x[batch])).sum(dim=-1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    with torch.no_grad():
        log_pi = policy.log_probs(x)
        kl = (targets * (torch.log(targets.clamp_min(1e-12)) - log_pi)).sum(dim=-1).mean().item()
        agreement = (log_pi.argmax(dim=-1) == q.argmax(dim=-1)).float().mean().item()
        unique_max = ((q == q.max(dim=-1, keepdim=True).values).sum(dim=-1) == 1).float().mean().item()
    policy.metadata["distillation"] = {
        "kl": kl, "agreement": agreement, "unique_greedy_fraction": unique_max, "temperature": float(temperature),
        "epochs": int(epochs), "num_observations": int(len(obs)), "seed": int(seed),
    }
    return policy


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def collect_observations(
    env, q_table: np.ndarray, binning: StateBinning, *, num_episodes: int, epsilon: float, seed: int
) -> tuple[np.ndarray, list[float]]:
    """Roll out the epsilon-greedy table policy in ``env``; returns all observations met and episode returns.

    Greedy = argmax of the Q row (lowest index on ties), as in inference; the table is read directly
    (no RLlib per-step overhead).
    """
    rng = np.random.default_rng(seed)
    observations, returns = [], []
    for _ in range(num_episodes):
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        done, total = False, 0.0
        while not done:
            observations.append(obs)
            if rng.random() < epsilon:
                action = int(rng.integers(q_table.shape[1]))
            else:
                action = int(np.argmax(q_table[binning.index(obs[None])[0]]))
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return np.asarray(observations, dtype=np.float32), returns


def after_training(
    algo: Algorithm, run_dir: Path, *, num_episodes: int | None = None, temperature: float | None = None,
    epochs: int | None = None, seed: int | None = None,
) -> dict[str, Any]:
    """Collect states with the trained epsilon-greedy policy, distil the Boltzmann policy
    ``softmax(Q/temperature)`` into an :class:`~rlexec.policies.expert.MLPPolicy` (spec
    1.1 [DEFAULT]) and save it to ``run_dir / "expert"``; returns the distillation figures.

    Unset arguments come from the config (``expert_episodes``, ``expert_temperature``,
    ``expert_epochs``; ``seed`` from ``debugging(seed=...)``).
    """
    config = algo.config
    num_episodes = config.expert_episodes if num_episodes is None else num_episodes
    temperature = config.expert_temperature if temperature is None else temperature
    epochs = config.expert_epochs if epochs is None else epochs
    module = algo.get_module()
    q_table, binning, epsilon = module.q_table.detach().cpu().numpy().copy(), module.binning, float(module.epsilon)
    seed = int(config.seed or 0) if seed is None else seed
    env = algo.env_creator(dict(config.env_config))
    observations, returns = collect_observations(env, q_table, binning, num_episodes=num_episodes,
                                                 epsilon=epsilon, seed=seed + 10_007)
    states = binning.index(observations)
    metadata = {
        "algorithm": "qlearning", "env_config": dict(config.env_config), "seed": seed,
        "binning": binning.to_dict(), "iterations": int(algo.iteration),
    }
    if getattr(env, "config", None) is not None and getattr(env.config, "action_space", None) == "shared_placement":
        policy, figures = export_shared_expert(
            q_table, binning, observations, broker=env.config.broker.name, greedy_mass=config.expert_greedy_mass,
            size_concentration=config.expert_size_concentration, num_buckets=len(env.config.size_multipliers),
            metadata=metadata)
    else:
        q_fn = lambda obs: q_table[binning.index(obs)]  # noqa: E731  (table lookup for raw observations)
        policy = distill_expert(q_fn, observations, temperature=temperature, epochs=epochs, seed=seed,
                                metadata=metadata)
        figures = dict(policy.metadata["distillation"])
    policy.save(Path(run_dir) / "expert")
    visited = int(np.unique(states).size)
    counts = module.update_counts.detach().cpu().numpy()
    figures.update({
        "num_states_visited": visited,
        "fraction_states_visited": visited / binning.num_states,
        "num_observations": int(len(observations)),
        "collection_epsilon": epsilon,
        "collection_return_mean": float(np.mean(returns)),
        "state_action_pairs_trained": int((counts > 0).sum()),
        "mean_updates_per_trained_pair": float(counts[counts > 0].mean()) if (counts > 0).any() else 0.0,
        "collection_visits_on_trained_states": float((counts[states].sum(axis=1) > 0).mean()),
        "expert_path": str(Path(run_dir) / "expert"),
    })
    return figures


def export_shared_expert(q_table: np.ndarray, binning: StateBinning, observations: np.ndarray, *, broker: str,
                         greedy_mass: float, size_concentration: float, num_buckets: int,
                         metadata: dict[str, Any] | None = None) -> tuple[ExpertPolicy, dict[str, Any]]:
    """The placement table as a shared-action :class:`ExpertPolicy`; tau from the visited states' Q rows.

    ``observations``: the states the trained policy visits (one row per visit), so the calibration weighs
    each state by how often the expert meets it. Returns the expert and its figures (tau, greedy mass).
    """
    states = binning.index(observations)
    visited, visits = np.unique(states, return_counts=True)
    tau, mass = calibrate_temperature(q_table[visited], greedy_mass, weights=visits)
    policy = ExpertPolicy.from_q_table(broker=broker, q_table=q_table, binning=binning, temperature=tau,
                                       num_buckets=num_buckets, size_concentration=size_concentration,
                                       metadata=metadata)
    figures = {"temperature": tau, "greedy_mass_target": float(greedy_mass),
               "greedy_mass_visited": policy.greedy_mass(observations), "calibrated_mass": mass}
    policy.metadata["export"] = dict(figures)
    return policy, figures
