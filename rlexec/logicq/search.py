"""Bayesian optimisation of sketch holes on Ray Tune (spec 3.4): one trial = one hole assignment, scored.

The objective is pluggable: any picklable callable ``objective(holes: dict[str, float]) -> float``
(higher is better with ``mode="max"``), e.g. a backtest of the frozen policy on validation data
(execution: mean PA; trading: Sharpe). It may return a mapping with the score under ``"objective"``
and extra figures to log. The same objective instance is shipped to every trial
(``tune.with_parameters``) and only the holes vary, so all trials are scored on one objective; each
trial also reports the objective's fingerprint (:func:`objective_fingerprint`) so that this is
checkable afterwards.

Searcher: Optuna inside Tune (``OptunaSearch``), TPE or GP (``sampler``), the first
``n_startup_trials`` random (spec 3.4: 20 random + 180 guided = 200 trials by default), at most
``max_concurrent`` trials at once over the Ray cluster (``ConcurrencyLimiter``).

Resuming: the experiment lives in ``<out>/tune/<name>``; if the driver is killed, the same call
again restores it (``Tuner.restore``: finished trials and the searcher's history are kept, the rest
run). Settings that changed since the start are refused (``restart=True`` discards the old run).
Results next to the experiment: ``best_holes.json``, ``trials.parquet`` (every trial's holes and
score, in trial order) and ``bo_progress.png`` (each trial's score and the best so far).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlexec.errors import ConfigError
from rlexec.logicq.sketch import Hole

SAMPLERS = ("tpe", "gp", "random")
FINGERPRINT = "objective_fingerprint"
BEST_FILE, TRIALS_FILE, PROGRESS_FILE = "best_holes.json", "trials.parquet", "bo_progress.png"


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """How the holes are searched. Defaults are the spec 3.4 defaults or rlexec's (marked)."""

    name: str
    holes: tuple[Hole, ...]
    metric: str = "objective"
    mode: str = "max"
    num_samples: int = 200  # spec 3.4: 20 random inits + 180 iterations
    n_startup_trials: int = 20  # spec 3.4
    sampler: str = "tpe"  # rlexec default; "gp" is the spec's GP surrogate (Optuna's GPSampler)
    seed: int = 0
    max_concurrent: int = 2  # rlexec default
    cpus_per_trial: float = 1.0  # rlexec default
    source: str = "<settings>"

    def __post_init__(self) -> None:
        where = self.source
        if not self.holes:
            raise ConfigError(f"{where}: no holes to search")
        names = [h.name for h in self.holes]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}: hole names repeat: {names}")
        for h in self.holes:
            if not (math.isfinite(h.low) and math.isfinite(h.high) and h.low < h.high) or (h.log and h.low <= 0):
                raise ConfigError(f"{where}: hole {h.name}: bounds [{h.low}, {h.high}] must be finite with low < high"
                                  + (" and low > 0 (log scale)" if h.log else ""))
        if self.mode not in ("max", "min"):
            raise ConfigError(f"{where}: mode must be 'max' or 'min', got {self.mode!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"{where}: sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        for key, least in (("num_samples", 1), ("n_startup_trials", 0), ("max_concurrent", 1), ("seed", 0)):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"{where}: {key} must be an integer >= {least}, got {value!r}")
        if not self.cpus_per_trial > 0:
            raise ConfigError(f"{where}: cpus_per_trial must be > 0, got {self.cpus_per_trial!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source")
        return data


def objective_fingerprint(objective: Any) -> str:
    """A hash of what the objective says it scores (``objective.describe()``), else of its type's name."""
    from rlexec.provenance import config_hash

    describe = getattr(objective, "describe", None)
    return config_hash({"describe": describe() if callable(describe) else type(objective).__qualname__})


def hole_trial(config: dict[str, Any], *, objective: Callable[[dict[str, float]], Any], metric: str,
               fingerprint: str) -> None:
    """One Tune trial: score one hole assignment and report it once."""
    import ray.tune

    started = time.monotonic()
    value = objective({k: float(v) for k, v in config.items()})
    extra: dict[str, Any] = {}
    if isinstance(value, Mapping):
        extra = {k: v for k, v in value.items() if k != "objective"}
        value = value["objective"]
    ray.tune.report({metric: float(value), **extra, FINGERPRINT: fingerprint,
                     "trial_seconds": time.monotonic() - started})


@dataclass
class SearchResult:
    experiment: Path
    best_holes: dict[str, float]
    best_score: float
    trials: Any = field(repr=False)  # pandas DataFrame, one row per trial in trial order

    @property
    def best_file(self) -> Path:
        return self.experiment / BEST_FILE


def _param_space(holes: Sequence[Hole]) -> dict[str, Any]:
    from ray import tune

    return {h.name: (tune.loguniform if h.log else tune.uniform)(h.low, h.high) for h in holes}


def _searcher(settings: SearchSettings):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if settings.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=settings.n_startup_trials)
    elif settings.sampler == "gp":
        sampler = optuna.samplers.GPSampler(seed=settings.seed, n_startup_trials=settings.n_startup_trials)
    else:
        sampler = optuna.samplers.RandomSampler(seed=settings.seed)
    return OptunaSearch(sampler=sampler, seed=settings.seed)


def run_search(settings: SearchSettings, objective: Callable[[dict[str, float]], Any], *,
               out: str | os.PathLike = "runs", restart: bool = False, local: bool = False,
               record: Mapping[str, Any] | None = None, callbacks: list | None = None) -> SearchResult:
    """Run (or resume) the search; writes and returns the best holes and every trial.

    ``record``: what else decides the objective (e.g. the backtest settings), stored and hashed with
    the settings so that a resumed run is the same search.
    """
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from rlexec.provenance import config_hash, inside, run_record, write_json_atomic
    from rlexec.training.runner import init_ray
    from rlexec.training.sweep import RECORD, SETTINGS_HASH, _check_same_sweep

    storage = Path(out).resolve() / "tune"
    experiment = inside(storage, storage / settings.name)
    if restart and experiment.exists():
        import shutil

        shutil.rmtree(experiment)
    fingerprint = objective_fingerprint(objective)
    described = {**settings.to_dict(), "objective": dict(record or {}), FINGERPRINT: fingerprint}
    settings_hash = config_hash(described)
    restore = tune.Tuner.can_restore(str(experiment))
    if restore:
        _check_same_sweep(settings, experiment, settings_hash)
    init_ray(local=local)
    trainable = tune.with_resources(
        tune.with_parameters(hole_trial, objective=objective, metric=settings.metric, fingerprint=fingerprint),
        {"CPU": settings.cpus_per_trial},
    )
    if restore:
        tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        searcher = ConcurrencyLimiter(_searcher(settings), max_concurrent=settings.max_concurrent)
        tuner = tune.Tuner(
            trainable, param_space=_param_space(settings.holes),
            tune_config=tune.TuneConfig(metric=settings.metric, mode=settings.mode, num_samples=settings.num_samples,
                                        search_alg=searcher, reuse_actors=True),
            run_config=tune.RunConfig(name=settings.name, storage_path=str(storage), verbose=0, callbacks=callbacks),
        )
        experiment.mkdir(parents=True, exist_ok=True)
        data = run_record(described, settings.seed)
        data[SETTINGS_HASH] = settings_hash
        write_json_atomic(data, experiment / RECORD)
    results = tuner.fit()
    return write_results(settings, results, experiment)


def trials_frame(settings: SearchSettings, results) -> Any:
    """One row per finished trial, in the order the searcher proposed them: index, holes, score."""
    import pandas as pd

    rows = []
    for result in results:
        if result.metrics is None or settings.metric not in result.metrics:
            continue
        trial_id = str(result.metrics.get("trial_id", ""))
        tag = str(result.metrics.get("experiment_tag", ""))  # "<n>_<params>": n counts the searcher's proposals
        index = int(tag.split("_", 1)[0]) if tag.split("_", 1)[0].isdigit() else len(rows) + 1
        rows.append({"trial": index, "trial_id": trial_id,
                     **{h.name: float(result.config[h.name]) for h in settings.holes},
                     settings.metric: float(result.metrics[settings.metric]),
                     FINGERPRINT: result.metrics.get(FINGERPRINT)})
    frame = pd.DataFrame(rows).sort_values("trial").reset_index(drop=True) if rows else pd.DataFrame()
    if rows:
        best = frame[settings.metric].cummax() if settings.mode == "max" else frame[settings.metric].cummin()
        frame["best_so_far"] = best
    return frame


def write_results(settings: SearchSettings, results, experiment: Path) -> SearchResult:
    from rlexec.provenance import write_atomic, write_json_atomic

    frame = trials_frame(settings, results)
    if frame.empty:
        raise ConfigError(f"{settings.source}: no trial of {settings.name!r} reported {settings.metric!r}; "
                          f"see the trial errors under {experiment}")
    best_row = frame.loc[frame[settings.metric].idxmax() if settings.mode == "max" else frame[settings.metric].idxmin()]
    best = {h.name: float(best_row[h.name]) for h in settings.holes}
    score = float(best_row[settings.metric])
    write_json_atomic({"metric": settings.metric, "mode": settings.mode, "best": score,
                       "trial": int(best_row["trial"]), "trials": len(frame), "errors": len(results.errors),
                       "holes": best}, experiment / BEST_FILE)
    write_atomic(experiment / TRIALS_FILE, lambda tmp: frame.to_parquet(tmp, index=False))
    plot_progress(frame, settings, experiment / PROGRESS_FILE)
    return SearchResult(experiment, best, score, frame)


def plot_progress(frame, settings: SearchSettings, path: Path) -> Path:
    """Each trial's score (dots; random start-up trials in grey) and the best so far (line)."""
    from rlexec.evaluation.plots import _new_figure, save_figure

    fig = _new_figure(7.0, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    x = range(1, len(frame) + 1)
    startup = min(settings.n_startup_trials, len(frame)) if settings.sampler != "random" else len(frame)
    scores = frame[settings.metric].to_numpy()
    ax.scatter(list(x)[:startup], scores[:startup], s=10, color="0.6", label="random start-up trials")
    ax.scatter(list(x)[startup:], scores[startup:], s=10, color="C0", label=f"{settings.sampler.upper()} trials")
    ax.plot(list(x), frame["best_so_far"].to_numpy(), color="C3", label="best so far")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("trial")
    ax.set_ylabel(settings.metric)
    ax.set_title(f"Bayesian optimisation of the sketch holes: {settings.name}")
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


class BowlObjective:
    """A synthetic objective with a known optimum: ``-sum_h (u_h - u*_h)^2`` over the holes, ``u`` each
    hole's position in its range (log scale for log holes). For smoke runs and tests of the search."""

    def __init__(self, holes: Sequence[Hole], optimum: Sequence[float] | None = None):
        self.holes = tuple(holes)
        self.optimum = tuple(optimum) if optimum is not None else tuple(0.3 for _ in self.holes)

    def describe(self) -> dict[str, Any]:
        return {"bowl": [asdict(h) for h in self.holes], "optimum": list(self.optimum)}

    def __call__(self, holes: dict[str, float]) -> float:
        total = 0.0
        for hole, best in zip(self.holes, self.optimum):
            value, low, high = holes[hole.name], hole.low, hole.high
            if hole.log:
                value, low, high = math.log(value), math.log(low), math.log(high)
            total += ((value - low) / (high - low) - best) ** 2
        return -total


def read_best(path: str | os.PathLike) -> dict[str, float]:
    """The holes of a ``best_holes.json`` (or of the experiment folder holding it)."""
    path = Path(path)
    path = path / BEST_FILE if path.is_dir() else path
    try:
        return {k: float(v) for k, v in json.loads(path.read_text())["holes"].items()}
    except (OSError, ValueError, KeyError, AttributeError) as err:
        raise ConfigError(f"{path}: not a best-holes file ({err})") from None
