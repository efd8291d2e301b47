"""Write configs/experts/<broker>_<regime>.yaml: one Q-learning broker expert per broker and regime (issue 9).

    python configs/experts/make_configs.py [--episodes 2000] [--episodes-per-update 4] [--regimes a,b,...]

Every file trains broker k's placement on the shared observation (env ``action_space:
shared_placement``: the child size is broker k's bucket, the mode of expert k) in a 30-minute window
of 30-s decisions (60 decisions) inside the regime's session, and exports the table as a
shared-action :class:`rlexec.policies.expert.ExpertPolicy` in ``<run>/expert``. The schedules are
scaled to the episode length (spec 1.1 note 2): gamma = 1 - 1/N_dec; epsilon decays per episode to
its floor after 60% of the episodes; alpha per batched update, to its floor after 60% of the updates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

BROKERS = ("twap", "vwap", "is", "pov")
REGIMES = ("baseline", "open", "midday", "bullish", "bearish", "illiquid", "volatility_ramp")
WINDOW_MINUTES = 30
DECISION_S = 30.0
# Regimes whose own window is the whole session start at 10:30, past the opening auction's thin book and
# the open regime's window; open and midday keep their windows' starts (09:30, 12:00).
SESSION_WINDOW_START = "10:30"
OWN_WINDOW = ("open", "close", "midday")
EPSILON, EPSILON_FINAL, ALPHA, ALPHA_FINAL = 0.9, 0.05, 0.2, 0.02
DECAY_SHARE = 0.6  # the share of training over which epsilon and alpha decay to their floors


def expert_config(broker: str, regime: str, *, episodes: int, episodes_per_update: int, seed: int,
                  time_s: float | None = None, expert_episodes: int = 20) -> dict:
    decisions = int(WINDOW_MINUTES * 60 / DECISION_S)
    updates = max(1, episodes // episodes_per_update)
    env_config = {"regime": regime, "broker": broker, "action_space": "shared_placement",
                  "training_reward": "decision_price", "decision_interval_s": DECISION_S,
                  "window_minutes": WINDOW_MINUTES}
    if regime not in OWN_WINDOW:
        env_config["window_start"] = SESSION_WINDOW_START
    return {
        "algorithm": "qlearning",
        "name": f"expert_{broker}_{regime}",
        "seed": seed,
        "stop": {"training_iterations": updates, **({"time_s": time_s} if time_s else {})},
        "checkpoint_frequency": max(1, updates // 4),
        "environment": {"env": "lob", "env_config": env_config},
        # One EnvRunner sampling whole episodes (rollout fragments of one window): each iteration is
        # episodes_per_update episodes, and --resume replays exactly.
        "env_runners": {"num_env_runners": 1, "num_envs_per_env_runner": 1, "rollout_fragment_length": decisions},
        "training": {
            "gamma": round(1.0 - 1.0 / decisions, 6),
            "alpha": ALPHA, "alpha_final": ALPHA_FINAL,
            "alpha_decay": round((ALPHA_FINAL / ALPHA) ** (1.0 / max(1.0, DECAY_SHARE * updates)), 6),
            "epsilon": EPSILON, "epsilon_final": EPSILON_FINAL, "epsilon_decay_unit": "episode",
            "epsilon_decay": round((EPSILON_FINAL / EPSILON) ** (1.0 / max(1.0, DECAY_SHARE * episodes)), 6),
            "train_batch_size_per_learner": decisions * episodes_per_update,
            # holdings_pct is time_pct + diff_pct: dropping it leaves 10 x 5 x 3 x 3 = 450 states
            "binning": {"holdings_pct": None},
            "expert_episodes": expert_episodes, "expert_greedy_mass": 0.9,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000, help="training episodes per expert (spec 1.1 note 2)")
    parser.add_argument("--episodes-per-update", type=int, default=4)
    parser.add_argument("--regimes", default=",".join(REGIMES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-s", type=float, help="also stop an expert's training after this many seconds")
    parser.add_argument("--expert-episodes", type=int, default=20, help="rollouts whose states set the export's tau")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    for regime in args.regimes.split(","):
        for broker in BROKERS:
            config = expert_config(broker, regime, episodes=args.episodes, episodes_per_update=args.episodes_per_update,
                                   seed=args.seed, time_s=args.time_s, expert_episodes=args.expert_episodes)
            header = (f"# Broker expert {broker} in regime {regime} (issue 9), written by configs/experts/make_configs.py "
                      f"--episodes {args.episodes} --episodes-per-update {args.episodes_per_update}"
                      f"{f' --time-s {args.time_s:g}' if args.time_s else ''} --expert-episodes {args.expert_episodes}\n")
            path = Path(args.out) / f"{broker}_{regime}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(header + yaml.safe_dump(config, sort_keys=False))


if __name__ == "__main__":
    main()
