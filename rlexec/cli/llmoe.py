"""``rlexec llmoe CONFIG.yaml``: LLMoE route -> train experts -> backtest (issue 13, spec §4)."""

from __future__ import annotations

import argparse

from rlexec.cli import make_console


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "llmoe", help="LLM-routed mixture of experts: route, train the experts, backtest (all-in / all-out)",
        description="Route each trading day to an optimistic or a pessimistic expert with the routers listed in "
        "the YAML (numeric, text_embedding, llm), train the experts and the baselines (buy-and-hold, MLP, LSTM) "
        "for every seed, backtest them all-in / all-out on the test period and write the table, equity curves "
        "and per-day routes with explanations to <out>/llmoe/<time>-<hash>/. Routes are cached to parquet "
        "(cache_dir). With RAY_ADDRESS set, routing runs on that cluster.",
    )
    p.add_argument("config", help="LLMoE YAML (see configs/llmoe_*.yaml and docs/llmoe.md)")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.add_argument("--local", action="store_true", help="a small private Ray (2 CPUs) instead of all CPUs or RAY_ADDRESS")
    p.add_argument("--no-ray", action="store_true",
                   help="route in this process instead of Ray tasks (same results; for a machine where Ray cannot start)")
    p.add_argument("--route-only", action="store_true",
                   help="only route every day of every ticker and seed into the cache (no experts, no backtest)")
    p.add_argument("--seeds", type=int, metavar="N", help="override the config: seeds 0..N-1")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rich.markup import escape
    from rich.table import Table

    from rlexec.llmoe.pipeline import LLMoEConfig, run_pipeline
    from rlexec.llmoe.report import SUMMARY_METRICS, cell

    console = make_console()
    config = LLMoEConfig.from_yaml(args.config)
    if args.seeds is not None:
        config = replace(config, seeds=tuple(range(args.seeds)))
    console.print(f"llmoe [bold]{config.name}[/bold]: routers {list(config.routers)}, tickers "
                  f"{list(config.data.tickers)}, seeds {list(config.seeds)}")
    result = run_pipeline(config, args.out, local=args.local, route_only=args.route_only,
                          use_ray=not args.no_ray, log=console.print)
    if result.summary:
        table = Table(title=f"test period, mean ± std over {len(config.seeds)} seeds", show_edge=False)
        for column in ("ticker", "model", "bp", *[m for m, _ in SUMMARY_METRICS]):
            table.add_column(column, justify="left" if column in ("ticker", "model") else "right", no_wrap=True)
        for row in result.summary:
            table.add_row(row["ticker"], escape(row["model"]), f"{row['cost_bps']:g}",
                          *[cell(row[f"{m}_mean"], row[f"{m}_std"], p) for m, p in SUMMARY_METRICS])
        console.print(table)
    console.print(f"run folder: {result.run_dir}")
    return 0
