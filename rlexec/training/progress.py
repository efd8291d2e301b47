"""What a training run shows while it runs: timings that add up, an ETA, one compact line per iteration.

**Timings.** RLlib 2.60's ``timers`` in the result (``env_runner_sampling_timer``,
``learner_update_timer``) are exponential moving averages over every iteration so far, with
coefficient 0.01: the first iteration's value keeps 99 % of its weight into the second, so they
describe the start of the run, not this iteration, and next to ``time_this_iter_s`` (the unsmoothed
wall-clock of this iteration's ``Algorithm.step()``, measured by Tune's ``Trainable.train``) they
"add up" to more than the iteration took. :class:`IterationClock` measures each iteration in the
driver instead, and reports these ``progress.jsonl`` figures (seconds of wall-clock):

``time_iteration_s``
    from the end of the previous iteration's line (the loop's start, for the first) to this line,
    so consecutive iterations tile the run; it is the sum of every ``time_*_s`` below.
``time_reseed_s``
    re-deriving the iteration's random streams (:func:`~rlexec.training.runner.seed_iteration`).
``time_sample_s``, ``time_learn_s``, ``time_sync_weights_s``, ``time_evaluate_s``
    inside ``algo.train()``: the blocks RLlib times as ``env_runner_sampling_timer`` (collecting the
    train batch, waiting for remote EnvRunners included), ``learner_update_timer`` (the Learner
    update), ``synch_weights`` (new weights to the EnvRunners) and ``evaluation_iteration``, each
    summed over the iteration, not smoothed. An algorithm that does not time a block reports no key
    for it. With ``evaluation_parallel_to_training`` the evaluation overlaps sampling and is reported
    as ``time_evaluate_parallel_s``, outside the sum.
``time_rllib_other_s``
    the rest of ``algo.train()``: RLlib's metrics reduction, connector-state sync, restoring failed
    EnvRunners, Tune's bookkeeping.
``time_checkpoint_s``, ``time_score_s``
    writing a checkpoint; scoring the policy (sweeps). Zero in iterations without one.
``time_other_s``
    the rest of the driver's loop: writing progress.jsonl and the event files, printing the line.
``time_elapsed_s``
    not a part: seconds since the loop started (the clock ``stop.time_s`` is checked against).

``time_this_iter_s`` (RLlib's, unsmoothed) stays in progress.jsonl: it is ``algo.train()`` less
Tune's few milliseconds around ``step()``. (In a sweep's Tune results, Tune replaces it with the
time between two of the trial's reports.)
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

# RLlib's timer keys (ray.rllib.utils.metrics, 2.60) -> the part of algo.train() they measure. They are
# siblings: none runs inside another, so their sum is at most algo.train()'s time.
RLLIB_TIMERS = {
    "env_runner_sampling_timer": "sample",
    "learner_update_timer": "learn",
    "synch_weights": "sync_weights",
    "evaluation_iteration": "evaluate",
}
RLLIB_PART_ORDER = ("sample", "learn", "sync_weights", "evaluate")
TRAIN_PART = "train"  # the driver part that holds algo.train(); reported split into RLlib's parts


class IterationClock:
    """Wall-clock of each training iteration, split into parts that add up (see the module docstring).

    Driver code times its own parts with :meth:`part`; :meth:`watch` times RLlib's blocks inside
    ``algo.train()``; :meth:`lap` closes an iteration and returns its ``time_*_s`` figures.
    """

    def __init__(self, algo=None, *, clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self._started = self._lap_start = clock()
        self._parts: dict[str, float] = defaultdict(float)
        self._seen: dict[str, None] = {}  # parts timed so far, in first-seen order: reported every lap
        self._lock = threading.Lock()  # RLlib may time evaluation in another thread
        self._parallel_evaluation = False
        if algo is not None:
            self.watch(algo)

    def watch(self, algo) -> None:
        """Time RLlib's blocks (:data:`RLLIB_TIMERS`) as ``algo.train()`` runs them.

        RLlib keeps only the smoothed value of its timers, so the Algorithm's ``metrics.log_time``
        (the context manager every block is timed with) is wrapped on this instance: each block of
        a listed key is timed here as well, then RLlib pushes its own value as before.
        """
        metrics = algo.metrics
        log_time = getattr(metrics.log_time, "__wrapped__", metrics.log_time)  # not twice, if watched again

        def timed_log_time(key, *args, **kwargs):
            stats = log_time(key, *args, **kwargs)
            part = _rllib_part(key)
            return stats if part is None else _TimedBlock(stats, partial(self.add, part), self._clock)

        timed_log_time.__wrapped__ = log_time
        metrics.log_time = timed_log_time
        self._parallel_evaluation = bool(getattr(algo.config, "evaluation_parallel_to_training", False))

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Time a block of the driver's loop as part ``name`` (``train`` for ``algo.train()``)."""
        start = self._clock()
        try:
            yield
        finally:
            self.add(name, self._clock() - start)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self._parts[name] += seconds
            self._seen.setdefault(name)

    def lap(self) -> dict[str, float]:
        """Close the iteration: its ``time_*_s`` figures, which sum to ``time_iteration_s``."""
        now = self._clock()
        with self._lock:
            parts, self._parts = self._parts, defaultdict(float)
            seen = list(self._seen)
        total, self._lap_start = now - self._lap_start, now
        figures = {"time_iteration_s": total}
        train = parts.get(TRAIN_PART, 0.0)
        inside = 0.0
        for name in RLLIB_PART_ORDER:
            if name not in seen:
                continue
            if name == "evaluate" and self._parallel_evaluation:
                figures["time_evaluate_parallel_s"] = parts.get(name, 0.0)
                continue
            figures[f"time_{name}_s"] = parts.get(name, 0.0)
            inside += parts.get(name, 0.0)
        if TRAIN_PART in seen:
            figures["time_rllib_other_s"] = train - inside
        driver = [name for name in seen if name != TRAIN_PART and name not in RLLIB_TIMERS.values()]
        for name in driver:
            figures[f"time_{name}_s"] = parts.get(name, 0.0)
        figures["time_other_s"] = total - train - sum(parts.get(name, 0.0) for name in driver)
        figures["time_elapsed_s"] = now - self._started
        return figures


def timing_parts(line: dict[str, Any]) -> dict[str, float]:
    """The figures of ``line`` whose sum is its ``time_iteration_s``."""
    return {key: value for key, value in line.items()
            if key.startswith("time_") and key.endswith("_s")
            and key not in ("time_iteration_s", "time_elapsed_s", "time_this_iter_s", "time_evaluate_parallel_s")}


def _rllib_part(key) -> str | None:
    if isinstance(key, (tuple, list)) and len(key) == 2 and key[0] == "timers":
        return RLLIB_TIMERS.get(key[1])
    return None


class _TimedBlock:
    """RLlib's stats object, entered as RLlib does, and timed for the clock too."""

    def __init__(self, stats, record: Callable[[float], None], clock: Callable[[], float]):
        self._stats, self._record, self._clock = stats, record, clock
        self._start = None

    def __enter__(self):
        self._start = self._clock()
        return self._stats.__enter__()

    def __exit__(self, *exc_info):
        try:
            return self._stats.__exit__(*exc_info)
        finally:
            self._record(self._clock() - self._start)

    def __getattr__(self, name):
        return getattr(self._stats, name)


# --------------------------------------------------------------------------------------- the line


def eta_seconds(stop: dict[str, float], line: dict[str, Any], seconds_per_iteration: float | None,
                steps_per_second: float | None) -> float | None:
    """Seconds until the first of ``stop``'s criteria is met, from the iteration just ended.

    ``training_iterations``: the iterations left at ``seconds_per_iteration``; ``env_steps``: the
    steps left at ``steps_per_second``; ``time_s``: the time left, rounded up to whole iterations
    (the run checks it between iterations). None when no criterion can be estimated yet.
    """
    estimates = []
    if seconds_per_iteration is not None:
        if "training_iterations" in stop:
            estimates.append(max(0.0, stop["training_iterations"] - line["iteration"]) * seconds_per_iteration)
        if "time_s" in stop and "time_elapsed_s" in line and seconds_per_iteration > 0:
            left = max(0.0, stop["time_s"] - line["time_elapsed_s"])
            estimates.append(math.ceil(left / seconds_per_iteration) * seconds_per_iteration)
    if "env_steps" in stop and steps_per_second and "env_steps_sampled_lifetime" in line:
        estimates.append(max(0.0, stop["env_steps"] - line["env_steps_sampled_lifetime"]) / steps_per_second)
    return min(estimates) if estimates else None


def clock_text(seconds: float) -> str:
    """``0:37``, ``12:05``, ``1:02:03``."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


# The Learner figure shown as "loss": the first of these the algorithm logs.
LOSS_KEYS = ("total_loss", "td_error")


class ProgressFormatter:
    """One compact line per iteration: ``iter 3/10  steps 6,144  return -0.153  loss 0.021  12.4 s/it
    elapsed 0:37  ETA 1:27``.

    ``remote_env_runners``: the configured remote EnvRunners; ``runners healthy/n`` is shown only when
    there are some (RLlib counts only remote ones healthy, so a local run would read ``0``).
    ``score``: the key of a sweep's score, shown when the line has it. s/it and the step rate are
    means over the last ``window`` iterations (5: rlexec's default), so the ETA follows a run that
    speeds up after its first iteration.
    """

    def __init__(self, stop: dict[str, float], *, remote_env_runners: int = 0, score: str | None = None,
                 window: int = 5):
        self.stop = dict(stop)
        self.remote_env_runners = remote_env_runners
        self.score = score
        self._recent: deque[tuple[float, float]] = deque(maxlen=window)  # (seconds, env steps)

    def __call__(self, line: dict[str, Any]) -> str:
        seconds = line.get("time_iteration_s")
        if seconds is not None:
            self._recent.append((seconds, line.get("env_steps_sampled", 0.0)))
        spent = sum(s for s, _ in self._recent)
        per_iteration = spent / len(self._recent) if self._recent else None
        steps_per_second = sum(n for _, n in self._recent) / spent if spent > 0 else None

        total = self.stop.get("training_iterations")
        parts = [f"iter {line['iteration']}" + (f"/{int(total)}" if total else "")]
        if "env_steps_sampled_lifetime" in line:
            target = self.stop.get("env_steps")
            parts.append(f"steps {int(line['env_steps_sampled_lifetime']):,}" + (f"/{int(target):,}" if target else ""))
        if "episode_return_mean" in line:
            parts.append(f"return {line['episode_return_mean']:.4g}")
        if "evaluation_return_mean" in line:
            parts.append(f"eval return {line['evaluation_return_mean']:.4g}")
        if self.score and self.score in line and self.score not in ("episode_return_mean", "evaluation_return_mean"):
            parts.append(f"{self.score} {line[self.score]:.4g}")
        loss = next((key for key in LOSS_KEYS if key in line), None)
        if loss is not None:
            parts.append(f"{'loss' if loss == 'total_loss' else loss} {line[loss]:.4g}")
        if self.remote_env_runners > 0 and "healthy_env_runners" in line:
            parts.append(f"runners {int(line['healthy_env_runners'])}/{self.remote_env_runners}")
        if line.get("env_runner_restarts"):
            parts.append(f"restarts {int(line['env_runner_restarts'])}")
        if per_iteration is not None:
            parts.append(f"{per_iteration:.3g} s/it")
        if "time_elapsed_s" in line:
            parts.append(f"elapsed {clock_text(line['time_elapsed_s'])}")
        eta = eta_seconds(self.stop, line, per_iteration, steps_per_second)
        if eta is not None:
            parts.append(f"ETA {clock_text(eta)}")
        return "  ".join(parts)


# ------------------------------------------------------------------------------------ the monitor


class TrainingMonitor:
    """What :func:`~rlexec.training.runner.train` tells its caller as it runs; the base does nothing."""

    def status(self, text: str) -> None:
        """A step before the first iteration (starting Ray, building the algorithm)."""

    def started(self, folder: Path, config=None) -> None:
        """The run (or sweep) folder exists; ``config``: the RLlib ``AlgorithmConfig``, for a training run."""

    def iteration(self, line: dict[str, Any]) -> None:
        """An iteration's progress.jsonl line."""


class ConsoleMonitor(TrainingMonitor):
    """Prints the status steps and one :class:`ProgressFormatter` line per iteration.

    ``ray_log``: a :class:`~rlexec.training.ray_logs.RayLogRouter`, told the run folder once it
    exists. A resumed run's folder gets its log only once the run trains, so that a resume that
    fails (a damaged checkpoint) leaves the folder as it was; until then the lines are held.
    """

    def __init__(self, console, stop: dict[str, float], *, ray_log=None, score: str | None = None):
        self.console = console
        self.formatter = ProgressFormatter(stop, score=score)
        self.ray_log = ray_log
        self._folder: Path | None = None

    def status(self, text: str) -> None:
        self.console.print(f"[dim]{text}…[/dim]", highlight=False)

    def started(self, folder: Path, config=None) -> None:
        self._folder = Path(folder)
        if config is not None:
            self.formatter.remote_env_runners = int(config.num_env_runners or 0)
        self.console.print(f"run folder: {folder}", highlight=False)
        if self.ray_log is not None and not self.ray_log.verbose:
            resumed = (self._folder / "progress.jsonl").exists()
            if resumed:
                self.ray_log.capture_worker_output()
            else:
                self.ray_log.attach(self._folder)
            self.console.print(f"[dim]Ray's own messages: {self._folder / 'ray.log'} (--verbose prints them here)"
                               "[/dim]", highlight=False)

    def iteration(self, line: dict[str, Any]) -> None:
        if self.ray_log is not None and self._folder is not None and self.ray_log.path is None:
            self.ray_log.attach(self._folder)
        self.console.print(self.formatter(line), highlight=False)
