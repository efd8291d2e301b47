"""The numeric router: an MLP on the 55 window features (the 2-expert MoE baseline's router).

Trained on the routing label (:func:`rlexec.llmoe.routers.base.routing_labels`), like the text
routers, so that the routers differ only in what they read; it is not trained jointly with the
experts. Early stopping holds out the last ``holdout`` fraction of the training windows (in time
order). The explanation names the features that moved the logit most (gradient x standardised input,
i.e. each feature's push away from the training average).
"""

from __future__ import annotations

import numpy as np

from rlexec.llmoe.features import FEATURE_NAMES, WINDOW_DAYS, flat
from rlexec.llmoe.routers.base import RouteDecision, decision_from_probability


def feature_label(index: int) -> str:
    """Flat index 0..54 -> e.g. ``z_d30[t-2]``."""
    day, column = divmod(index, len(FEATURE_NAMES))
    lag = WINDOW_DAYS - 1 - day
    return f"{FEATURE_NAMES[column]}[t{'-' + str(lag) if lag else ''}]"


def top_contributions(contributions: np.ndarray, count: int = 3) -> str:
    """The ``count`` largest contributions as ``name (+0.41)``, strongest first."""
    order = np.argsort(-contributions, kind="stable")[:count]
    return ", ".join(f"{feature_label(i)} ({contributions[i]:+.2f})" for i in order)


class NumericRouter:
    """MLP router; options (rlexec's [DEFAULT]s): ``hidden``, ``dropout``, ``lr``, ``batch_size``,
    ``max_epochs``, ``patience``, ``holdout``."""

    uses_seed = True

    def __init__(self, seed: int = 0, hidden=(64,), dropout: float = 0.2, lr: float = 1e-3, batch_size: int = 32,
                 max_epochs: int = 200, patience: int = 20, holdout: float = 0.1):
        from rlexec.llmoe.experts import ExpertSettings

        self.name = "numeric"
        self.seed = seed
        self.settings = ExpertSettings(hidden=tuple(hidden), dropout=dropout, lr=lr, batch_size=batch_size,
                                       max_epochs=max_epochs, patience=patience)
        self.holdout = holdout
        self.classifier = None

    def fit(self, train_windows, labels: np.ndarray) -> None:
        from rlexec.llmoe.experts import train_classifier

        x = flat(np.stack([w.features for w in train_windows])).astype(np.float64)
        y = np.asarray(labels)
        n_fit = max(1, int(round(len(x) * (1 - self.holdout))))
        self.classifier = train_classifier("ffn", x[:n_fit], y[:n_fit], x[n_fit:], y[n_fit:], self.settings,
                                           self.seed * 1000 + 7)

    def route(self, windows) -> list[RouteDecision]:
        import torch

        if self.classifier is None:
            raise RuntimeError("NumericRouter.route before fit")
        if not windows:
            return []
        x = torch.from_numpy(self.classifier.scale(flat(np.stack([w.features for w in windows])).astype(np.float64)))
        x.requires_grad_(True)
        model = self.classifier.model.eval()
        logits = model(x).squeeze(-1)
        logits.sum().backward()  # rows are independent in eval mode: each row's gradient is its own
        contributions = (x.grad * x).detach().numpy()
        probabilities = torch.sigmoid(logits).detach().numpy()
        decisions = []
        for p, c in zip(probabilities, contributions):
            toward = "optimistic" if p > 0.5 else "pessimistic"
            decisions.append(decision_from_probability(
                float(p), f"P(optimistic) = {p:.2f} from the 55 price features; {toward} mostly because of "
                          f"{top_contributions(c if p > 0.5 else -c)} (logit contributions vs the training average)"))
        return decisions
