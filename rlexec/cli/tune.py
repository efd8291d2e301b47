"""``rlexec tune SWEEP.yaml``: a Ray Tune sweep over a training config (see tune_configs/)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tune", help="run a Ray Tune sweep over a training config",
        description="Sweep hyper-parameters of a training config with the searcher and scheduler named in the "
        "sweep YAML. An interrupted sweep resumes from where it stopped when run again; a sweep YAML edited since "
        "is refused (use --restart, or a new name).",
    )
    p.add_argument("sweep", help="sweep YAML (tune_configs/)")
    p.add_argument("--out", default="runs", help="base folder (default ./runs); results in <out>/tune/<name>")
    p.add_argument("--local", action="store_true", help="small private Ray, trials sample in their own process")
    p.add_argument("--restart", action="store_true", help="discard an earlier sweep of the same name (<out>/tune/<name>) and start afresh")
    p.add_argument("--verbose", action="store_true",
                   help="print Ray's own log messages and warnings here (default: into <out>/tune/<name>/ray.log)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlexec.cli import make_console
    from rlexec.training.progress import ConsoleMonitor
    from rlexec.training.ray_logs import RayLogRouter
    from rlexec.training.sweep import SweepSpec, run_sweep

    console = make_console()
    sweep = SweepSpec.from_yaml(args.sweep)
    with RayLogRouter(args.out, verbose=args.verbose) as ray_log:
        from rlexec.training.tune_progress import TrialProgress

        monitor = ConsoleMonitor(console, sweep.base.stop, ray_log=ray_log)
        # A line per trial result, the score included; Tune writes each trial's event files itself.
        progress = TrialProgress(sweep.base.stop, score=sweep.metric)
        result = run_sweep(sweep, out=args.out, local=args.local, restart=args.restart, console=console,
                           monitor=monitor, callbacks=[progress])
    console.print(result)
    return 0
