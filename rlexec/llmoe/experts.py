"""The two feed-forward experts (spec §4.3) and the MLP / LSTM baselines, trained with early stopping.

Every network predicts ``up = 1[close_{t+1} > close_t]`` from the window's features, with BCE and
Adam, keeping the weights of the epoch with the lowest validation loss and stopping after
``patience`` epochs without improvement. Inputs are standardised with the training days' mean and
standard deviation (rlexec's [DEFAULT]: the raw features are ratios of order 1e-2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlexec.errors import ConfigError
from rlexec.llmoe.features import N_FEATURES, WINDOW_DAYS


@dataclass(frozen=True)
class ExpertSettings:
    """Training settings shared by the experts and the MLP/LSTM baselines.

    ``hidden``, ``dropout`` and ``lr`` are spec §4.3's defaults (55 -> 128 -> 64 -> 1, ReLU, dropout 0.2,
    Adam 1e-3); ``batch_size``, ``max_epochs``, ``patience``, ``min_route_days`` and ``lstm_hidden``
    are rlexec's [DEFAULT]. An expert routed fewer than ``min_route_days`` training days (or
    validation days, for its early stopping) uses all of them instead, so that a router that sends
    nearly everything one way still yields two trained experts.
    """

    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.2
    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 200
    patience: int = 20
    min_route_days: int = 20
    lstm_hidden: int = 64

    def __post_init__(self) -> None:
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ConfigError(f"experts.hidden: positive layer sizes, got {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"experts.dropout: in [0, 1), got {self.dropout}")
        for name in ("lr",):
            if not getattr(self, name) > 0:
                raise ConfigError(f"experts.{name}: must be > 0, got {getattr(self, name)}")
        for name in ("batch_size", "max_epochs", "patience", "lstm_hidden"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"experts.{name}: must be >= 1, got {getattr(self, name)}")


class Standardizer:
    def __init__(self, x: np.ndarray):
        self.mean = x.mean(axis=0)
        self.std = np.where(x.std(axis=0) > 1e-12, x.std(axis=0), 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def feed_forward(n_in: int, hidden: tuple[int, ...], dropout: float):
    """n_in -> hidden... -> 1 logit, ReLU, dropout after each hidden layer."""
    import torch.nn as nn

    layers, width = [], n_in
    for size in hidden:
        layers += [nn.Linear(width, int(size)), nn.ReLU(), nn.Dropout(dropout)]
        width = int(size)
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def lstm_classifier(hidden: int, dropout: float):
    """[B, 5, 11] -> LSTM -> last hidden state -> 1 logit."""
    import torch.nn as nn

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(N_FEATURES, hidden, batch_first=True)
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, 1))

        def forward(self, x):
            x = x.reshape(x.shape[0], WINDOW_DAYS, N_FEATURES)
            _, (h, _) = self.lstm(x)
            return self.head(h[-1])

    return LSTMClassifier()


class Classifier:
    """A trained network with its standardiser: ``predict(x) -> P(up)``."""

    def __init__(self, model, scale: Standardizer, epochs: int, best_validation_loss: float):
        self.model, self.scale = model, scale
        self.epochs, self.best_validation_loss = epochs, best_validation_loss

    def predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        if len(x) == 0:
            return np.zeros(0)
        self.model.eval()
        with torch.no_grad():
            return torch.sigmoid(self.model(torch.from_numpy(self.scale(x)))).squeeze(-1).numpy().astype(np.float64)


def train_classifier(kind: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                     settings: ExpertSettings, seed: int) -> Classifier:
    """``kind`` "ffn" (flat 55 inputs) or "lstm" (the same 55 read as 5 days x 11)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    scale = Standardizer(x_train)
    model = (feed_forward(x_train.shape[1], settings.hidden, settings.dropout) if kind == "ffn"
             else lstm_classifier(settings.lstm_hidden, settings.dropout))
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(scale(x_train)), torch.from_numpy(y_train.astype(np.float32))
    xv, yv = torch.from_numpy(scale(x_val)), torch.from_numpy(y_val.astype(np.float32))
    best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        order = rng.permutation(len(xt))
        for start in range(0, len(order), settings.batch_size):
            batch = torch.from_numpy(order[start:start + settings.batch_size])
            optimiser.zero_grad()
            loss_fn(model(xt[batch]).squeeze(-1), yt[batch]).backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            validation_loss = float(loss_fn(model(xv).squeeze(-1), yv))
        if validation_loss < best_loss - 1e-6:
            best_loss, best_epoch, stale = validation_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= settings.patience:
                break
    model.load_state_dict(best_state)
    return Classifier(model, scale, best_epoch, best_loss)


def routed_subset(mask: np.ndarray, minimum: int) -> np.ndarray:
    """Indices where ``mask`` holds, or all indices when fewer than ``minimum`` do."""
    chosen = np.flatnonzero(mask)
    return chosen if len(chosen) >= minimum else np.arange(len(mask))


def train_experts(x: np.ndarray, up: np.ndarray, optimistic: np.ndarray, train: np.ndarray, validation: np.ndarray,
                  settings: ExpertSettings, seed: int) -> dict[str, Classifier]:
    """The optimistic expert on the training days routed optimistic, the pessimistic one on the rest,
    each early-stopped on the validation days routed its way (see :class:`ExpertSettings`)."""
    experts = {}
    for offset, (route, wanted) in enumerate((("optimistic", True), ("pessimistic", False))):
        tr = train[routed_subset(optimistic[train] == wanted, settings.min_route_days)]
        va = validation[routed_subset(optimistic[validation] == wanted, settings.min_route_days // 4)]
        experts[route] = train_classifier("ffn", x[tr], up[tr], x[va], up[va], settings, seed * 1000 + offset)
    return experts


def mixture_predict(experts: dict[str, Classifier], x: np.ndarray, optimistic: np.ndarray) -> np.ndarray:
    """P(up) from the expert each day is routed to."""
    return np.where(optimistic, experts["optimistic"].predict(x), experts["pessimistic"].predict(x))
