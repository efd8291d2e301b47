"""``rlexec evaluate``: run broker strategies over parent orders and report PA / GLR / POS / fill rate."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rlexec.cli import ACTOR_KINDS, REGIMES, check_same_execution, checked_regime, make_console, split_preset
from rlexec.configs import read_yaml_mapping
from rlexec.errors import ConfigError, OrderError

if TYPE_CHECKING:
    from rlexec.evaluation.recorder import TrajectoryRecorder
    from rlexec.envs.lob_env import LOBExecutionConfig
    from rlexec.evaluation import tables
    from rlexec.evaluation.runner import Evaluation, Run
    from rlexec.evaluation.tables import TextTable
    from rlexec.policies.trained import TrainedPolicy


def add_parser(subparsers) -> None:
    from rlexec.strategies import strategy_names

    p = subparsers.add_parser(
        "evaluate",
        help="run broker strategies over orders and print the metrics table",
        description="Run TWAP / VWAP / IS / POV over parent orders on minute bars (default: the shipped "
        "real sample, 200 random orders) and write per-order results, a JSON summary and plots.",
    )
    p.add_argument("--data", nargs="+", metavar="FILE", help="bar files (CSV, CSV.gz, parquet); default: shipped sample")
    p.add_argument("--orders", metavar="FILE", help="order file (symbol,date,side,quantity,start); default: random")
    p.add_argument("--num-orders", type=int, default=200, help="random orders to generate (default 200)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random orders and, with --env lob, of the episodes (episode i uses seed + i); "
                   "also seeds --actor sampled (default 0)")
    p.add_argument(
        "--strategies", default=",".join(strategy_names()),
        help=f"comma-separated, first is the paired-comparison baseline (default {','.join(strategy_names())})",
    )
    p.add_argument("--policy", action="append", default=[], metavar="CHECKPOINT",
                   help="also evaluate a trained policy: a run folder, runs/train/<name>, or a checkpoint; repeatable. "
                   "Bar env: its execution settings are used. --env lob: a Q-learned expert, run with its broker")
    p.add_argument("--compare", action="append", default=[], metavar="A:B",
                   help="also report the paired difference A - B (PA and reward, 95%% CI) of two evaluated strategies "
                   "or policies on the same orders, e.g. opd:opds; repeatable. Every strategy is compared with the "
                   "baseline anyway; all pairs go to paired.csv")
    p.add_argument("--split", metavar="PRESET",
                   help="draw the orders from a data split preset (sample, us_equity_1min) instead of --data")
    p.add_argument("--part", choices=("train", "validation", "test"), default="test",
                   help="which part of --split hosts the orders (default test)")
    p.add_argument("--config", metavar="YAML", help="YAML with 'execution:' (ExecutionConfig) and 'strategies:' params")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="load --policy checkpoints that have no weights-only copy by unpickling them; a pickle can run "
                   "code, so only for checkpoints you made yourself")
    p.add_argument("--actor", choices=ACTOR_KINDS, default="greedy",
                   help="how --policy acts: greedy (argmax), sampled (seeded by --seed) or expected (bar env: the "
                   "expected fraction of Q under the policy) (default greedy)")
    p.add_argument("--record", action="store_true",
                   help="also write trajectories_<strategy>.parquet: every step's observation, action, child size, "
                   "fills and prices, and the log-probability of the action under each --policy")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    lob = p.add_argument_group("limit-order-book environment (--env lob)")
    p.add_argument("--env", choices=("bar", "lob"), default="bar",
                   help="bar: minute bars (default); lob: the LOB simulator or a LOBSTER replay")
    lob.add_argument("--regime", default="baseline",
                     help=f"market regime preset, one of {', '.join(REGIMES)}, or volatility_ramp@<level> (default baseline)")
    lob.add_argument("--episodes", type=int, default=20, help="episodes per broker, same seeds for all (default 20)")
    lob.add_argument("--action", choices=("market", "limit"), default="market",
                     help="how every child order is placed (default market)")
    lob.add_argument("--replay", metavar="ZIP", help="replay a LOBSTER day instead of simulating")
    lob.add_argument("--replay-window", type=int, metavar="MIN",
                     help="replay: window length in minutes, placed at random in the day (default 30)")
    lob.add_argument("--decision-interval", type=float, default=30.0, help="seconds between decisions (default 30)")
    p.set_defaults(func=run)


def _load_yaml(path: str | None) -> dict:
    if not path:
        return {}
    data = read_yaml_mapping(path)
    unknown = set(data) - {"execution", "strategies"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; use 'execution' and 'strategies'")
    if not isinstance(data.get("execution") or {}, dict):
        raise ConfigError(f"{path}: 'execution' must be a mapping of ExecutionConfig fields")
    strategies = data.get("strategies") or {}
    if not isinstance(strategies, dict) or not all(isinstance(v, dict) or v is None for v in strategies.values()):
        raise ConfigError(f"{path}: 'strategies' must map a strategy name to a mapping of its parameters")
    return data


def _rich(table: TextTable) -> Table:
    # No outer edge: a row of six columns of "-16.63 ± 10.58" then fits 120 columns (logs, CI).
    out = Table(title=table.title, caption=table.caption, title_style="bold", caption_justify="left", show_edge=False)
    for i, column in enumerate(table.columns):
        out.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in table.rows:
        out.add_row(*row)
    return out


def results_table(summary: dict) -> Table:
    """The results table of a summary.json: what it ran on in the title, the legend below."""
    from rlexec.evaluation import tables

    return _rich(tables.results(summary))


def comparison_table(summary: dict) -> Table:
    from rlexec.evaluation import tables

    return _rich(tables.comparison(summary))


def _listed(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _bar_dataset(args: argparse.Namespace, orders: list) -> dict:
    """What a bar evaluation ran on, for the table and plot titles and summary.json."""
    if args.split:
        source = f"split preset '{args.split}', {args.part} part"
    elif args.data:
        source = "bar files " + _listed([Path(p).name for p in args.data], 3)
    else:
        source = "shipped sample"
    days = sorted({str(o.date) for o in orders})
    symbols = sorted({o.symbol for o in orders})
    on = ", ".join(days) if len(days) <= 3 else f"{len(days)} days {days[0]} to {days[-1]}"
    how = f"orders from {Path(args.orders).name}" if args.orders else f"random orders, seed {args.seed}"
    return {"description": f"{source}: {_listed(symbols)} on {on} ({how})", "unit": "orders", "source": source,
            "symbols": symbols, "days": days, "orders": how}


def _lob_dataset(args: argparse.Namespace, config: LOBExecutionConfig) -> dict:
    """What a LOB evaluation ran on: the regime or the replayed file, the episode seeds, the placement."""
    if config.replay:
        source = f"LOBSTER replay {Path(config.replay).name}, {config.replay_window_minutes}-minute windows"
    else:
        source = f"simulated LOB, regime '{config.regime}'"
    last = args.seed + args.episodes - 1
    seeds = f"seed {args.seed}" if last == args.seed else f"seeds {args.seed} to {last}"
    return {"description": f"{source} ({seeds}); {args.action} child orders every {config.decision_interval_s:g} s",
            "unit": "episodes", "source": source, "seeds": [args.seed, last], "action": args.action}


def _recorders(args: argparse.Namespace, runs: list[Run]) -> dict[str, TrajectoryRecorder]:
    """--record: one recorder per run; each stores the log-probabilities of its actions under every policy."""
    if not args.record:
        return {}
    from rlexec.evaluation.recorder import TrajectoryRecorder

    models = {run.name: run.acting.model for run in runs if hasattr(run.acting, "model")}
    return {run.name: TrajectoryRecorder(models) for run in runs}


def _write_trajectories(recorders: dict[str, TrajectoryRecorder], out_dir: Path) -> None:
    for name, recorder in recorders.items():
        recorder.write(out_dir / f"trajectories_{name}.parquet")


def run(args: argparse.Namespace) -> int:
    return run_lob(args) if args.env == "lob" else run_bar(args)


def _check_compare(compare: list[str], names: list[str]) -> None:
    """Refuse a --compare of a name not evaluated before anything runs (the first name is the baseline)."""
    from rlexec.evaluation import study

    study.comparisons(names[0], names, [study.Comparison.parse(c) for c in compare])


def _progress(console: Console, label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )


def _report(console: Console, evaluation: Evaluation, out_dir: Path, record: dict, *, plots: bool,
            dataset: dict, reward: tables.RewardNote, compare: list[str] = (), scope: str = "") -> None:
    """Print the tables and write per_order.parquet, summary.json, methods.csv, paired.csv and the plots.

    summary.json holds the run record, what the evaluation ran on (``dataset``), the unit of the reward
    column, and the results: the tables are built from it, here and in ``rlexec report``. ``paired``
    (and paired.csv) holds every strategy minus the baseline, then the ``--compare`` pairs."""
    import pyarrow.parquet as pq

    from rlexec.evaluation import study, tables
    from rlexec.evaluation.plots import plot_fill_curves, plot_pa_distribution
    from rlexec.provenance import write_atomic, write_json_atomic

    named = [study.Comparison.parse(c) for c in compare]
    methods, paired = study.tables(scope, {r.name: r.metrics for r in evaluation.results}, evaluation.baseline, named)
    summary = {
        **record,
        "dataset": dataset,
        "reward": reward.to_dict(),
        "n_orders": len(evaluation),
        "baseline": evaluation.baseline,
        "results": {r.name: r.summary.to_dict() for r in evaluation.results},
        "paired_vs_baseline": {
            name: vars(d) | {"significant": d.significant} for name, d in evaluation.comparisons().items()
        },
        "paired": paired,
    }
    console.print(results_table(summary))
    if len(evaluation.results) > 1:
        console.print(comparison_table(summary))
    resolved = {(c.a.lower(), c.b.lower()) for c in named}
    named_rows = [row for row in paired if (row["a"].lower(), row["b"].lower()) in resolved]
    if named_rows:
        console.print(_rich(tables.paired(named_rows, f"Named paired differences (same {len(evaluation)} "
                                                 f"{dataset.get('unit', 'orders')}, 95% CI)")))
    study.write_rows(methods, out_dir / "methods.csv")
    study.write_rows(paired, out_dir / "paired.csv")
    per_order = evaluation.per_order_table()
    write_atomic(out_dir / "per_order.parquet", lambda tmp: pq.write_table(per_order, tmp))
    write_json_atomic(summary, out_dir / "summary.json")
    if plots:
        plot_fill_curves(evaluation, out_dir / "fill_curves.png", dataset["description"])
        plot_pa_distribution(evaluation, out_dir / "pa_distribution.png", dataset["description"])
        _plot_learning_curves(record.get("trained_policies") or {}, out_dir / "learning_curves.png")
    console.print(f"results written to [bold]{out_dir}[/bold]")


def _plot_learning_curves(trained: dict[str, dict], path: Path) -> None:
    """learning_curves.png: the validation PA each --policy's run logged per iteration, where any did."""
    from rlexec.evaluation.plots import VALIDATION_PA, plot_validation_curves
    from rlexec.evaluation.run_folders import read_progress

    progress = {name: read_progress(record["run_folder"]) for name, record in trained.items()
                if record.get("run_folder")}
    progress = {name: lines for name, lines in progress.items() if any(VALIDATION_PA in line for line in lines)}
    if progress:
        plot_validation_curves(progress, path, "validation part of each run's training split")


def _trained_policies(policies: list[TrainedPolicy]) -> dict[str, dict]:
    """Each --policy's resolved checkpoint, its run folder's git commit and its training budget (run.json)."""
    from rlexec.evaluation.run_folders import training_record

    return {p.name: training_record(p.run_folder, p.source) for p in policies}


def run_lob(args: argparse.Namespace) -> int:
    from rlexec.envs.lob_env import BROKERS, LOBExecutionConfig
    from rlexec.evaluation.episodes import LOBEpisodes
    from rlexec.evaluation.runner import FixedAction, Run, evaluate_runs
    from rlexec.evaluation.tables import lob_reward_note
    from rlexec.policies.trained import TrainedPolicy
    from rlexec.provenance import new_run_dir, run_record, write_json_atomic

    console = make_console()
    cfg = _load_yaml(args.config)
    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {args.episodes}")
    checked_regime(args.regime)
    names = [n.strip().lower() for n in args.strategies.split(",") if n.strip()]
    unknown = [n for n in names if n not in BROKERS]
    if unknown:
        raise ConfigError(f"--strategies: unknown broker(s) {unknown}; the LOB env has {list(BROKERS)}")
    overrides = {"regime": args.regime, "replay": args.replay, "decision_interval_s": args.decision_interval}
    if args.replay_window is not None:
        overrides["replay_window_minutes"] = args.replay_window
    env_config = LOBExecutionConfig.from_dict({**overrides, **(cfg.get("execution") or {})})
    action = {"market": 0, "limit": 1}[args.action]

    def episodes(broker: str):
        return lambda: LOBEpisodes(env_config, episodes=args.episodes, seed=args.seed, broker=broker)

    runs = [Run(name, FixedAction(name, action), episodes(name)) for name in names]
    policies, loaded = {}, []
    for path in args.policy:
        policy = TrainedPolicy.load(path, trusted=args.trust_checkpoint).require_env("lob")
        trained_on = policy.env_config
        broker = trained_on.get("broker", "twap")
        broker = broker.get("name", "twap") if isinstance(broker, dict) else broker
        if trained_on.get("regime", "baseline") != args.regime and not args.replay:
            console.print(f"[yellow]note:[/yellow] {policy.name} was trained on regime "
                          f"{trained_on.get('regime', 'baseline')!r}, evaluated on {args.regime!r}")
        policies[policy.name] = broker
        loaded.append(policy)
        runs.append(Run(policy.name, policy.actor(args.actor, seed=args.seed), episodes(broker)))
    _check_compare(args.compare, [run.name for run in runs])
    config_record = {"env": "lob", "execution": env_config.to_dict(), "brokers": names, "action": args.action,
                     "episodes": args.episodes, "policies": policies, "actor": args.actor}
    out_dir = new_run_dir(args.out, "evaluate", config_record)
    record = run_record(config_record, args.seed) | {"trained_policies": _trained_policies(loaded)}
    write_json_atomic(record, out_dir / "run.json")
    recorders = _recorders(args, runs)
    with _progress(console, "simulating episodes") as progress:
        task = progress.add_task("lob", total=None)  # episodes step together; their length varies
        evaluation = evaluate_runs(runs, recorders=recorders, on_step=lambda: progress.advance(task))
    _write_trajectories(recorders, out_dir)
    _report(console, evaluation, out_dir, record, plots=not args.no_plots, dataset=_lob_dataset(args, env_config),
            reward=lob_reward_note(env_config.unfilled_penalty_bps), compare=args.compare, scope=args.regime)
    return 0


def run_bar(args: argparse.Namespace) -> int:
    from rlexec.data import MarketData, load_sample, read_many
    from rlexec.data.orders import OrderGenerator, generate_orders, order_file_error, read_orders, write_orders
    from rlexec.envs.config import ExecutionConfig
    from rlexec.envs.engine import prepare_orders
    from rlexec.evaluation.runner import bar_runs, evaluate_runs
    from rlexec.evaluation.tables import bar_reward_note
    from rlexec.policies.trained import TrainedPolicy
    from rlexec.provenance import new_run_dir, run_record, write_json_atomic
    from rlexec.strategies import make_strategy

    console = make_console()
    cfg = _load_yaml(args.config)
    execution = ExecutionConfig.from_dict(cfg.get("execution", {}))
    params = cfg.get("strategies", {}) or {}
    names = [n.strip().lower() for n in args.strategies.split(",") if n.strip()]
    strategies = [make_strategy(n, **(params.get(n) or {})) for n in names]
    if args.num_orders <= 0:
        raise ConfigError(f"--num-orders must be positive, got {args.num_orders}")
    policies = [TrainedPolicy.load(path, trusted=args.trust_checkpoint).require_env("bar")
                for path in args.policy]
    if policies:
        if not args.config:  # the policies define the MDP they were trained on
            execution = policies[0].execution
        check_same_execution(policies, execution, "--config" if args.config else args.policy[0])
        taken = {s.name for s in strategies}
        for p in policies:  # keep names unique: two runs of one config both called "opd"
            base, k = p.name, 2
            while p.name in taken:
                p.name, k = f"{base}_{k}", k + 1
            taken.add(p.name)
    if args.split and args.data:
        raise ConfigError("use --split or --data, not both")
    _check_compare(args.compare, [s.name for s in strategies] + [p.name for p in policies])

    if args.split:
        split = split_preset(args.split)
        market = split.market()
    else:
        market = MarketData.from_table(read_many(args.data), source="--data") if args.data else load_sample()
    if args.orders:
        orders = read_orders(args.orders)
    elif args.split:
        orders = split.orders(market, args.part, args.num_orders, args.seed, execution.horizon_minutes)
    else:
        generator = OrderGenerator(horizon_minutes=execution.horizon_minutes)
        orders = generate_orders(market, args.num_orders, args.seed, generator)
    try:
        batch = prepare_orders(market, orders, execution)
    except OrderError as exc:
        if args.orders and exc.row is not None:  # the order's place in its file, as an editor shows it
            raise order_file_error(args.orders, exc.row - 1, exc.message) from None
        if args.orders:
            raise OrderError(exc.message, source=args.orders) from None
        raise

    config_record = {
        "execution": execution.to_dict(),
        "strategies": {**{s.name: vars(s) for s in strategies},
                       **{p.name: {"policy": True, "oracle": p.oracle, "actor": args.actor} for p in policies}},
        "data": ({"split": args.split, "part": args.part} if args.split else
                 [str(Path(p).resolve()) for p in args.data] if args.data else "shipped sample"),
        "orders": str(Path(args.orders).resolve()) if args.orders else {"generated": len(orders), "seed": args.seed},
    }
    out_dir = new_run_dir(args.out, "evaluate", config_record)
    record = run_record(config_record, args.seed) | {"trained_policies": _trained_policies(policies)}
    write_json_atomic(record, out_dir / "run.json")

    runs = bar_runs(batch, execution, strategies, policies, actor=args.actor, seed=args.seed)
    recorders = _recorders(args, runs)
    with _progress(console, "evaluating steps") as progress:
        task = progress.add_task("evaluate", total=len(runs) * execution.n_steps)
        evaluation = evaluate_runs(runs, recorders=recorders, on_step=lambda: progress.advance(task))
    _write_trajectories(recorders, out_dir)
    write_orders(list(batch.orders), out_dir / "orders.csv")
    _report(console, evaluation, out_dir, record, plots=not args.no_plots,
            dataset=_bar_dataset(args, list(batch.orders)), reward=bar_reward_note(execution.reward),
            compare=args.compare, scope=args.part if args.split else "all")
    return 0
