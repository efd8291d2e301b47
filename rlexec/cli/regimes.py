"""``rlexec regimes``: policies x market regimes on common seeds, the MoE-DPO seed's Table 1 analogue."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlexec.cli import make_console


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "regimes",
        help="run policies over market regimes on common seeds and print the Table 1 analogue",
        description="Run every policy of CONFIG (brokers with a fixed placement, trained experts, mixtures) over "
        "every regime of CONFIG on the same out-of-sample seeds; print and save profit, execution cost, slippage, "
        "PA and fill rate (mean ± SE) and paired differences against the best single expert and the reference; "
        "optionally write the trajectory store. See docs/regimes.md.",
    )
    p.add_argument("config", metavar="CONFIG.yaml", help="YAML with regimes:, policies:, and optionally episodes:, "
                   "seed:, execution:, reference:, best_of: (see configs/regimes.yaml)")
    p.add_argument("--episodes", type=int, help="episodes per regime (default: the YAML's, else 100)")
    p.add_argument("--seed", type=int,
                   help="first episode seed; episode e uses seed + e in every regime (default: the YAML's, else "
                   "10000000; seeds that training uses are refused)")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.add_argument("--serial", action="store_true",
                   help="run the regimes one after another in this process instead of one Ray task each")
    p.add_argument("--store", action="store_true",
                   help="also write the trajectory store (<run>/store: steps.parquet with every step and the "
                   "log-probability of its action under each expert, episodes.parquet, store.json)")
    p.add_argument("--logp", metavar="NAMES",
                   help="with --store: comma-separated policies to score every action with (default: every policy "
                   "that has a model, i.e. the trained experts)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rlexec.cli.evaluate import _rich
    from rlexec.evaluation import regime_table as rt
    from rlexec.provenance import new_run_dir, run_record, write_atomic, write_json_atomic

    console = make_console()
    config = rt.RegimesConfig.from_yaml(args.config, episodes=args.episodes, seed=args.seed)
    logp = [n.strip() for n in args.logp.split(",") if n.strip()] if args.logp else None
    out_dir = new_run_dir(args.out, "regimes", config.to_dict())
    record = run_record(config.to_dict(), config.seed) | {"config_file": str(Path(args.config).resolve())}
    if not args.serial:
        from rlexec.training.runner import init_ray

        record["ray"] = init_ray(local=False)
    write_json_atomic(record, out_dir / "run.json")
    with Progress(TextColumn("[bold]regimes"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("regimes", total=len(config.regimes))
        results = rt.run_regimes(config, parallel=not args.serial, record=args.store, logp_policies=logp,
                                 on_done=lambda regime: progress.advance(task))

    summary, paired = rt.summary_table(results, config), rt.paired_table(results, config)
    for name, table in (("regime_table", summary), ("paired", paired)):
        write_atomic(out_dir / f"{name}.parquet", lambda tmp, t=table: pq.write_table(t, tmp))
        write_atomic(out_dir / f"{name}.csv", lambda tmp, t=table: pcsv.write_csv(t, tmp))
    per_episode = rt.per_episode_table(results)
    write_atomic(out_dir / "per_episode.parquet", lambda tmp: pq.write_table(per_episode, tmp))
    best = {r.regime: rt.best_single(r, config.candidates) for r in results}
    write_json_atomic({**record, "units": {m: u for m, (_, u, _) in rt.TABLE_METRICS.items()}, "best_single": best,
                       "table": summary.to_pylist(), "paired": paired.to_pylist()}, out_dir / "summary.json")
    for table in rt.text_tables(summary, paired, config):
        console.print(_rich(table))
    if not args.no_plots:
        _plots(results, summary, per_episode, config, out_dir)
    if args.store:
        from rlexec.evaluation.trajectory_store import write_store

        write_store(results, config, out_dir / "store", record)
    console.print(f"results written to [bold]{out_dir}[/bold]")
    return 0


def _plots(results, summary, per_episode, config, out_dir: Path) -> None:
    from rlexec.evaluation import plots
    from rlexec.market.regimes import regime_family

    first, last = config.seeds
    label = f"{config.episodes} episodes per regime, seeds {first}..{last}"
    plots.save_figure(plots.regime_fill_curves_figure({r.regime: r.evaluation for r in results}, label),
                      out_dir / "fill_curves.png")
    rows = {(row["regime"], row["policy"]): (row["mean"], row["se"]) for row in summary.to_pylist()
            if row["metric"] == "implementation_shortfall_bps"}
    policies = [p.name for p in config.policies]
    plots.save_figure(plots.regime_metric_figure(
        rows, config.regimes, policies, "slippage vs arrival price, bp (+ = worse)", "Slippage per policy and regime",
        label), out_dir / "slippage.png")
    if sum(regime_family(r) == "volatility_ramp" for r in config.regimes) > 1:  # a sweep of levels
        plots.save_figure(plots.volatility_levels_figure(per_episode, label),
                          out_dir / "volatility_levels.png")
    weights = {r.regime: r.weights for r in results if r.weights}
    if weights:
        # the weights come from each mixture's own updates (SIP: its fitting episodes), not from this run's seeds
        plots.save_figure(plots.mixture_weights_figure(weights), out_dir / "mixture_weights.png")
