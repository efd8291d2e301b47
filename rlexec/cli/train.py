"""``rlexec train CONFIG.yaml``: train one algorithm (ppo, opd, qlearning) into a run folder."""

from __future__ import annotations

import argparse
import re

from rlexec.cli import make_console


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train an algorithm from a YAML config",
        description="Train ppo / opd / qlearning from a YAML config (see configs/). Checkpoints, progress and "
        "provenance go to <out>/train/<name>/<time>-<hash>/. With RAY_ADDRESS set, attach to that cluster.",
    )
    p.add_argument("config", nargs="?",
                   help="training YAML (sections named after RLlib's AlgorithmConfig methods); with --resume RUN_DIR "
                   "it may be left out: the run goes on with the config it trained with")
    p.add_argument("--resume", nargs="?", const="latest", metavar="RUN_DIR",
                   help="continue from the last checkpoint of RUN_DIR (default: the newest run of this config's name); "
                   "a config that differs from the run's in more than stop / checkpoint settings is refused")
    p.add_argument("--force-config", action="store_true",
                   help="with --resume: train on with a config that differs from the run's; it is recorded as "
                   "config.resumed_<iteration>.yaml in the run folder")
    p.add_argument("--local", action="store_true",
                   help="debug: a small private Ray, sampling in the driver process (no remote env runners)")
    p.add_argument("--out", default="runs", help="base folder for run outputs (default ./runs)")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value by dotted key, YAML-typed (e.g. training.lr=3e-4); repeatable")
    p.add_argument("--verbose", action="store_true",
                   help="print Ray's own log messages and warnings here (default: into <run folder>/ray.log)")
    p.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict:
    import yaml

    from rlexec.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str) and _SCIENTIFIC.fullmatch(value.strip()):
            parsed = float(parsed)  # YAML 1.1 reads 3e-4 (no dot) as a string
        out[key.strip()] = parsed
    return out


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def run(args: argparse.Namespace) -> int:
    from rlexec.errors import ConfigError
    from rlexec.training.progress import ConsoleMonitor
    from rlexec.training.ray_logs import RayLogRouter
    from rlexec.training.runner import latest_run, recorded_config, train
    from rlexec.training.spec import TrainSpec

    console = make_console()
    if args.config is None and args.resume in (None, "latest"):
        raise ConfigError("train: give a training YAML, or --resume RUN_DIR to continue a run with its own config")
    if args.force_config and not args.resume:
        raise ConfigError("train: --force-config only applies with --resume")
    config_file = args.config if args.config is not None else recorded_config(args.resume)
    spec = TrainSpec.from_yaml(config_file)
    overrides = parse_overrides(args.set)
    if args.seed is not None:
        overrides["seed"] = args.seed
    if overrides:
        spec = spec.with_overrides(overrides, origin="--set")
    resume = None
    if args.resume:
        resume = latest_run(args.out, spec.name) if args.resume == "latest" else args.resume

    console.print(f"training [bold]{spec.algorithm}[/bold] ({spec.name}) from {config_file}, seed {spec.seed}")
    # One line per iteration; progress.jsonl and <run>/tb/ hold every figure. Ray's own messages go
    # to <run>/ray.log unless --verbose (rlexec.training.ray_logs).
    with RayLogRouter(args.out, verbose=args.verbose) as ray_log:
        monitor = ConsoleMonitor(console, spec.stop, ray_log=ray_log)
        run_dir = train(spec, out=args.out, resume=resume, local=args.local, monitor=monitor,
                        force_config=args.force_config)
    console.print(f"run folder: {run_dir}")
    return 0
