"""``rlexec logicq STUDY.yaml``: tune the Logic-Q sketch holes by BO on Ray Tune; ``--evaluate``: compare on the test days."""

from __future__ import annotations

import argparse

from rlexec.cli import LOGICQ_VARIANTS, make_console


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "logicq", help="tune Logic-Q sketch holes of frozen policies (Bayesian optimisation on Ray Tune)",
        description="Logic-Q (spec 3): one Ray Tune + Optuna BO run per variant and seed of the study YAML "
        "(tune_configs/logicq_*.yaml), each trial a validation backtest of one hole assignment scored by mean "
        "PA; an interrupted run resumes when the same command runs again. Results: <out>/tune/<name>_<variant>_s<seed>/"
        "{best_holes.json,trials.parquet,bo_progress.png}. With --evaluate: the test-day comparison table, "
        "written to <out>/logicq/<name>/.",
    )
    p.add_argument("config", help="Logic-Q study YAML (see docs/logicq.md)")
    p.add_argument("--evaluate", action="store_true",
                   help="do not tune: evaluate the tuned holes on the test days and print the table")
    p.add_argument("--variant", action="append", choices=LOGICQ_VARIANTS,
                   help="tune only this variant (repeatable; default: the study's variants)")
    p.add_argument("--seed", type=int, action="append", dest="seeds",
                   help="only this seed (repeatable; default: the study's seeds)")
    p.add_argument("--num-samples", type=int, help="trials per BO run (default: the study's search.num_samples, 200)")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.add_argument("--restart", action="store_true", help="discard earlier BO runs of the same name instead of resuming")
    p.add_argument("--local", action="store_true", help="a small private Ray (2 CPUs) instead of all CPUs / RAY_ADDRESS")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rlexec.logicq.study import ExecutionStudy, evaluate_study, plot_trend_labels, results_markdown, tune_study
    from rlexec.provenance import inside, write_atomic, write_json_atomic

    console = make_console()
    if _task(args.config) == "trading":
        return _run_trading(args, console)
    study = ExecutionStudy.from_yaml(args.config)
    if not args.evaluate:
        summaries = tune_study(study, variants=args.variant, seeds=args.seeds, num_samples=args.num_samples,
                               out=args.out, restart=args.restart, local=args.local, console=console)
        folder = inside(Path(args.out).resolve() / "logicq", Path(args.out).resolve() / "logicq" / study.name)
        folder.mkdir(parents=True, exist_ok=True)
        # merged with earlier runs of the study (other seeds or variants, perhaps from another driver)
        done = {(r["variant"], r["seed"]) for r in summaries}
        try:
            earlier = json.loads((folder / "tuning.json").read_text())["runs"]
        except (OSError, ValueError, KeyError):
            earlier = []
        kept = [r for r in earlier if (r.get("variant"), r.get("seed")) not in done]
        write_json_atomic({"runs": kept + summaries}, folder / "tuning.json")
        console.print(f"tuned {len(summaries)} BO runs; summary: {folder / 'tuning.json'}")
        return 0
    from rlexec.logicq.search import read_best

    summary = evaluate_study(study, out=args.out, seeds=args.seeds)
    folder = Path(args.out).resolve() / "logicq" / study.name
    folder.mkdir(parents=True, exist_ok=True)
    table = results_markdown(summary)
    write_json_atomic(summary, folder / "results.json")
    write_atomic(folder / "results.md", lambda tmp: tmp.write_text(table))
    if "logicq" in study.variants:
        seed = summary["seeds"][0]
        best = read_best(Path(args.out).resolve() / "tune" / study.experiment_name("logicq", seed))
        figure = plot_trend_labels(study, best, folder / "trend_labels.png")
        table += f"\nTrend labels (seed {seed}'s tuned thresholds): {figure}\n"
    console.print(table, markup=False)
    console.print(f"results: {folder / 'results.md'}, {folder / 'results.json'}")
    json.dumps(summary)  # why: fail here, not in a reader, if a figure is not JSON-serialisable
    return 0


def _task(config: str) -> str:
    from rlexec.configs import read_yaml_mapping

    return str(read_yaml_mapping(config).get("task", "execution"))


def _run_trading(args: argparse.Namespace, console) -> int:
    """``task: trading`` (docs/logicq_trading.md): search both variants, then backtest on the test part."""
    from rlexec.errors import ConfigError
    from rlexec.logicq.trading import TradingSpec, run

    given = [flag for flag, value in (("--evaluate", args.evaluate), ("--variant", args.variant),
                                      ("--seed", args.seeds), ("--num-samples", args.num_samples)) if value]
    if given:
        raise ConfigError(f"{args.config}: a trading study takes none of {given}; set search: in the YAML")
    folder = run(TradingSpec.from_yaml(args.config), out=args.out, local=args.local, restart=args.restart)
    console.print((folder / "results.md").read_text(), markup=False)
    console.print(f"results: {folder}")
    return 0
