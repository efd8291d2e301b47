"""``rlexec preferences``: label the pairs of a trajectory store for MoE-DPO (spec 1.4)."""

from __future__ import annotations

import argparse

from rlexec.cli import make_console

CRITERIA = ("quality", "speed")  # rlexec.algorithms.moe_dpo.preferences.CRITERIA (tests/cli/test_cli_help.py)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "preferences",
        help="build MoE-DPO preference pairs from a trajectory store",
        description="Read the trajectory store of `rlexec regimes --store` (every policy on common seeds, each step "
        "scored by every expert), pair the trajectories of each context (regime, seed), label each pair by execution "
        "quality or speed, and write the preference set (preferences.json, trajectories.parquet, pairs.parquet) that "
        "`training.preferences` of configs/moe_dpo_*.yaml reads. See docs/moe_dpo.md.",
    )
    p.add_argument("store", metavar="STORE", help="a trajectory store folder (<regimes run>/store)")
    p.add_argument("--out", required=True, help="folder to write the preference set into (created)")
    p.add_argument("--criterion", choices=CRITERIA, default="quality",
                   help="quality: U_q = A - 50 (1 - FR) bp; speed: U_s = -t_done/T + A/1e4 (default quality)")
    p.add_argument("--margin", type=float,
                   help="keep a pair only if its utilities differ by more than this (default 0.5 bp for quality, "
                   "0.02 for speed)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="noisy labeller: y+ = i with probability sigma((U_i - U_j) / temperature) (default 0: "
                   "the higher utility always wins)")
    p.add_argument("--regime", action="append", metavar="NAME",
                   help="keep only this regime's contexts (repeatable; default every regime of the store): a "
                   "per-regime set for a run over that regime's experts. The gate's regime one-hot keeps every "
                   "regime of the store")
    p.add_argument("--seed", type=int, default=0, help="seeds the noisy labeller's draws (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlexec.algorithms.moe_dpo.preferences import (
        LabelRule,
        preferences_from_store,
        write_preferences,
    )

    rule = LabelRule(criterion=args.criterion, margin=args.margin, temperature=args.temperature)
    preferences = preferences_from_store(args.store, rule, seed=args.seed, only_regimes=args.regime)
    folder = write_preferences(preferences, args.out)
    make_console().print(f"{len(preferences)} {args.criterion} pairs from {len(preferences.trajectories)} trajectories "
                         f"({len(preferences.regimes)} regimes, experts {', '.join(preferences.expert_names)}) -> {folder}")
    return 0
