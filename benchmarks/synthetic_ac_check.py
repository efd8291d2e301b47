"""The learning-stack check of issue 11: PPO against the known optimum on a synthetic Almgren-Chriss market.

Reads a training run of ``configs/synthetic_ac_ppo.yaml`` (or any bar-env run on a linear-impact,
flat-volume synthetic split), and measures on out-of-sample orders (the split's test days, an order
seed the training never used):

* the optimum's expected cost per order in closed form (:mod:`rlexec.strategies.almgren_chriss`),
  and its cost simulated in the env (TWAP-pace action at every step): the two must agree;
* the greedy (argmax) and sampled policy of every checkpoint of the run, by cost in bp
  (minus the price advantage against the horizon's average price, the env's reward units);
* the training curve (cost of the sampled policy on the training episodes of each iteration,
  ``-episode_return / reward.scale`` with ``reward.alpha`` 0).

Writes ``<out>/learning_curve.png`` and ``<out>/check.json``, prints one JSON line.

    PYTHONPATH=$PWD python benchmarks/synthetic_ac_check.py runs/train/synthetic_ac_ppo --out runs/synthetic_ac
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

CRITERION = 0.02  # issue 11: within 2% of the optimum's expected cost


def check_setup(env_config: dict):
    """(execution, split, market) of a run's env_config; refuses a market where the closed form does not hold."""
    from rlexec.data.splits import DataSplit
    from rlexec.envs.config import ExecutionConfig
    from rlexec.errors import ConfigError

    execution = ExecutionConfig.from_dict(env_config.get("execution", {}))
    fill = execution.fill
    if fill.impact_exponent != 1.0 or fill.max_participation is not None or fill.half_spread_bps != 0:
        raise ConfigError("synthetic check: needs fill.impact_exponent 1, max_participation null and no spread "
                          f"(linear temporary impact only); got {fill}")
    if execution.reward.alpha != 0:
        raise ConfigError("synthetic check: needs reward.alpha 0 (the reward is then minus the cost)")
    split = DataSplit.from_dict(env_config["split"])
    if split.synthetic is None:
        raise ConfigError("synthetic check: the run's split has no synthetic market")
    return execution, split, split.market()


def test_orders(split, market, execution, count: int, seed: int, size_fraction):
    """Out-of-sample orders: the test days, drawn with ``seed``, sized as in training."""
    from rlexec.envs.engine import prepare_orders

    generator = split.order_generator(market, "test", execution.horizon_minutes, tuple(size_fraction))
    orders = generator.sample(market, np.random.default_rng(seed), count)
    return prepare_orders(market, orders, execution)


def policy_costs_bps(batch, execution, acting) -> np.ndarray:
    """(N,) cost in bp of ``acting`` (an Actor or FixedAction) on every order of ``batch``: minus the PA."""
    from rlexec.evaluation.episodes import BarEpisodes
    from rlexec.evaluation.runner import run_episodes

    result, _ = run_episodes(BarEpisodes(batch, execution), acting)
    fill_rate = result.metrics["fill_rate"]
    if not np.allclose(fill_rate, 1.0):
        raise RuntimeError(f"{acting.name}: fill rate {fill_rate.min():.4f} < 1; the cost would not compare")
    return -result.metrics["price_advantage_bps"]


def optimum_costs_bps(batch, execution) -> np.ndarray:
    from rlexec.strategies.almgren_chriss import optimal_expected_cost_bps

    return optimal_expected_cost_bps(batch.quantity, batch.volume, execution.fill.impact_coefficient_bps,
                                     execution.step_minutes)


def twap_action(execution) -> int:
    from rlexec.errors import ConfigError

    if execution.action_interpreter != "twap_relative" or 1.0 not in execution.action_values:
        raise ConfigError("synthetic check: needs action_interpreter twap_relative with the action value 1.0 (TWAP)")
    return execution.action_values.index(1.0)


def checkpoint_iteration(path: Path) -> int:
    return int(path.name.rsplit("_", 1)[-1])


def evaluate_run(run_dir: Path, *, num_orders: int = 2000, order_seed: int = 20261202) -> dict:
    """Every figure of the check for one training run folder."""
    import yaml

    from rlexec.evaluation.runner import FixedAction
    from rlexec.evaluation.stats import paired_difference
    from rlexec.policies.actors import make_actor
    from rlexec.policies.checkpoints import load_module

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    env_config = config["environment"]["env_config"]
    execution, split, market = check_setup(env_config)
    batch = test_orders(split, market, execution, num_orders, order_seed,
                        env_config.get("size_fraction", (0.001, 0.01)))
    optimum = optimum_costs_bps(batch, execution)
    simulated = policy_costs_bps(batch, execution, FixedAction("twap", twap_action(execution)))
    out = {
        "run": str(run_dir), "test_orders": len(batch), "order_seed": order_seed,
        "optimum_cost_bps": float(optimum.mean()),
        "optimum_simulated_cost_bps": float(simulated.mean()),
        "optimum_max_abs_gap_bps": float(np.abs(simulated - optimum).max()),
        "checkpoints": [],
    }
    for checkpoint in sorted((run_dir / "checkpoints").glob("iter_*"), key=checkpoint_iteration):
        module = load_module(checkpoint)
        row = {"iteration": checkpoint_iteration(checkpoint)}
        for kind in ("greedy", "sampled"):
            cost = policy_costs_bps(batch, execution, make_actor(module, kind, seed=order_seed))
            gap = paired_difference(cost, optimum)
            row[f"{kind}_cost_bps"] = float(cost.mean())
            row[f"{kind}_excess"] = float(cost.mean() / optimum.mean() - 1.0)
            row[f"{kind}_excess_ci95_bps"] = [float(gap.low), float(gap.high)]
        out["checkpoints"].append(row)
    scale = execution.reward.scale
    progress = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines() if line.strip()]
    out["training_curve"] = [{"iteration": p["iteration"], "cost_bps": -p["episode_return_mean"] / scale}
                             for p in progress if "episode_return_mean" in p]
    # The optimum over the training order distribution: Q ~ U(size_fraction) x the previous session's volume.
    low, high = env_config.get("size_fraction", (0.001, 0.01))
    day_volume = market.bars[0, :, 4].sum()
    horizon_volume = batch.volume[0].sum()
    out["optimum_expected_cost_training_bps"] = float(execution.fill.impact_coefficient_bps * 0.5 * (low + high)
                                                      * day_volume / horizon_volume)
    final = out["checkpoints"][-1] if out["checkpoints"] else None
    out["final_greedy_excess"] = final["greedy_excess"] if final else None
    out["passes_2pct"] = bool(final is not None and final["greedy_excess"] <= CRITERION)
    return out


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    curve = result["training_curve"]
    ax.plot([c["iteration"] for c in curve], [c["cost_bps"] for c in curve], lw=0.8, color="tab:blue", alpha=0.6,
            label="PPO, training episodes (sampled actions, in-sample)")
    points = result["checkpoints"]
    for kind, color, marker in (("greedy", "tab:red", "o"), ("sampled", "tab:orange", "s")):
        ax.plot([p["iteration"] for p in points], [p[f"{kind}_cost_bps"] for p in points], marker=marker,
                color=color, label=f"PPO checkpoints, {kind}, {result['test_orders']} test orders")
    ax.axhline(result["optimum_expected_cost_training_bps"], color="black", ls="--",
               label=f"optimum (TWAP), training orders: {result['optimum_expected_cost_training_bps']:.2f} bp")
    ax.axhline(result["optimum_cost_bps"], color="tab:green", ls=":",
               label=f"optimum (TWAP), test orders: {result['optimum_cost_bps']:.2f} bp")
    ax.axhline(result["optimum_cost_bps"] * (1 + CRITERION), color="tab:green", ls="-", lw=0.6,
               label="optimum + 2%")
    ax.set_xlabel("training iteration (2,048 env steps each)")
    ax.set_ylabel("expected execution cost (bp)")
    ax.set_title("PPO (TWAP-relative actions) vs the Almgren-Chriss optimum, linear impact")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def newest_run(path: Path) -> Path:
    """A run folder, or the newest run under a folder of runs (``runs/train/<name>``)."""
    if (path / "config.yaml").exists():
        return path
    runs = sorted(p for p in path.iterdir() if (p / "config.yaml").exists())
    if not runs:
        raise SystemExit(f"{path}: no training run folder (config.yaml) here")
    return runs[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="training run folder, or runs/train/<name> for the newest")
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic_ac"))
    parser.add_argument("--num-orders", type=int, default=2000)
    parser.add_argument("--order-seed", type=int, default=20261202)
    args = parser.parse_args(argv)
    result = evaluate_run(newest_run(args.run), num_orders=args.num_orders, order_seed=args.order_seed)
    result["plot"] = str(plot(result, args.out / "learning_curve.png"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "check.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k not in ("training_curve",)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
