"""MoE-DPO's figures (issue 10): what training did, and which expert one episode's actions look like.

From a finished ``rlexec train`` run folder of ``algorithm: moe_dpo`` (:func:`training_figures`, also
run by the algorithm's ``after_training`` hook, so every run leaves them):

* ``logp_dynamics.png`` - per expert, the mean per-step log-probability of the preferred and of the
  rejected actions (``logp_chosen/<expert>``, ``logp_rejected/<expert>`` of ``progress.jsonl``) over the
  iterations, drawn as the change since the first iteration: the seed's Figure 2, preferred rising and
  rejected falling;
* ``gate_by_regime.png`` - the trained gate's mean weight ``w_k(x)`` over the preference set's contexts
  of each regime (one context counted once, however many of its trajectories are paired): which expert
  the policy trusts in which market.

From a ``rlexec regimes --store`` run with a ``kind: moe_dpo`` row (:func:`episode_gate_trace`): one
episode's gate weights over time, which are fixed at the window start (docs/moe_dpo.md), next to the
posterior responsibility ``p(k | s_1..t, a_1..t) ∝ w_k(x) prod_{u<=t} pi_k(a_u|s_u)`` of each fine-tuned
expert: which expert the executed actions look like, step by step.

The figures are drawn on their own Agg canvas (:mod:`rlexec.evaluation.plots`); matplotlib is imported
only when one is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlexec.errors import ConfigError

CHOSEN_PREFIX, REJECTED_PREFIX = "logp_chosen/", "logp_rejected/"  # rlexec.algorithms.moe_dpo.learner's keys
LOGP_FIGURE, GATE_FIGURE = "logp_dynamics.png", "gate_by_regime.png"


# ---- log-probability dynamics -------------------------------------------------------------------------
def logp_dynamics(progress: Sequence[dict[str, Any]], experts: Sequence[str] | None = None
                  ) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """``(iterations, experts, chosen, rejected)`` from progress.jsonl lines; ``chosen[i, k]`` is expert k's
    mean per-step log-probability of the preferred actions at iteration i (NaN where a line lacks it).
    ``experts``: the order to draw them in (the module's; the lines' own order follows no rule), others after."""
    logged = list(dict.fromkeys(key[len(CHOSEN_PREFIX):] for line in progress for key in line
                                if key.startswith(CHOSEN_PREFIX)))
    first = [e for e in experts or () if e in logged]
    experts = first + [e for e in logged if e not in first]
    if not experts:
        raise ConfigError("log-probability dynamics: no 'logp_chosen/<expert>' figures in progress.jsonl "
                          "(not a MoE-DPO run, or no iteration finished)")
    iterations = np.asarray([line["iteration"] for line in progress], dtype=np.int64)

    def column(prefix: str) -> np.ndarray:
        return np.asarray([[float(line.get(prefix + e, np.nan)) for e in experts] for line in progress])

    return iterations, experts, column(CHOSEN_PREFIX), column(REJECTED_PREFIX)


def logp_dynamics_figure(progress: Sequence[dict[str, Any]], data_label: str = "",
                         experts: Sequence[str] | None = None):
    """One panel per expert: change of the preferred and of the rejected actions' mean per-step
    log-probability since the first iteration (their first values in the legend)."""
    from rlexec.evaluation.plots import _regime_grid, _titles

    iterations, experts, chosen, rejected = logp_dynamics(progress, experts)
    fig, axes = _regime_grid(len(experts), width=3.8, height=3.2)
    for ax, (k, expert) in zip(axes, enumerate(experts)):
        for values, label, color in ((chosen[:, k], "preferred", "#55A868"), (rejected[:, k], "rejected", "#C44E52")):
            ax.plot(iterations, values - values[0], color=color, marker="o", ms=3, lw=1.6,
                    label=f"{label} (iter {iterations[0]}: {values[0]:.3f})")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(expert, fontsize=10)
        ax.set_xlabel("training iteration", fontsize=8)
        ax.set_ylabel("change of mean log pi_k(a|s), nats", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=True, framealpha=0.9)
    _titles(fig, "Log-probability of preferred and rejected actions during MoE-DPO training", data_label,
            "Per expert (its fine-tuned policy pi_k), the mean per-step log-probability of the actions of the "
            "preferred (green) and of the rejected (red) trajectories of the iteration's pairs, minus its value at "
            "the first iteration. DPO should raise the first and lower the second.")
    return fig


# ---- gate weights per regime --------------------------------------------------------------------------
def regime_gate_weights(module: Any, preferences: Any) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """``(regimes, experts, weights, contexts)``: ``weights[r, k]`` = mean of the gate's ``w_k(x)`` over the
    distinct contexts of regime r in the preference set; ``contexts[r]`` = how many."""
    first = {}
    for t in preferences.trajectories:  # one context x per context id: its trajectories share the window start
        first.setdefault(t.context_id, t)
    regimes = list(dict.fromkeys(t.regime for t in first.values()))
    x = torch.as_tensor(np.stack([t.context for t in first.values()]), dtype=torch.float32)
    with torch.no_grad():
        weights = module.log_gate(x if module.gate_kind == "moe" else None, len(x)).exp().double().numpy()
    labels = np.asarray([t.regime for t in first.values()], dtype=object)
    means = np.stack([weights[labels == r].mean(axis=0) for r in regimes])
    counts = np.asarray([int((labels == r).sum()) for r in regimes], dtype=np.int64)
    return regimes, list(module.expert_names), means, counts


def gate_by_regime_figure(regimes: Sequence[str], experts: Sequence[str], weights: np.ndarray,
                          counts: Sequence[int], data_label: str = ""):
    """Grouped bars: each regime's mean gate weight of each expert."""
    from rlexec.evaluation.plots import _new_figure, _titles, series_styles

    fig = _new_figure(max(6.0, 1.5 + 0.45 * len(regimes) * len(experts)), 4.6)
    ax = fig.subplots()
    styles = series_styles([e.removeprefix("expert_") for e in experts])
    width = 0.8 / len(experts)
    x = np.arange(len(regimes))
    for k, expert in enumerate(experts):
        ax.bar(x + (k - (len(experts) - 1) / 2) * width, weights[:, k], width, label=expert,
               color=styles[expert.removeprefix("expert_")]["color"], edgecolor="white")
    ax.set_xticks(x, [f"{r}\n({n} contexts)" for r, n in zip(regimes, counts)], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean gate weight w_k(x)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=True, framealpha=0.9, ncols=min(4, len(experts)))
    _titles(fig, "MoE-DPO gate weights per regime, after training", data_label,
            "Bars: the trained gate's weight of each expert, averaged over the preference set's contexts of the "
            "regime (the window-start features x of each context, counted once); the weights of a context sum to 1.")
    return fig


def training_figures(run_dir: str | os.PathLike) -> dict[str, str]:
    """Write logp_dynamics.png and gate_by_regime.png into a finished MoE-DPO run folder; their paths."""
    import yaml

    from rlexec.algorithms.moe_dpo.policy_kind import load_moe_dpo_module
    from rlexec.algorithms.moe_dpo.preferences import read_preferences
    from rlexec.evaluation.plots import save_figure
    from rlexec.evaluation.run_folders import read_progress, require_run_folder

    run_dir = require_run_folder(run_dir)
    progress = read_progress(run_dir)
    label = f"run {run_dir.parent.name}/{run_dir.name}, {len(progress)} iterations"
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    folder = (config.get("training") or {}).get("preferences")
    if not folder:
        raise ConfigError(f"{run_dir / 'config.yaml'}: training.preferences is not set (not a MoE-DPO run)")
    module = load_moe_dpo_module(run_dir, policy=str(run_dir))
    written = {"logp_dynamics": str(save_figure(logp_dynamics_figure(progress, label, module.expert_names),
                                                run_dir / LOGP_FIGURE))}
    regimes, experts, weights, counts = regime_gate_weights(module, read_preferences(folder))
    written["gate_by_regime"] = str(save_figure(
        gate_by_regime_figure(regimes, experts, weights, counts, f"{label}; preference set {folder}"),
        run_dir / GATE_FIGURE))
    return written


def after_training(algo: Any, run_dir: Path) -> dict[str, Any]:
    """``rlexec train``'s hook: the training figures of the run just finished."""
    return {"figures": training_figures(run_dir)}


# ---- one episode: gate and posterior responsibility over time -------------------------------------------
def posterior_responsibilities(log_weights: np.ndarray, step_log_probs: np.ndarray) -> np.ndarray:
    """``(T + 1, K)``: row t is ``p(k | s_1..t, a_1..t) ∝ w_k(x) prod_{u<=t} pi_k(a_u|s_u)`` (row 0: the gate).

    ``log_weights`` (K,) = log w(x); ``step_log_probs`` (T, K) = log pi_k(a_t|s_t). Computed in log space,
    so long episodes whose likelihoods underflow still give the posterior."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    steps = np.asarray(step_log_probs, dtype=np.float64).reshape(-1, log_weights.size)
    cumulative = log_weights + np.vstack([np.zeros((1, log_weights.size)), np.cumsum(steps, axis=0)])
    cumulative -= cumulative.max(axis=1, keepdims=True)
    posterior = np.exp(cumulative)
    return posterior / posterior.sum(axis=1, keepdims=True)


def expert_step_log_probs(module: Any, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """(T, K) ``log pi_k(a_t|s_t)`` under each of the module's (fine-tuned) experts."""
    obs = torch.as_tensor(np.array(observations, dtype=np.float32))  # a copy: parquet's arrays are read-only
    with torch.no_grad():
        return module.step_log_probs(obs, torch.as_tensor(np.array(actions, dtype=np.int64))).double().numpy()


def episode_gate_trace(store_folder: str | os.PathLike, policy: str, regime: str, episode: int,
                       run: str | os.PathLike | None = None) -> dict[str, Any]:
    """Gate weights and posterior responsibilities of one episode of a ``kind: moe_dpo`` row of a store.

    ``run``: the trained MoE-DPO run (default: the row's ``run`` in the store's config, with ``{regime}``
    filled in, relative to the working directory). Returns ``experts``, ``weights`` (K,) fixed at the window
    start, ``posterior`` (T + 1, K), ``actions`` (T,), ``fill_rate`` (T,), ``seed`` and ``run``."""
    import pyarrow.compute as pc

    from rlexec.algorithms.moe_dpo.policy_kind import MoEDPOActor, load_moe_dpo_module
    from rlexec.evaluation.trajectory_store import TrajectoryStore
    from rlexec.market.regimes import regime_family

    store = TrajectoryStore.read(store_folder)
    rows = {p.get("name"): p for p in store.meta.get("config", {}).get("policies", [])}
    if policy not in rows:
        raise ConfigError(f"{store_folder}: the store has no policy {policy!r} (it has {sorted(rows)})")
    if run is None:
        if rows[policy].get("kind") != "moe_dpo" or not isinstance(rows[policy].get("run"), str):
            raise ConfigError(f"{store_folder}: policy {policy!r} is not a kind: moe_dpo row with a run path; "
                              "pass the trained run (--run)")
        run = rows[policy]["run"].format(regime=regime_family(regime))
    where = (pc.field("regime") == regime) & (pc.field("policy") == policy) & (pc.field("episode") == int(episode))
    steps = store.steps.filter(where).sort_by("step")
    if steps.num_rows == 0:
        raise ConfigError(f"{store_folder}: no steps of policy {policy!r}, regime {regime!r}, episode {episode} "
                          f"(regimes {sorted(set(store.steps['regime'].to_pylist()))}, episodes from 0)")
    outcome = store.episodes.filter(where).to_pylist()[0]
    observations = np.asarray(steps["observation"].combine_chunks().flatten().to_numpy(zero_copy_only=False),
                              dtype=np.float32).reshape(steps.num_rows, -1)
    actions = steps["action"].to_numpy().astype(np.int64)
    module = load_moe_dpo_module(run, policy=policy)
    identity = {key: [outcome[key]] for key in ("side", "quantity", "window_start_s")}
    actor = MoEDPOActor(module, regime=regime_family(regime), identity=lambda n: identity, name=policy)
    actor.bind(observations[:1])  # the weights of the episode's first observation, as when it was run
    weights = actor.gate_weights()[0]
    step_logp = expert_step_log_probs(module, observations, actions)
    return {"experts": list(module.expert_names), "weights": weights,
            "posterior": posterior_responsibilities(np.log(weights), step_logp), "actions": actions,
            "fill_rate": steps["fill_rate"].to_numpy().astype(np.float64), "seed": int(outcome["seed"]),
            "run": str(run), "policy": policy, "regime": regime, "episode": int(episode)}


def episode_gate_figure(trace: dict[str, Any], data_label: str = ""):
    """Gate weight (dashed, constant: fixed at the window start) and posterior responsibility (solid) of
    each expert over the episode's decisions; the order's fill rate below."""
    from rlexec.evaluation.plots import _new_figure, _titles, series_styles

    experts, posterior = trace["experts"], trace["posterior"]
    steps = np.arange(posterior.shape[0])
    fig = _new_figure(8.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    styles = series_styles([e.removeprefix("expert_") for e in experts])
    for k, expert in enumerate(experts):
        color = styles[expert.removeprefix("expert_")]["color"]
        top.plot(steps, np.full(steps.size, trace["weights"][k]), color=color, ls=(0, (4, 3)), lw=1.2)
        top.plot(steps, posterior[:, k], color=color, lw=1.8, marker="o", ms=2.5, label=expert)
    top.set_ylim(-0.02, 1.02)
    top.set_ylabel("weight / responsibility")
    top.grid(alpha=0.3)
    top.legend(fontsize=7, frameon=True, framealpha=0.9, ncols=min(4, len(experts)))
    bottom.step(np.arange(1, steps.size), trace["fill_rate"], where="post", color="0.3")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("fill rate", fontsize=8)
    bottom.set_xlabel("decisions taken (0 = window start)")
    bottom.grid(alpha=0.3)
    _titles(fig, f"{trace['policy']} in {trace['regime']}, episode {trace['episode']} (seed {trace['seed']}): "
            "gate weight and posterior responsibility", data_label,
            "Dashed: the gate's weight w_k(x), fixed at the window start. Solid: p(k | s_1..t, a_1..t) ∝ "
            "w_k(x) prod_{u<=t} pi_k(a_u|s_u) under the fine-tuned experts: which expert the executed actions look "
            "like after t decisions.")
    return fig
