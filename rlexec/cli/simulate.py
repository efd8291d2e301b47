"""``rlexec simulate``: run one simulated trading day of a market regime and write what happened."""

from __future__ import annotations

import argparse

from rlexec.cli import REGIMES, checked_regime, make_console


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulate one 6.5-hour day of the LOB market and write tape, book snapshots and a plot",
        description="Simulate a day of the multi-agent limit-order-book market and write tape.parquet, "
        "book.parquet, minute_bars.parquet, day.png and run.json into a new run folder <out>/simulate/<time>-<hash>/.",
    )
    p.add_argument("--regime", default="baseline",
                   help=f"market preset, one of {', '.join(REGIMES)}, or volatility_ramp@<level> (default baseline)")
    p.add_argument("--config", metavar="YAML", help="a full market config (e.g. a regime's, edited); overrides --regime")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of everything random in the day (fundamental, agents, latencies): the same seed gives "
                   "the same event stream, bit for bit (default 0)")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.add_argument("--print-config", action="store_true", help="print the regime's config as YAML and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from rlexec.configs import read_yaml_mapping
    from rlexec.market import MarketConfig, regime_config, simulate_day, write_simulation
    from rlexec.provenance import new_run_dir, run_record, write_json_atomic

    console = make_console()
    if args.config:
        config = MarketConfig.from_dict(read_yaml_mapping(args.config))
    else:
        config = regime_config(checked_regime(args.regime))
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")  # plain: meant to be redirected to a file
        return 0
    record_config = {"regime": None if args.config else args.regime, "market": config.to_dict()}
    out_dir = new_run_dir(args.out, "simulate", record_config)
    write_json_atomic(run_record(record_config, args.seed), out_dir / "run.json")
    with console.status(f"simulating a day of regime {args.regime if not args.config else args.config} ..."):
        result = simulate_day(config, args.seed)
    paths = write_simulation(result, out_dir)
    bars = result.minute_bars
    console.print(
        f"{result.events:,} events in {result.wall_seconds:.2f} s ({result.events / result.wall_seconds:,.0f} events/s); "
        f"{result.tape.num_rows:,} trades, {int(sum(bars.column('volume').to_pylist())):,} shares"
    )
    console.print(f"written to [bold]{out_dir}[/bold]: " + ", ".join(p.name for p in paths.values()))
    return 0
