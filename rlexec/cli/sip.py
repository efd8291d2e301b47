"""``rlexec sip CONFIG.yaml``: fit the SIP mixture weights per regime and the gate from trained experts (spec 1.3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlexec.cli import REGIMES, make_console


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sip", help="fit SIP mixture weights per regime (and the gate) from trained broker experts",
        description="Run every expert of the config on the same training episodes of each regime (seeds from "
        "seed_start, disjoint from evaluation), update the SIP weights episode by episode (spec 1.3), fit the "
        "context gate, and write <out>/sip/<name>/<time>-<hash>/ (weights.parquet, episodes.parquet, weights.json, "
        "gate/).",
    )
    p.add_argument("config", help="SIP YAML (see configs/sip.yaml and docs/sip.md)")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.add_argument("--episodes", type=int, help="override the config's training episodes per regime")
    p.add_argument("--regimes", nargs="+", choices=REGIMES, metavar="REGIME",
                   help=f"override the config's regimes (from {', '.join(REGIMES)})")
    p.add_argument("--mode", choices=("sip", "hedge"), help="override sip.mode (hedge: the fixed-eta ablation)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from rlexec.algorithms.sip.driver import SIPRunConfig, fit, save
    from rlexec.configs import read_yaml_mapping
    from rlexec.provenance import new_run_dir

    data = read_yaml_mapping(args.config)
    if args.episodes is not None:
        data["episodes"] = args.episodes
    if args.regimes:
        data["regimes"] = args.regimes
    if args.mode:
        data["sip"] = {**(data.get("sip") or {}), "mode": args.mode}
    config = SIPRunConfig.from_dict(data, source=args.config)
    console = make_console()
    console.print(f"SIP ({config.sip.mode}): {len(config.experts)} experts x {len(config.regimes)} regimes x "
                  f"{config.episodes} episodes (seeds {config.seed_start}..{config.seed_start + config.episodes - 1})")
    fits, gate = fit(config)
    run_dir = save(fits, gate, config, new_run_dir(Path(args.out) / "sip", config.name, config.to_dict()))
    names = config.expert_names
    table = Table(title=f"final SIP weights per regime ({config.sip.mode}); mean utility u = A - "
                        f"{config.sip.fill_penalty_bps:g} (1 - FR), bp")
    table.add_column("regime")
    for name in names:
        table.add_column(f"w {name}", justify="right")
    for name in names:
        table.add_column(f"u {name}", justify="right")
    for f in fits:
        table.add_row(f.regime, *(f"{w:.3f}" for w in f.history.final), *(f"{u:.2f}" for u in f.utility.mean(axis=0)))
    console.print(table)
    console.print(f"gate: cross-entropy {gate.metadata['cross_entropy']:.4f} (KL to the SIP weights "
                  f"{gate.metadata['kl_to_targets']:.4f})")
    console.print(f"run folder: {run_dir}")
    return 0
