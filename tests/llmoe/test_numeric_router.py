"""The numeric router learns its label from the 55 features and says which features moved it."""

from __future__ import annotations

import datetime as dt

import numpy as np

from rlexec.llmoe.data import DayWindow
from rlexec.llmoe.routers import make_router
from rlexec.llmoe.routers.numeric import feature_label, top_contributions


def _windows(features):
    return [DayWindow("XYZ", dt.date(2015, 1, 1), f.astype(np.float32), [[] for _ in range(5)],
                      tuple(dt.date(2015, 1, 1) for _ in range(5))) for f in features]


def test_it_learns_a_label_carried_by_one_feature_and_names_that_feature():
    rng = np.random.default_rng(0)
    features = rng.normal(0, 0.01, size=(600, 5, 11))
    labels = (features[:, 4, 10] > 0).astype(int)  # z_d30 of day t decides the route
    router = make_router("numeric", {"hidden": [32], "batch_size": 64, "max_epochs": 60, "patience": 15}, seed=0)
    router.fit(_windows(features[:500]), labels[:500])
    decisions = router.route(_windows(features[500:]))
    routes = np.array([d.route == "optimistic" for d in decisions])
    assert (routes == labels[500:].astype(bool)).mean() > 0.8
    assert all(0 <= d.probability <= 1 for d in decisions)
    strong = int(np.argmax(np.abs(features[240:, 4, 10])))
    assert "z_d30[t]" in decisions[strong].explanation.split("because of")[1].split(",")[0]


def test_feature_labels_name_the_day_of_the_window():
    assert feature_label(0) == "z_open[t-4]"
    assert feature_label(54) == "z_d30[t]"
    assert top_contributions(np.array([0.1] + [0.0] * 53 + [0.5]), 2) == "z_d30[t] (+0.50), z_open[t-4] (+0.10)"
