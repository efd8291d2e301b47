"""Ray Tune sweeps over a training config: searcher and scheduler from a YAML file, resumable.

Sweep YAML (``tune_configs/*.yaml``)::

    name: opds_lr_alpha
    base: ../configs/opds.yaml           # a training config, relative to this file
    overrides: {env_runners.num_env_runners: 0}    # dotted keys applied to the base for every trial
    param_space:                          # dotted keys of the training config -> a Tune domain
      training.lr: {loguniform: [1.0e-5, 1.0e-3]}
      environment.env_config.execution.reward.alpha: {choice: [25.0, 50.0, 100.0, 200.0]}
    score: {metric: price_advantage_bps, split: {preset: us_equity_1min}, part: validation,
            num_orders: 500, seed: 0}     # the fixed objective every trial is scored on (below)
    metric: validation_price_advantage_bps    # the score's name, or a key of progress.jsonl lines
    mode: max
    num_samples: 8
    max_concurrent: 2
    search: {algorithm: optuna, sampler: tpe, seed: 0}    # optuna (tpe | gp | random) or random
    scheduler: {type: asha, grace_period: 2, reduction_factor: 2}   # asha | median | fifo
    stop: {training_iterations: 10}
    checkpoint_frequency: 2

Each trial builds its config through the same :func:`~rlexec.training.spec.build_algorithm_config`
as ``rlexec train``, draws its samples the same way (:func:`~rlexec.training.runner.train_iteration`)
and reports the same figures.

Trials must be compared on one objective. A swept env setting (the reward's alpha) changes each
trial's training return, and RLlib deep-merges the trial's ``env_config`` into its evaluation env,
so ``evaluation_return_mean`` too scores each trial with its own alpha. The ``score`` section is
an objective no trial parameter enters: after every iteration the trial's policy executes the same
``num_orders`` orders (drawn with ``seed`` from ``part`` of ``split``) through the batch engine,
greedily, as ``rlexec evaluate --policy`` does, on the base config's execution settings (its reward
too, so that ``metric: reward`` is comparable); the trial reports the mean of ``metric`` (an order
metric of :mod:`rlexec.evaluation.metrics`, over orders with a fill) as ``<part>_<metric>``. With a
score, only ``execution.reward.*`` may be swept among the execution settings. Without one, a sweep
whose metric is an RLlib return refuses a swept ``environment`` key, unless the metric is
``evaluation_return_mean`` and ``evaluation.evaluation_config.env_config`` pins that key.

Trials checkpoint through Tune, so a sweep whose driver was killed resumes (``Tuner.restore``) when
the same command runs again: finished trials are kept, unfinished ones continue from their last
checkpoint; a finished one (its ``best.json`` written) is read back, not rerun. Tune restores the
settings the experiment started with, so a sweep file edited since is refused (``rlexec_run.json``
records the hash of :meth:`SweepSpec.settings`): ``--restart`` discards the earlier experiment, or a
new ``name`` starts another. The experiment folder is ``<out>/tune/<name>``, the name a plain one,
never a path.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlexec.configs import read_yaml_mapping
from rlexec.errors import ConfigError
from rlexec.training.spec import TrainSpec, run_name

DOMAINS = ("choice", "uniform", "loguniform", "randint", "quniform")
SEARCHERS = ("optuna", "random")
SCHEDULERS = ("asha", "median", "fifo")
SWEEP_KEYS = ("name", "base", "overrides", "param_space", "score", "metric", "mode", "num_samples",
              "max_concurrent", "search", "scheduler", "stop", "checkpoint_frequency")
SCORE_KEYS = ("metric", "split", "part", "num_orders", "seed")
ENV_PREFIX = "environment."
ENV_CONFIG_PREFIX = "environment.env_config."
SCORED_EXECUTION_SWEEPABLE = "environment.env_config.execution.reward."
RECORD = "rlexec_run.json"
SETTINGS_HASH = "settings_hash"  # in RECORD: config_hash(SweepSpec.settings()) of the sweep that started it


@dataclass(frozen=True, kw_only=True)
class ScoreSpec:
    """The ``score`` section: which order metric, on which orders. Defaults are rlexec's."""

    metric: str = "price_advantage_bps"
    split: dict[str, Any] = field(default_factory=lambda: {"preset": "us_equity_1min"})
    part: str = "validation"
    num_orders: int = 500
    seed: int = 0

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ScoreSpec:
        from rlexec.data.splits import PARTS, PRESETS
        from rlexec.evaluation.metrics import ORDER_METRICS

        if not isinstance(data, dict):
            raise ConfigError(f"{source}: score must be a mapping of {list(SCORE_KEYS)}, got {data!r}")
        unknown = set(data) - set(SCORE_KEYS)
        if unknown:
            raise ConfigError(f"{source}: score: unknown key(s) {sorted(unknown)}; known: {list(SCORE_KEYS)}")
        defaults = cls()
        metric, part = data.get("metric", defaults.metric), data.get("part", defaults.part)
        split = data.get("split", defaults.split)
        split = {"preset": split} if isinstance(split, str) else split
        if not isinstance(split, dict):
            raise ConfigError(f"{source}: score.split must be a preset name or a DataSplit mapping, got {split!r}")
        # The data is checked where the trials load it, as the base config's is.
        if "preset" in split and split["preset"] not in PRESETS:
            raise ConfigError(f"{source}: score.split.preset must be one of {sorted(PRESETS)}, got {split['preset']!r}")
        if metric not in ORDER_METRICS:
            raise ConfigError(f"{source}: score.metric must be one of {list(ORDER_METRICS)}, got {metric!r}")
        if part not in PARTS:
            raise ConfigError(f"{source}: score.part must be one of {list(PARTS)}, got {part!r}")
        numbers = {}
        for key, least in (("num_orders", 1), ("seed", 0)):
            value = data.get(key, getattr(defaults, key))
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"{source}: score.{key} must be an integer >= {least}, got {value!r}")
            numbers[key] = value
        return cls(metric=metric, split=split, part=part, **numbers)

    @property
    def name(self) -> str:
        """What trials report the score as, e.g. ``validation_price_advantage_bps``."""
        return f"{self.part}_{self.metric}"


class Scorer:
    """A :class:`ScoreSpec` made ready to score policies: its orders drawn and prepared once."""

    def __init__(self, score: ScoreSpec, base: TrainSpec):
        from rlexec.data.splits import DataSplit
        from rlexec.envs.config import ExecutionConfig
        from rlexec.envs.engine import prepare_orders

        self.score = score
        env_config = base.sections["environment"].get("env_config") or {}
        # The base's settings, not a trial's: the swept reward never enters the score.
        self.execution = ExecutionConfig.from_dict(env_config.get("execution", {}))
        split = DataSplit.from_dict(score.split)
        market = split.market()
        orders = split.orders(market, score.part, score.num_orders, score.seed, self.execution.horizon_minutes)
        self.batch = prepare_orders(market, orders, self.execution)

    def __call__(self, module, *, oracle: bool = False) -> float:
        """Mean of the metric over the orders (those with a fill), ``module`` acting greedily."""
        from rlexec.evaluation.stats import mean_se

        return mean_se(self.run(module, oracle=oracle).metrics[self.score.metric]).mean

    def run(self, module, *, oracle: bool = False, actor=None):
        """The policy's :class:`~rlexec.evaluation.runner.StrategyResult` on the orders; ``actor``
        (an :class:`~rlexec.policies.actors.Actor`) acts instead of greedy ``module``."""
        from rlexec.evaluation.episodes import BarEpisodes
        from rlexec.evaluation.runner import run_episodes
        from rlexec.policies.actors import GreedyActor

        result, _ = run_episodes(BarEpisodes(self.batch, self.execution, oracle=oracle), actor or GreedyActor(module),
                                 name="trial")
        return result


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    name: str
    base: TrainSpec
    param_space: dict[str, dict[str, Any]]
    score: ScoreSpec | None = None
    metric: str = "episode_return_mean"
    mode: str = "max"
    num_samples: int = 4
    max_concurrent: int = 2
    search: dict[str, Any] = field(default_factory=lambda: {"algorithm": "optuna", "sampler": "tpe", "seed": 0})
    scheduler: dict[str, Any] = field(default_factory=lambda: {"type": "asha"})
    checkpoint_frequency: int = 2
    source: str = "<dict>"

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "SweepSpec":
        data = read_yaml_mapping(path)
        source = str(path)
        unknown = set(data) - set(SWEEP_KEYS)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)}; known: {list(SWEEP_KEYS)}")
        if not data.get("base"):
            raise ConfigError(f"{source}: 'base' (a training config) is required")
        base = TrainSpec.from_yaml(Path(path).parent / data["base"])
        overrides = dict(data.get("overrides") or {})
        if data.get("stop"):
            overrides["stop"] = data["stop"]
        base = base.with_overrides(overrides)
        space = data.get("param_space") or {}
        if not isinstance(space, dict) or not space:
            raise ConfigError(f"{source}: param_space must map dotted config keys to a domain")
        for key, domain in space.items():
            if not (isinstance(domain, dict) and len(domain) == 1 and next(iter(domain)) in DOMAINS):
                raise ConfigError(f"{source}: param_space.{key} must be one of {{{', '.join(DOMAINS)}: ...}}, got {domain!r}")
        base.with_overrides({k: _example(v) for k, v in space.items()})  # every key must make a valid config
        score = ScoreSpec.from_dict(data["score"], source) if data.get("score") is not None else None
        metric = str(data.get("metric") or (score.name if score is not None else "episode_return_mean"))
        _check_one_objective(space, base, score, metric, source)
        search = {"algorithm": "optuna", "sampler": "tpe", "seed": 0, **(data.get("search") or {})}
        scheduler = {"type": "asha", **(data.get("scheduler") or {})}
        if search["algorithm"] not in SEARCHERS:
            raise ConfigError(f"{source}: search.algorithm must be one of {SEARCHERS}")
        if scheduler["type"] not in SCHEDULERS:
            raise ConfigError(f"{source}: scheduler.type must be one of {SCHEDULERS}")
        mode = data.get("mode", "max")
        if mode not in ("max", "min"):
            raise ConfigError(f"{source}: mode must be 'max' or 'min'")
        return cls(
            name=run_name(data.get("name"), Path(path).stem, source), base=base, param_space=space, score=score,
            metric=metric, mode=mode,
            num_samples=int(data.get("num_samples", 4)), max_concurrent=int(data.get("max_concurrent", 2)),
            search=search, scheduler=scheduler, checkpoint_frequency=int(data.get("checkpoint_frequency", 2)),
            source=source,
        )


    def settings(self) -> dict[str, Any]:
        """What decides the sweep's trials and their ranking (not where its file lies): hashed to tell
        a rerun of the same sweep from an edited one."""
        return {"base": self.base.to_dict(), "param_space": self.param_space,
                "score": asdict(self.score) if self.score else None, "metric": self.metric, "mode": self.mode,
                "num_samples": self.num_samples, "max_concurrent": self.max_concurrent, "search": self.search,
                "scheduler": self.scheduler, "checkpoint_frequency": self.checkpoint_frequency}


def tune_domain(spec: dict[str, Any]):
    from ray import tune

    (kind, args), = spec.items()
    if kind == "choice":
        return tune.choice(list(args))
    return getattr(tune, kind)(*args)


def trial_trainable(trial_params: dict[str, Any], *, base: TrainSpec, checkpoint_every: int,
                    score: ScoreSpec | None = None) -> None:
    """One trial: the base training spec with the sampled overrides, trained, scored and reported to Tune."""
    import ray.tune
    from ray.tune import Checkpoint

    from rlexec.training.runner import (
        complete_restore,
        progress_line,
        should_stop,
        train_iteration,
    )
    from rlexec.training.checkpoints import save_algorithm
    from rlexec.training.progress import IterationClock
    from rlexec.training.spec import build_algorithm_config

    spec = base.with_overrides(dict(trial_params))
    every = checkpoint_every
    scorer = Scorer(score, base) if score is not None else None
    oracle = bool((spec.sections["environment"].get("env_config") or {}).get("oracle", False))
    algo = build_algorithm_config(spec).build_algo()
    try:
        checkpoint = ray.tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                algo.restore_from_path(folder)
            complete_restore(algo)
        result: dict[str, Any] = {}
        started = time.monotonic()
        clock = IterationClock(algo)  # the time_*_s figures, as rlexec train reports them
        while not should_stop(spec.stop, algo.iteration, result, time.monotonic() - started):
            result = train_iteration(algo, spec.seed, clock)
            line = progress_line(result, algo.iteration)
            if scorer is not None:
                with clock.part("score"):
                    line[score.name] = scorer(algo.get_module(), oracle=oracle)
            if every and (algo.iteration % every == 0
                          or should_stop(spec.stop, algo.iteration, result, time.monotonic() - started)):
                with tempfile.TemporaryDirectory() as folder:
                    with clock.part("checkpoint"):
                        save_algorithm(algo, folder)
                    ray.tune.report({**line, **clock.lap()}, checkpoint=Checkpoint.from_directory(folder))
            else:
                ray.tune.report({**line, **clock.lap()})
    finally:
        algo.stop()


def run_sweep(sweep: SweepSpec, *, out: str | os.PathLike = "runs", local: bool = False, restart: bool = False,
              console=None, monitor=None, callbacks: list | None = None):
    """Run (or resume) the sweep; returns a summary dict of the best trial.

    ``monitor`` (a :class:`~rlexec.training.progress.TrainingMonitor`) hears the start and the sweep
    folder; ``callbacks``: Ray Tune callbacks for a new sweep (a resumed one keeps those it started with).
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    from rlexec.provenance import (
        config_hash,
        inside,
        run_record,
        write_atomic,
        write_json_atomic,
    )
    from rlexec.training.runner import init_ray

    storage = Path(out).resolve() / "tune"
    experiment = inside(storage, storage / sweep.name)
    if restart and experiment.exists():
        import shutil

        shutil.rmtree(experiment)
    settings_hash = config_hash(sweep.settings())
    restore = tune.Tuner.can_restore(str(experiment))
    if restore:  # Tune would restore the experiment's settings, whatever the sweep file says now
        _check_same_sweep(sweep, experiment, settings_hash)
        finished = experiment / "best.json"  # written only after every trial ended
        if finished.is_file():
            # Restoring a finished experiment can rerun trials whose end the last state snapshot missed
            # (seen under load), and then report another best; a finished sweep is read, not rerun.
            if console is not None:
                console.print(f"the sweep in {experiment} has finished: its best.json")
            return json.loads(finished.read_text())
    if monitor is not None:
        monitor.status("starting Ray")
    init_ray(local=local)
    trainable = tune.with_resources(
        tune.with_parameters(trial_trainable, base=sweep.base, checkpoint_every=sweep.checkpoint_frequency,
                             score=sweep.score),
        _trial_resources(sweep.base),
    )
    if monitor is not None:
        experiment.mkdir(parents=True, exist_ok=True)
        monitor.started(experiment)
    if restore:
        if console is not None:
            console.print(f"resuming the interrupted sweep in {experiment}")
        tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        iterations = int(sweep.base.stop.get("training_iterations", 100))
        if sweep.scheduler["type"] == "asha":
            options = {k: v for k, v in sweep.scheduler.items() if k != "type"}
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=options.pop("max_t", iterations), **options)
        elif sweep.scheduler["type"] == "median":
            options = {k: v for k, v in sweep.scheduler.items() if k != "type"}
            scheduler = MedianStoppingRule(time_attr="training_iteration", **options)
        else:
            scheduler = FIFOScheduler()
        if sweep.search["algorithm"] == "optuna":
            searcher = ConcurrencyLimiter(_optuna_searcher(sweep), max_concurrent=sweep.max_concurrent)
        else:
            searcher = BasicVariantGenerator(random_state=sweep.search.get("seed", 0),
                                             max_concurrent=sweep.max_concurrent)
        param_space = {k: tune_domain(v) for k, v in sweep.param_space.items()}
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(metric=sweep.metric, mode=sweep.mode, num_samples=sweep.num_samples,
                                        search_alg=searcher, scheduler=scheduler),
            run_config=tune.RunConfig(name=sweep.name, storage_path=str(storage), verbose=1, callbacks=callbacks,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
        )
        experiment.mkdir(parents=True, exist_ok=True)
        record = run_record({"sweep": sweep.source, **sweep.settings()}, sweep.base.seed)
        record[SETTINGS_HASH] = settings_hash
        write_json_atomic(record, experiment / RECORD)
    results = tuner.fit()
    best = results.get_best_result(metric=sweep.metric, mode=sweep.mode)
    table = results.get_dataframe()
    write_atomic(experiment / "trials.csv", lambda tmp: table.to_csv(tmp, index=False))
    summary = {
        "experiment": str(experiment),
        "trials": len(results),
        "errors": len(results.errors),
        "best_params": dict(best.config),
        "best_" + sweep.metric: best.metrics.get(sweep.metric),
        "best_checkpoint": str(best.checkpoint.path) if best.checkpoint else None,
    }
    write_json_atomic(summary, experiment / "best.json")
    return summary


def _check_same_sweep(sweep: SweepSpec, experiment: Path, settings_hash: str) -> None:
    """Refuse to restore an experiment that was started with other settings than ``sweep``'s."""
    record_file = experiment / RECORD
    try:
        recorded = json.loads(record_file.read_text()).get(SETTINGS_HASH)
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded != settings_hash:
        started = f"settings {recorded}" if recorded else "settings it does not record"
        raise ConfigError(
            f"{sweep.source}: the sweep {sweep.name!r} in {experiment} was started with other settings "
            f"({record_file}: {started}; {sweep.source}: settings {settings_hash}); run it with --restart to "
            "discard the earlier sweep, or give this one a new name")


def _trial_resources(base: TrainSpec):
    from ray import tune

    runners = int((base.sections.get("env_runners") or {}).get("num_env_runners", 2))
    return tune.PlacementGroupFactory([{"CPU": 1}] + [{"CPU": 1}] * runners)


def _optuna_searcher(sweep: SweepSpec):
    try:
        import optuna
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise ConfigError("search.algorithm optuna needs the optuna package (pip install optuna)") from None
    seed = sweep.search.get("seed", 0)
    samplers = {"tpe": optuna.samplers.TPESampler, "gp": optuna.samplers.GPSampler,
                "random": optuna.samplers.RandomSampler}
    name = sweep.search.get("sampler", "tpe")
    if name not in samplers:
        raise ConfigError(f"{sweep.source}: search.sampler must be one of {sorted(samplers)}")
    return OptunaSearch(sampler=samplers[name](seed=seed), seed=seed)


def _check_one_objective(space: dict[str, Any], base: TrainSpec, score: ScoreSpec | None, metric: str,
                         source: str) -> None:
    """Refuse a sweep whose trials would not all be scored on the same objective (see the module docstring)."""
    env_keys = [key for key in space if key.startswith(ENV_PREFIX)]
    if score is not None:
        environment = base.sections["environment"]
        env, continuous = environment.get("env", "bar"), bool((environment.get("env_config") or {}).get("continuous"))
        if env != "bar" or continuous:
            raise ConfigError(f"{source}: score runs discrete bar-env policies; the base trains "
                              + ("continuous actions" if env == "bar" else f"on {env!r}"))
        for key in env_keys:
            if key.startswith(ENV_CONFIG_PREFIX + "execution.") and not key.startswith(SCORED_EXECUTION_SWEEPABLE):
                raise ConfigError(f"{source}: param_space.{key}: the score runs every trial on the base's execution "
                                  "settings, so among them only execution.reward.* may be swept")
            if key in (ENV_CONFIG_PREFIX + "continuous", ENV_PREFIX + "env"):
                raise ConfigError(f"{source}: param_space.{key}: the score runs discrete bar-env policies")
    if metric == "episode_return_mean" and env_keys:
        raise ConfigError(f"{source}: param_space.{env_keys[0]} changes the training env, so episode_return_mean "
                          "scores each trial on its own objective; add a score: section and use its metric")
    if metric == "evaluation_return_mean":
        evaluation = (base.sections.get("evaluation") or {}).get("evaluation_config") or {}
        pinned = evaluation.get("env_config") or {}
        for key in env_keys:
            if not (key.startswith(ENV_CONFIG_PREFIX) and _has_path(pinned, key[len(ENV_CONFIG_PREFIX):].split("."))):
                raise ConfigError(
                    f"{source}: param_space.{key} is not pinned in evaluation.evaluation_config.env_config: RLlib "
                    "deep-merges each trial's env_config into its evaluation env, so evaluation_return_mean would "
                    "score each trial with its own value; pin the key there or add a score: section")


def _has_path(node: Any, keys: list[str]) -> bool:
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _example(domain: dict[str, Any]):
    """A value the domain can produce (its first argument), to check the key makes a valid config."""
    (args,) = domain.values()
    return args[0]
