"""Walk-forward study (issue 11): per fold, train every method on the days up to d, evaluate them and
the broker strategies on the same orders of day d+1; one table per test day and one pooled.

The study YAML (``rlexec walkforward CONFIG.yaml``; ``configs/opd_walkforward.yaml``)::

    name: opd_walkforward
    split: {preset: us_equity_1min}        # a DataSplit mapping: its days, in date order, are walked
    folds: {min_train_days: 1, max_train_days: null, last: 2}
    methods:                               # trained per fold, in this order
      - configs/opd_teacher.yaml
      - {config: configs/opd.yaml, teacher: opd_teacher}   # teacher: an earlier method's fold run
    set: {stop.training_iterations: 2}     # dotted overrides for every method (as ``rlexec train --set``)
    evaluation: {orders: 200, seed: 0, strategies: [twap, vwap, is], actor: greedy,
                 compare: [opd:opds, opds:ppo]}

``folds``: :func:`~rlexec.data.splits.walk_forward_folds`'s arguments, and ``last`` (rlexec's option,
default all): keep only the last N folds, those with the most training days. Each method trains with
its split replaced by the fold's (train on its train days; no validation part, so a method's
``validation:`` is switched off) and runs as ``rlexec train`` would (:func:`rlexec.training.runner.train`).

Layout, under ``<out>/walkforward/<name>/``::

    run.json                       the study config, provenance
    fold_<k>_<test day>/train/<method>/<time>-<hash>/   each method's run folder
    fold_<k>_<test day>/evaluation/  per_order.parquet, summary.json, methods.csv, paired.csv, orders.csv
    methods.csv, paired.csv        every test day's rows, then the pooled ones (scope = the day or "pooled")

Rerunning resumes: a method whose fold run finished (``summary.json``) with the same config is not
trained again, and a fold evaluation of the same runs and settings is not redone; an unfinished run is
left as it is and trained afresh. The pooled rows concatenate the test days' orders (still paired).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlexec.configs import read_yaml_mapping
from rlexec.data.splits import DataSplit
from rlexec.errors import ConfigError
from rlexec.evaluation import study
from rlexec.training.spec import TrainSpec

TOP_LEVEL = ("name", "split", "folds", "methods", "set", "evaluation")
FOLD_KEYS = ("min_train_days", "max_train_days", "last")
EVALUATION_KEYS = ("orders", "seed", "strategies", "actor", "compare")
EVALUATION_DEFAULTS = {"orders": 200, "seed": 0, "strategies": ["twap", "vwap", "is"], "actor": "greedy",
                       "compare": []}  # rlexec's defaults
POOLED = "pooled"
DONE = "summary.json"


@dataclass(frozen=True)
class Method:
    spec: TrainSpec  # as trained in every fold, before the fold's split
    teacher: str | None = None


@dataclass(frozen=True)
class WalkForwardSpec:
    name: str
    split: DataSplit
    folds: tuple[DataSplit, ...]
    methods: tuple[Method, ...]
    evaluation: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"
    config: dict[str, Any] = field(default_factory=dict)  # as read, for run.json

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> "WalkForwardSpec":
        """``overrides``: dotted training keys for every method on top of the file's ``set`` (``--set``)."""
        data = read_yaml_mapping(path)
        if overrides:
            data = {**data, "set": {**_mapping(data, "set", str(path)), **overrides}}
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "WalkForwardSpec":
        from rlexec.policies.actors import ACTOR_KINDS
        from rlexec.strategies import strategy_names
        from rlexec.training.spec import run_name

        unknown = set(data) - set(TOP_LEVEL)
        if unknown:
            raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}; known: {list(TOP_LEVEL)}")
        name = run_name(data.get("name"), "walkforward", source)
        if not isinstance(data.get("split"), dict):
            raise ConfigError(f"{source}: split must be a mapping (e.g. {{preset: us_equity_1min}})")
        split = DataSplit.from_dict(data["split"])
        folds_config = _mapping(data, "folds", source, FOLD_KEYS)
        last = folds_config.pop("last", None)
        folds = split.walk_forward(**folds_config) if folds_config else split.walk_forward()
        if last is not None:
            if not isinstance(last, int) or isinstance(last, bool) or last < 1:
                raise ConfigError(f"{source}: folds.last must be an integer >= 1, got {last!r}")
            folds = folds[-last:]

        overrides = _mapping(data, "set", source)
        methods: list[Method] = []
        for k, entry in enumerate(data.get("methods") or []):
            where = f"{source}: methods[{k}]"
            entry = {"config": entry} if isinstance(entry, str) else entry
            if not isinstance(entry, dict) or set(entry) - {"config", "teacher"} or not entry.get("config"):
                raise ConfigError(f"{where}: expected a training YAML path or {{config: PATH, teacher: METHOD}}, "
                                  f"got {entry!r}")
            spec = TrainSpec.from_yaml(entry["config"])
            if overrides:
                spec = spec.with_overrides(overrides, origin=f"{source}: set")
            taken = [m.spec.name for m in methods]
            if spec.name in taken:
                raise ConfigError(f"{where}: a second method named {spec.name!r}; give each a distinct name")
            teacher = entry.get("teacher")
            if teacher is not None and teacher not in taken:
                raise ConfigError(f"{where}: teacher {teacher!r} is not a method listed before it ({taken})")
            methods.append(Method(spec, teacher))
        if not methods:
            raise ConfigError(f"{source}: methods must list at least one training YAML")

        evaluation = {**EVALUATION_DEFAULTS, **_mapping(data, "evaluation", source, EVALUATION_KEYS)}
        if not isinstance(evaluation["orders"], int) or isinstance(evaluation["orders"], bool) or evaluation["orders"] < 2:
            raise ConfigError(f"{source}: evaluation.orders must be an integer >= 2, got {evaluation['orders']!r}")
        strategies = [str(s).lower() for s in evaluation["strategies"] or []]
        bad = [s for s in strategies if s not in strategy_names()]
        if not strategies or bad:
            raise ConfigError(f"{source}: evaluation.strategies: {bad or 'none'}; choose from {strategy_names()}")
        if evaluation["actor"] not in ACTOR_KINDS:
            raise ConfigError(f"{source}: evaluation.actor must be one of {ACTOR_KINDS}, got {evaluation['actor']!r}")
        evaluation["strategies"] = strategies
        named = [study.Comparison.parse(c, f"{source}: evaluation.compare") for c in evaluation["compare"] or []]
        pairs = study.comparisons(strategies[0], strategies + [m.spec.name for m in methods], named,
                                  f"{source}: evaluation.compare")
        evaluation["compare"] = [f"{c.a}:{c.b}" for c in pairs[len(strategies) + len(methods) - 1:]]
        return cls(name, split, tuple(folds), tuple(methods), evaluation, source, dict(data))

    def fold_name(self, k: int) -> str:
        return f"fold_{k}_{self.folds[k].test_days[0]}"


def _mapping(data: dict, key: str, source: str, known: tuple[str, ...] | None = None) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {key} must be a mapping, got {value!r}")
    unknown = set(value) - set(known) if known is not None else set()
    if unknown:
        raise ConfigError(f"{source}: {key}: unknown key(s) {sorted(unknown)}; known: {list(known)}")
    return dict(value)


def fold_spec(method: Method, split: DataSplit, teacher_run: Path | None = None) -> TrainSpec:
    """The method's spec on one fold: the fold's split, its train part, no validation (the fold has none)."""
    overrides: dict[str, Any] = {
        # tuples as lists (the YAML the run records); a synthetic market's settings, or None, as they are
        "environment.env_config.split": {k: list(v) if isinstance(v, tuple) else v for k, v in split.to_dict().items()},
        "environment.env_config.part": "train",
        "validation": None,
    }
    if method.teacher is not None:
        overrides["training.teacher_checkpoint"] = str(teacher_run)
    return method.spec.with_overrides(overrides)


def completed_run(fold_dir: Path, spec: TrainSpec) -> Path | None:
    """The newest finished run of ``spec`` (its config as recorded equals ``spec``'s) in ``fold_dir``."""
    root = fold_dir / "train" / spec.name
    if not root.is_dir():
        return None
    wanted = _plain(spec.to_dict())
    for run in sorted(root.iterdir(), reverse=True):
        if ((run / DONE).is_file() and (run / "config.yaml").is_file()
                and _plain(TrainSpec.from_yaml(run / "config.yaml").to_dict()) == wanted):
            return run
    return None


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def evaluate_fold(spec: WalkForwardSpec, split: DataSplit, runs: dict[str, Path], out_dir: Path) -> None:
    """Brokers and the fold's trained methods on the same orders of the fold's test day, into ``out_dir``."""
    import pyarrow.parquet as pq

    from rlexec.data.orders import write_orders
    from rlexec.envs.engine import prepare_orders
    from rlexec.evaluation.runner import bar_runs, evaluate_runs
    from rlexec.evaluation.tables import bar_reward_note
    from rlexec.policies.trained import TrainedPolicy
    from rlexec.provenance import write_atomic, write_json_atomic
    from rlexec.strategies import make_strategy

    settings = spec.evaluation
    policies = [TrainedPolicy.load(run, name=name).require_env("bar") for name, run in runs.items()]
    execution = policies[0].execution
    mismatched = [p.name for p in policies if p.execution != execution]
    if mismatched:
        raise ConfigError(f"{spec.source}: methods {mismatched} train with execution settings that differ from "
                          f"{policies[0].name}'s; a walk-forward table needs one MDP")
    market = split.market()
    orders = split.orders(market, "test", settings["orders"], settings["seed"], execution.horizon_minutes)
    batch = prepare_orders(market, orders, execution)
    strategies = [make_strategy(name) for name in settings["strategies"]]
    evaluation = evaluate_runs(bar_runs(batch, execution, strategies, policies, actor=settings["actor"],
                                        seed=settings["seed"]))
    day = split.test_days[0]
    named = [study.Comparison.parse(c) for c in settings["compare"]]
    methods, paired = study.tables(day, {r.name: r.metrics for r in evaluation.results}, evaluation.baseline, named)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_order = evaluation.per_order_table()
    write_atomic(out_dir / "per_order.parquet", lambda tmp: pq.write_table(per_order, tmp))
    write_orders(list(batch.orders), out_dir / "orders.csv")
    study.write_rows(methods, out_dir / "methods.csv")
    study.write_rows(paired, out_dir / "paired.csv")
    # written last: its presence says the fold's evaluation is complete
    write_json_atomic({"test_day": day, "runs": {k: str(v) for k, v in runs.items()}, "evaluation": settings,
                       "n_orders": len(evaluation), "baseline": evaluation.baseline,
                       "reward": bar_reward_note(execution.reward).to_dict(),
                       "results": {r.name: r.summary.to_dict() for r in evaluation.results}}, out_dir / DONE)


def evaluation_is_current(out_dir: Path, spec: WalkForwardSpec, runs: dict[str, Path]) -> bool:
    path = out_dir / DONE
    if not path.is_file() or not (out_dir / "per_order.parquet").is_file():
        return False
    done = json.loads(path.read_text())
    return done.get("runs") == {k: str(v) for k, v in runs.items()} and done.get("evaluation") == spec.evaluation


def fold_metrics(out_dir: Path) -> study.MethodMetrics:
    """A fold's per-order metrics by method, in the evaluation's order, from its per_order.parquet."""
    import numpy as np
    import pyarrow.parquet as pq

    from rlexec.evaluation.metrics import ORDER_METRICS

    table = pq.read_table(out_dir / "per_order.parquet")
    names = table.column("strategy").to_pylist()
    metrics: study.MethodMetrics = {}
    for method in dict.fromkeys(names):
        rows = np.flatnonzero(np.asarray(names) == method)
        metrics[method] = {m: table.column(m).to_numpy()[rows].astype(np.float64) for m in ORDER_METRICS
                           if m in table.column_names}
    return metrics


@dataclass
class StudyResult:
    root: Path
    days: list[str]
    per_day: list[study.MethodMetrics]
    pooled: study.MethodMetrics
    method_rows: list[dict[str, Any]]
    paired_rows: list[dict[str, Any]]
    trained: list[str] = field(default_factory=list)  # "<fold>/<method>" trained in this call
    reused: list[str] = field(default_factory=list)  # ... found finished and not trained again
    evaluated: list[str] = field(default_factory=list)  # folds evaluated in this call
    reward: dict[str, str] | None = None  # the reward column's unit and definition (tables.RewardNote)


def run_study(spec: WalkForwardSpec, *, out: str | os.PathLike = "runs", local: bool = False,
              monitor_for=None, say=lambda text: None) -> StudyResult:
    """Train and evaluate every fold (skipping what is done), then write the per-day and pooled tables.

    ``monitor_for(spec)``: the :class:`~rlexec.training.progress.TrainingMonitor` of one training run;
    ``say``: one line of what happens next.
    """
    from rlexec.provenance import run_record, write_json_atomic
    from rlexec.training.runner import train

    root = Path(out) / "walkforward" / spec.name
    root.mkdir(parents=True, exist_ok=True)
    record = run_record(_plain(spec.config), 0) | {"source": spec.source,
                                                    "folds": [_plain(f.to_dict()) for f in spec.folds]}
    write_json_atomic(record, root / "run.json")
    result = StudyResult(root, [], [], {}, [], [])
    named = [study.Comparison.parse(c) for c in spec.evaluation["compare"]]
    for k, split in enumerate(spec.folds):
        fold_dir = root / spec.fold_name(k)
        runs: dict[str, Path] = {}
        for method in spec.methods:
            fold = fold_spec(method, split, runs.get(method.teacher) if method.teacher else None)
            label = f"{spec.fold_name(k)}/{fold.name}"
            done = completed_run(fold_dir, fold)
            if done is not None:
                say(f"{label}: finished run {done.name} found, not trained again")
                result.reused.append(label)
            else:
                say(f"{label}: training on {', '.join(split.train_days)}")
                done = train(fold, out=fold_dir, local=local, monitor=monitor_for(fold) if monitor_for else None)
                result.trained.append(label)
            runs[fold.name] = done
        evaluation_dir = fold_dir / "evaluation"
        if not evaluation_is_current(evaluation_dir, spec, runs):
            say(f"{spec.fold_name(k)}: evaluating on {split.test_days[0]}")
            evaluate_fold(spec, split, runs, evaluation_dir)
            result.evaluated.append(spec.fold_name(k))
        metrics = fold_metrics(evaluation_dir)
        result.reward = json.loads((evaluation_dir / DONE).read_text()).get("reward")
        day = split.test_days[0]
        result.days.append(day)
        result.per_day.append(metrics)
        _add_tables(result, day, metrics, named)
    result.pooled = study.pool(result.per_day, f"{spec.source}: pooled test days")
    _add_tables(result, POOLED, result.pooled, named)
    study.write_rows(result.method_rows, root / "methods.csv")
    study.write_rows(result.paired_rows, root / "paired.csv")
    return result


def _add_tables(result: StudyResult, scope: str, metrics: study.MethodMetrics, named) -> None:
    """``scope``'s rows, against the first method of the evaluation (the baseline broker)."""
    methods, paired = study.tables(scope, metrics, next(iter(metrics)), named)
    result.method_rows += methods
    result.paired_rows += paired
