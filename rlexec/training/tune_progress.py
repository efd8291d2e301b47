"""``rlexec tune``'s per-trial progress lines: a Ray Tune callback (imports Ray Tune, so kept apart)."""

from __future__ import annotations

from ray.tune import Callback

from rlexec.training.progress import ProgressFormatter


class TrialProgress(Callback):
    """Prints every trial result as ``trial <id>  iter 2/10  ...  <score> 1.23  ...  ETA 0:41``.

    Tune pickles its callbacks with the experiment and restores them on resume, so the state is
    plain data (no console object): the lines go through ``print``.
    """

    def __init__(self, stop: dict[str, float], score: str | None = None):
        self.stop = dict(stop)
        self.score = score
        self.formatters: dict[str, ProgressFormatter] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "iteration" not in result:
            return
        formatter = self.formatters.setdefault(trial.trial_id, ProgressFormatter(self.stop, score=self.score))
        print(f"trial {trial.trial_id}  {formatter(result)}", flush=True)
