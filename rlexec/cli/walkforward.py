"""``rlexec walkforward CONFIG.yaml``: train each method per walk-forward fold, evaluate it on the next day."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "walkforward",
        help="walk-forward study: per fold train every method, evaluate on the next day, pool the days",
        description="For each walk-forward fold of the YAML's split (train on the days up to d, test on d+1), train "
        "every listed method's training YAML on the fold, evaluate them and the broker strategies on the same "
        "orders of the test day, and write per-test-day and pooled tables with paired 95% CIs to "
        "<out>/walkforward/<name>/ (methods.csv, paired.csv). A rerun skips finished runs and evaluations.",
    )
    p.add_argument("config", help="walk-forward YAML (split, folds, methods, set, evaluation); see "
                   "configs/opd_walkforward.yaml and docs/opd_study.md")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training value of every method by dotted key, YAML-typed, after the YAML's own "
                   "'set' (e.g. stop.training_iterations=40); repeatable")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.add_argument("--local", action="store_true",
                   help="debug: a small private Ray, sampling in the driver process (no remote env runners)")
    p.add_argument("--verbose", action="store_true",
                   help="print Ray's own log messages and warnings here (default: into <study folder>/ray.log)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlexec.cli import make_console
    from rlexec.cli.evaluate import _rich
    from rlexec.evaluation import study, tables
    from rlexec.training.progress import ConsoleMonitor
    from rlexec.training.ray_logs import RayLogRouter
    from rlexec.training.runner import init_ray
    from rlexec.training.walkforward import POOLED, WalkForwardSpec, run_study

    console = make_console()
    from rlexec.cli.train import parse_overrides

    spec = WalkForwardSpec.from_yaml(args.config, overrides=parse_overrides(args.set))
    folds = ", ".join(f"{f.train_days[0]}..{f.train_days[-1]} -> {f.test_days[0]}" for f in spec.folds)
    console.print(f"walk-forward [bold]{spec.name}[/bold]: {len(spec.folds)} folds ({folds}); methods "
                  f"{', '.join(m.spec.name for m in spec.methods)}", highlight=False)
    root = f"{args.out}/walkforward/{spec.name}"
    with RayLogRouter(root, verbose=args.verbose) as ray_log:

        def monitor_for(fold):
            # Ray starts with the first run that trains (a rerun with every run finished starts none);
            # every run's Ray messages then go to the study's one ray.log.
            init_ray(local=args.local)
            ray_log.attach(root)
            return ConsoleMonitor(console, fold.stop)

        result = run_study(spec, out=args.out, local=args.local, monitor_for=monitor_for,
                           say=lambda text: console.print(f"[bold]{text}[/bold]", highlight=False))
    console.print(_rich(tables.by_scope(result.method_rows)))
    pooled = study.summary_of(result.pooled, f"walk-forward test days {', '.join(result.days)} pooled") | {
        "reward": result.reward}
    console.print(_rich(tables.results(pooled)))
    rows = [r for r in result.paired_rows if r["scope"] == POOLED]
    console.print(_rich(tables.paired(rows, f"Paired differences, pooled test days (same {pooled['n_orders']} "
                                            "orders, 95% CI)")))
    console.print(f"tables written to [bold]{result.root}[/bold] (methods.csv, paired.csv; per fold: "
                  "fold_*/evaluation/)")
    return 0
