"""``rlexec foresight``: how much of the teacher's edge the past predicts (issue 11; rlexec.evaluation.foresight)."""

from __future__ import annotations

import argparse

from rich.table import Table

from rlexec.cli import check_same_execution, make_console, split_preset
from rlexec.errors import ConfigError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "foresight",
        help="measure what the OPD teacher exploits that a past-only student cannot predict",
        description="On the orders of a split: the timing advantage of each decision window (what "
        "knowing the future is worth), how well a ridge regression on past features predicts it out of sample, "
        "and, per policy or broker, how its share of the remainder follows that advantage and how much of it "
        "the past explains. Fits on --fit-part, scores on --part. Writes foresight.json.",
    )
    p.add_argument("--split", default="us_equity_1min", metavar="PRESET",
                   help="data split preset (default us_equity_1min)")
    p.add_argument("--fit-part", choices=("train", "validation", "test"), default="train",
                   help="orders the ridge regressions are fitted on (default train)")
    p.add_argument("--part", choices=("train", "validation", "test"), default="test",
                   help="orders they are scored on (default test)")
    p.add_argument("--num-orders", type=int, default=2000, help="orders drawn from each part (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the orders (default 0)")
    p.add_argument("--policy", action="append", default=[], metavar="RUN",
                   help="a trained bar-env policy (run folder, runs/train/<name> or checkpoint), acting greedily; "
                   "repeatable. The first one's execution settings define the MDP")
    p.add_argument("--strategies", default="twap", help="comma-separated brokers to measure too (default twap)")
    p.add_argument("--alpha", type=float, default=1.0, help="ridge penalty on standardised features (default 1)")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlexec.envs.config import ExecutionConfig
    from rlexec.envs.engine import prepare_orders
    from rlexec.evaluation.foresight import PAST_FEATURES, policy_timing, predictability
    from rlexec.policies.trained import TrainedPolicy
    from rlexec.provenance import new_run_dir, run_record, write_json_atomic
    from rlexec.strategies import make_strategy

    if args.num_orders <= 1:
        raise ConfigError(f"--num-orders must be at least 2, got {args.num_orders}")
    if args.fit_part == args.part:
        raise ConfigError(f"--fit-part and --part are both {args.part!r}; out-of-sample scores need two parts")
    split = split_preset(args.split)
    policies = [TrainedPolicy.load(path).require_env("bar") for path in args.policy]
    execution = policies[0].execution if policies else ExecutionConfig()
    check_same_execution(policies, execution, args.policy[0] if policies else "")
    brokers = [make_strategy(n.strip().lower()) for n in args.strategies.split(",") if n.strip()]
    market = split.market()
    batches = {part: prepare_orders(market, split.orders(market, part, args.num_orders, args.seed,
                                                          execution.horizon_minutes), execution)
               for part in (args.fit_part, args.part)}
    fit, score = batches[args.fit_part], batches[args.part]

    config = {"split": args.split, "fit_part": args.fit_part, "part": args.part, "num_orders": args.num_orders,
              "alpha": args.alpha, "execution": execution.to_dict(), "features": list(PAST_FEATURES),
              "policies": {p.name: str(p.source) for p in policies}, "strategies": [b.name for b in brokers]}
    out_dir = new_run_dir(args.out, "foresight", config)
    market_view = predictability(fit, score, execution, alpha=args.alpha)
    timing = {b.name: policy_timing((b, fit), (b, score), execution, alpha=args.alpha) for b in brokers}
    for p in policies:
        actor = p.actor("greedy", seed=args.seed)
        timing[p.name] = policy_timing((actor, fit), (actor, score), execution, oracle=p.oracle, alpha=args.alpha)
    write_json_atomic(run_record(config, args.seed) | {"predictability": market_view, "policy_timing": timing},
                      out_dir / "foresight.json")

    console = make_console()
    table = Table(title=f"Timing advantage of a decision window ({args.split}: fit {args.fit_part}, "
                        f"scored on {args.part}, {market_view['decisions_scored']:,} decisions)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, label in (("oracle_edge_bps", "oracle edge E|a| (bp)"),
                       ("captured_edge_bps", "captured by the past, E(a sign(a_hat)) (bp)"),
                       ("captured_edge_se_bps", "  its SE (bp)"), ("advantage_sd_bps", "SD of a (bp)"),
                       ("r2_fit", "R^2 on the fit part"), ("r2_out_of_sample", "R^2 out of sample"),
                       ("sign_accuracy_out_of_sample", "sign accuracy out of sample")):
        table.add_row(label, f"{market_view[key]:.3f}")
    console.print(table)
    rows = Table(title="Share of the remainder traded per decision, against the timing advantage a")
    for column in ("policy", "mean share", "corr(share, a)", "R^2 from a", "R^2 from past (out of sample)"):
        rows.add_column(column, justify="left" if column == "policy" else "right")
    for name, t in timing.items():
        rows.add_row(name, f"{t['mean_share']:.3f}", f"{t['correlation_with_advantage']:+.3f}",
                     f"{t['r2_share_from_advantage']:.3f}", f"{t['r2_share_from_past_out_of_sample']:+.3f}")
    console.print(rows)
    drift_fit, drift_out = market_view["horizon_drift_fit_bps"], market_view["horizon_drift_scored_bps"]
    bets = Table(title=f"Directional bets: share of Q filled in the first half, {args.fit_part} / {args.part}")
    for column in ("policy", "buy", "sell"):
        bets.add_column(column, justify="left" if column == "policy" else "right")
    bets.add_row("(price drift over the horizon, bp)", *(f"{drift_fit[s]:+.1f} / {drift_out[s]:+.1f}"
                                                         for s in ("buy", "sell")))
    for name, t in timing.items():
        bets.add_row(name, *(f"{t['front_share_fit'][s]:.2f} / {t['front_share_scored'][s]:.2f}"
                             for s in ("buy", "sell")))
    console.print(bets)
    console.print(f"written to {out_dir}")
    return 0
