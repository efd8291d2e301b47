"""Quick paired evaluation of trained broker experts against their own broker with a fixed placement (issue 9).

    PYTHONPATH=$PWD nice -n 10 python configs/experts/quick_eval.py runs/experts/chain_*/experts_index.json \\
        --regimes baseline,open --episodes 30 --out runs/experts/quick_eval.csv

For each expert (broker k, regime r) in the indexes: expert k greedy, broker k always-market and broker k
always-limit (:class:`rlexec.policies.expert.BrokerActor`), all in the shared action space, on the same
held-out seeds (900000 + i; training draws its episodes from 63-bit derived seeds). Per episode:
price advantage PA = sigma (average fill price - p0) / p0 x 1e4 (bp, positive good, filled part), fill
rate, and the arrival score PA x FR - 50 (1 - FR) (what the arrival reward sums to). Prints the paired
differences expert - market and expert - limit (mean, 95% CI) and writes every episode to the CSV.
Every trajectory is also scored by every expert of its regime: the number of non-finite log-probs is printed.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

SEED0 = 900_000


def run_episode(env, actor, seed: int):
    obs, _ = env.reset(seed=seed)
    observations, actions, done = [], [], False
    while not done:
        action = int(actor.actions(obs)[0])
        observations.append(obs)
        actions.append(action)
        obs, _, done, _, _ = env.step(action)
    fill = env.executed / env.quantity
    pa = env.sigma * (env.cash / env.executed - env.arrival_price) / env.arrival_price * 1e4 if env.executed else 0.0
    score = pa * fill - env.config.unfilled_penalty_bps * (1.0 - fill)
    return {"pa_bps": pa, "fill_rate": fill, "score_bps": score}, np.array(observations), np.array(actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("indexes", nargs="+")
    parser.add_argument("--regimes", default="")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--out", default="runs/experts/quick_eval.csv")
    args = parser.parse_args()

    from rlexec.envs.lob_env import LOBExecutionEnv
    from rlexec.envs.lob_interpreters import LIMIT, MARKET
    from rlexec.evaluation.stats import paired_difference
    from rlexec.policies.expert import BrokerActor, ExpertPolicy

    entries = {}
    for path in args.indexes:
        entries.update({k: v for k, v in json.loads(Path(path).read_text()).items() if "expert" in v})
    wanted = set(filter(None, args.regimes.split(",")))
    by_regime: dict[str, dict[str, ExpertPolicy]] = {}
    configs = {}
    for name, entry in entries.items():
        expert = ExpertPolicy.load(entry["expert"])
        env_config = dict(expert.metadata["env_config"])
        regime = env_config["regime"]
        if wanted and regime not in wanted:
            continue
        by_regime.setdefault(regime, {})[expert.broker] = expert
        configs[(regime, expert.broker)] = {**env_config, "action_space": "shared", "training_reward": "arrival"}
    rows = []
    for regime, experts in sorted(by_regime.items()):
        trajectories = []
        for broker, expert in sorted(experts.items()):
            env = LOBExecutionEnv(configs[(regime, broker)])
            actors = {"expert": expert, "market": BrokerActor(broker, MARKET), "limit": BrokerActor(broker, LIMIT)}
            results = {}
            for label, actor in actors.items():
                results[label] = []
                for i in range(args.episodes):
                    figures, obs, actions = run_episode(env, actor, SEED0 + i)
                    results[label].append(figures)
                    rows.append({"regime": regime, "broker": broker, "policy": label, "seed": SEED0 + i, **figures})
                    if label == "expert":
                        trajectories.append((obs, actions))
            for metric in ("pa_bps", "score_bps"):
                e = np.array([r[metric] for r in results["expert"]])
                for base in ("market", "limit"):
                    d = paired_difference(e, np.array([r[metric] for r in results[base]]))
                    print(f"{regime:16s} {broker:5s} {metric:9s} expert - {base:6s} {d.mean:+7.3f} "
                          f"[{d.low:+7.3f}, {d.high:+7.3f}]", flush=True)
            fills = {k: np.mean([r["fill_rate"] for r in v]) for k, v in results.items()}
            print(f"{regime:16s} {broker:5s} fill rate " + " ".join(f"{k} {v:.4f}" for k, v in fills.items()), flush=True)
        bad = sum(int(not np.isfinite(e.trajectory_log_prob(o, a))) for o, a in trajectories for e in experts.values())
        print(f"{regime:16s} cross log-probs: {len(trajectories) * len(experts)} scored, {bad} not finite", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
