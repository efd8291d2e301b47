"""Bayesian optimisation of the holes on Ray Tune: one objective for all trials, improvement, resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rlexec.errors import ConfigError
from rlexec.logicq.search import BEST_FILE, BowlObjective, FINGERPRINT, PROGRESS_FILE, TRIALS_FILE, SearchSettings, run_search
from rlexec.logicq.sketch import Hole


HOLES = (Hole("x", 0.0, 1.0), Hole("t", 0.1, 10.0, log=True))


def Bowl():
    return BowlObjective(HOLES, optimum=(0.3, 0.6))


def _settings(name, n=8, **kw):
    return SearchSettings(name=name, holes=HOLES, num_samples=n, n_startup_trials=3, max_concurrent=2,
                          cpus_per_trial=1.0, seed=3, **kw)


def test_a_tiny_bo_run_improves_on_its_first_trial_and_scores_every_trial_on_one_objective(ray_session, tmp_path):
    result = run_search(_settings("bowl"), Bowl(), out=tmp_path, local=True)
    trials = pd.read_parquet(result.experiment / TRIALS_FILE)
    assert len(trials) == 8 and trials["trial"].tolist() == list(range(1, 9))
    assert trials["objective"].max() > trials["objective"].iloc[0]
    assert result.best_score == trials["objective"].max()
    # every trial's score is the objective of its holes, recomputed here, and carries the same fingerprint
    recomputed = [Bowl()({"x": x, "t": t}) for x, t in zip(trials["x"], trials["t"])]
    assert trials["objective"].to_numpy() == pytest.approx(recomputed)
    assert trials[FINGERPRINT].nunique() == 1
    best = json.loads((result.experiment / BEST_FILE).read_text())
    assert best["holes"] == pytest.approx(result.best_holes) and best["trials"] == 8
    assert (result.experiment / PROGRESS_FILE).stat().st_size > 1000


class InterruptAfter:
    """A Tune callback that interrupts the driver (SIGINT, as Ctrl-C or a scheduler's stop does) once
    ``n`` trials have finished; Tune stops there, leaving an unfinished experiment. Tune restores the
    callbacks an experiment started with, so ``marker`` makes it fire once only."""

    def __new__(cls, n, marker):
        import os
        import signal

        from ray.tune import Callback

        class _Interrupt(Callback):
            def __init__(self):
                self.done = 0

            def on_trial_complete(self, iteration, trials, trial, **info):
                self.done += 1
                if self.done == n and not marker.exists():
                    marker.touch()
                    os.kill(os.getpid(), signal.SIGINT)

        return _Interrupt()


@pytest.mark.slow
def test_an_interrupted_search_resumes_and_keeps_its_finished_trials(ray_session, tmp_path):
    settings = _settings("resume", n=6)
    try:
        first = run_search(settings, Bowl(), out=tmp_path, local=True, callbacks=[InterruptAfter(2, tmp_path / "interrupted")])
        finished_first = len(first.trials)
    except Exception:  # an interrupted fit may also end without a result table
        finished_first = None
    assert finished_first is None or finished_first < 6, "the interrupt must stop the search early"
    result = run_search(settings, Bowl(), out=tmp_path, local=True)
    trials = pd.read_parquet(result.experiment / TRIALS_FILE)
    assert len(trials) == 6
    assert sorted(trials["trial"].tolist()) == list(range(1, 7))
    # an edited search is not restored under the old experiment
    with pytest.raises(ConfigError, match="other settings"):
        run_search(_settings("resume", n=7), Bowl(), out=tmp_path, local=True)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="low < high"):
        SearchSettings(name="x", holes=(Hole("a", 1.0, 1.0),))
    with pytest.raises(ConfigError, match="sampler"):
        SearchSettings(name="x", holes=HOLES, sampler="cma")
