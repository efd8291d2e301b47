"""learning_curves.png: validation PA per iteration, one line per run that logged it."""

from __future__ import annotations

import numpy as np

from rlexec.evaluation.plots import validation_curves_figure


def test_each_run_with_a_validation_pa_is_one_line_with_its_values():
    progress = {
        "ppo": [{"iteration": 1, "validation_pa_bps": -2.0, "validation_pa_se": 0.5},
                {"iteration": 2, "episode_return_mean": 0.1},  # an iteration without validation (every: 2)
                {"iteration": 3, "validation_pa_bps": 1.0, "validation_pa_se": 0.4}],
        "opd": [{"iteration": 1, "validation_pa_bps": 0.5}],
        "old_run": [{"iteration": 1, "episode_return_mean": 0.0}],  # trained without validation: no line
    }
    fig = validation_curves_figure(progress, "us_equity_1min validation")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"PPO", "OPD"}
    assert list(lines["PPO"].get_xdata()) == [1, 3] and list(lines["PPO"].get_ydata()) == [-2.0, 1.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["PPO", "OPD"]
    band = ax.collections[0].get_paths()[0].vertices  # PPO's ±1 SE band spans -2.5 .. 1.4
    assert np.isclose(band[:, 1].min(), -2.5) and np.isclose(band[:, 1].max(), 1.4)
    assert "us_equity_1min validation" in fig._suptitle.get_text()


def test_no_run_with_a_validation_pa_says_so():
    fig = validation_curves_figure({"ppo": [{"iteration": 1, "episode_return_mean": 0.0}]})
    assert "no run logged a validation PA" in [t.get_text() for t in fig.axes[0].texts]
