"""LLM router (spec §4.3): a language model reads the window's table and headlines; the route comes from
the log-probabilities of the two label words, calibrated on the training days; a separately
generated sentence gives the reason.

Why scoring instead of generation: a 135M model asked for a label often answers neither ("uncertain"),
and a generated label has no probability. The score of a window is the margin

    Δ = log P("Optimistic" | prompt) − log P("Pessimistic" | prompt)

(each summed over the label's tokens). A frozen model's margins are biased (a small model may favour
one word on every day), so ``fit`` maps them to P(optimistic) on the training days:

* ``calibration: platt`` (default): P = σ(a·Δ + b), a and b by logistic regression on the training
  labels (a < 0 is allowed: it says the model's reading runs against the label);
* ``threshold``: P = σ(Δ − τ), τ the cut on Δ that classifies the most training days correctly;
* ``none``: P = σ(Δ), the model's own two-way odds.

Cost: one forward pass over the prompt per window (label continuations reuse its key/value cache);
the reason is a second, generating pass, so it is made only for the windows after the last training
day by default (``reasons: unseen``; ``all`` or ``none`` also work). Margins and reasons are cached
in memory by prompt, and in ``cache_file`` (JSON lines, appended as they are made) when one is given,
so a re-run or a resumed run skips what is done.

The prompt shows, per day, the features in ``table_features`` in percent and up to
``headlines_per_day`` headlines (the day's most repeated tweets, see
:func:`~rlexec.llmoe.routers.text_common.representative_headlines`), or "No news". The defaults (3
columns, 1 headline of at most 80 characters, dates as month-day) are rlexec's, chosen for cost: a
small model reads digits one token at a time, all 11 columns triple the prompt, and a prompt of ~300
tokens already takes seconds per day on 2 CPU cores; ``table_features: all`` restores the spec's
full table and ``headlines_per_day`` more news.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlexec.errors import ConfigError
from rlexec.llmoe.data import NO_NEWS
from rlexec.llmoe.features import FEATURE_NAMES
from rlexec.llmoe.routers.base import RouteDecision, decision_from_probability
from rlexec.llmoe.routers.text_common import fit_logistic, representative_headlines, sigmoid

if TYPE_CHECKING:
    from rlexec.llmoe.data import DayWindow
    from rlexec.llmoe.routers.backends import LanguageModel

CALIBRATIONS = ("platt", "threshold", "none")
REASON_MODES = ("unseen", "all", "none")
COLUMN_TITLES = {"z_open": "open/close-1", "z_high": "high/close-1", "z_low": "low/close-1",
                 "z_close": "close change", "z_adj": "adj close change",
                 **{f"z_d{k}": f"{k}d avg/close-1" for k in (5, 10, 15, 20, 25, 30)}}
DEFAULT_TABLE = ("z_close", "z_d5", "z_d20")
DEFAULT_HEADLINES_PER_DAY = 1
DEFAULT_HEADLINE_CHARS = 80


def build_prompt(window: DayWindow, labels: tuple[str, str] = ("Optimistic", "Pessimistic"),
                 table_features: tuple[str, ...] = DEFAULT_TABLE,
                 headlines_per_day: int = DEFAULT_HEADLINES_PER_DAY, headline_chars: int = DEFAULT_HEADLINE_CHARS) -> str:
    """The router's question for one window (spec §4.3 wording), features in percent, oldest day first."""
    columns = [FEATURE_NAMES.index(name) for name in table_features]
    header = "day | " + " | ".join(f"{COLUMN_TITLES[name]} %" for name in table_features)
    lines = [(f"Given the last {len(window.dates)} trading days of {window.ticker} (price features per day) "
              f"and headlines per day, classify the outlook for the next trading day as {labels[0]} or {labels[1]}."),
             header]
    for i, day in enumerate(window.dates):
        values = " | ".join(f"{100 * float(window.features[i, c]):+.1f}" for c in columns)
        news = representative_headlines(window.texts[i], headlines_per_day, headline_chars)
        lines.append(f"{day:%m-%d} | {values}")  # month-day: the year costs tokens and tells a router nothing
        lines.append("  news: " + ("; ".join(f'"{h}"' for h in news) if news else NO_NEWS))
    lines.append(f"Answer with one word: {labels[0]} or {labels[1]}.")
    return "\n".join(lines)


class LLMRouter:
    """Options (rlexec's defaults): ``backend`` (see :func:`~rlexec.llmoe.routers.backends.make_backend`;
    default the shipped SmolLM2), ``labels``, ``table_features`` (names or ``"all"``),
    ``headlines_per_day``, ``headline_chars``, ``calibration``, ``reasons``, ``reasons_from`` (ISO date:
    reasons for windows on or after it, instead of ``reasons``), ``reason_tokens`` 32, ``cache_file``.
    """

    name = "llm"
    uses_seed = False  # frozen model, deterministic scoring and a convex calibration
    ray_num_cpus = 1.0

    def __init__(self, seed: int = 0, backend: dict[str, Any] | None = None,
                 labels: tuple[str, str] | list[str] = ("Optimistic", "Pessimistic"),
                 table_features: tuple[str, ...] | list[str] | str = DEFAULT_TABLE,
                 headlines_per_day: int = DEFAULT_HEADLINES_PER_DAY, headline_chars: int = DEFAULT_HEADLINE_CHARS,
                 calibration: str = "platt", reasons: str = "unseen", reasons_from: str | None = None,
                 reason_tokens: int = 32, cache_file: str | None = None, language_model: LanguageModel | None = None):
        if calibration not in CALIBRATIONS:
            raise ConfigError(f"routers.llm.calibration: {calibration!r} is not one of {CALIBRATIONS}")
        if reasons not in REASON_MODES:
            raise ConfigError(f"routers.llm.reasons: {reasons!r} is not one of {REASON_MODES}")
        table = tuple(FEATURE_NAMES) if table_features == "all" else tuple(table_features)
        unknown = [name for name in table if name not in FEATURE_NAMES]
        if unknown:
            raise ConfigError(f"routers.llm.table_features: unknown {unknown}; known: {list(FEATURE_NAMES)} or 'all'")
        if len(labels) != 2 or labels[0] == labels[1]:
            raise ConfigError(f"routers.llm.labels: two different words (optimistic first), got {labels!r}")
        self.seed = seed
        self.backend_spec = dict(backend) if backend else None
        self.labels = (str(labels[0]), str(labels[1]))
        self.table_features = table
        self.headlines_per_day, self.headline_chars = int(headlines_per_day), int(headline_chars)
        self.calibration, self.reasons = calibration, reasons
        self.reasons_from = np.datetime64(reasons_from, "D") if reasons_from else None
        self.reason_tokens = int(reason_tokens)
        self.cache_file = str(cache_file) if cache_file else None
        self._language_model = language_model
        self._margins: dict[str, float] = {}
        self._reasons: dict[str, str] = {}
        self._cache_loaded = False
        self._lock = threading.Lock()
        self._slope, self._intercept = 1.0, 0.0
        self._last_train_day = None
        self._fitted = False
        self.seconds_scoring = 0.0
        self.seconds_generating = 0.0

    # ------------------------------------------------------------------ model and caches
    @property
    def language_model(self) -> LanguageModel:
        if self._language_model is None:
            from rlexec.llmoe.routers.backends import make_backend

            self._language_model = make_backend(self.backend_spec)
        return self._language_model

    def prompt(self, window: DayWindow) -> str:
        return build_prompt(window, self.labels, self.table_features, self.headlines_per_day, self.headline_chars)

    def _key(self, prompt: str) -> str:
        # the backend's name is part of the key: one cache file may serve several models
        return hashlib.sha1(f"{self.language_model.name}\x1f{self.labels}\x1f{prompt}".encode()).hexdigest()

    def _load_cache(self) -> None:
        if self._cache_loaded or not self.cache_file:
            self._cache_loaded = True
            return
        path = Path(self.cache_file)
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                for line_number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a killed run: its entry is recomputed
                    if "margin" in record:
                        self._margins[record["key"]] = float(record["margin"])
                    if "reason" in record:
                        self._reasons[record["key"]] = str(record["reason"])
        self._cache_loaded = True

    def _append_cache(self, record: dict[str, Any]) -> None:
        if not self.cache_file:
            return
        path = Path(self.cache_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def cached_margin(self, window: DayWindow) -> float | None:
        """The window's margin if already computed (in memory or in ``cache_file``), else None."""
        self._load_cache()
        return self._margins.get(self._key(self.prompt(window)))

    def margins(self, windows: list[DayWindow]) -> np.ndarray:
        """Δ = log P(label 0) − log P(label 1) of each window (cached by prompt)."""
        self._load_cache()
        out = np.zeros(len(windows))
        for i, window in enumerate(windows):
            prompt = self.prompt(window)
            key = self._key(prompt)
            if key not in self._margins:
                start = time.perf_counter()
                optimistic, pessimistic = self.language_model.score(prompt, self.labels)
                self.seconds_scoring += time.perf_counter() - start
                self._margins[key] = optimistic - pessimistic
                self._append_cache({"key": key, "ticker": window.ticker, "date": str(window.date),
                                    "margin": self._margins[key]})
            out[i] = self._margins[key]
        return out

    def _reason_message(self, window: DayWindow, route_label: str) -> str:
        # without a pointer to the evidence a small model only repeats the label back
        return (f"{self.prompt(window).rsplit(chr(10), 1)[0]}\n"
                f"The outlook is {route_label}. In one sentence, say which headline or price move supports this.")

    def cached_reason(self, window: DayWindow, route_label: str) -> str | None:
        """The reason already generated for this window and label, else None."""
        self._load_cache()
        return self._reasons.get(self._key(self._reason_message(window, route_label)))

    def reason(self, window: DayWindow, route_label: str) -> str:
        """One generated sentence on why ``route_label`` fits the window (cached by prompt and label)."""
        self._load_cache()
        message = self._reason_message(window, route_label)
        key = self._key(message)
        if key not in self._reasons:
            start = time.perf_counter()
            text = self.language_model.generate(message, self.reason_tokens)
            self.seconds_generating += time.perf_counter() - start
            self._reasons[key] = first_sentence(text)
            self._append_cache({"key": key, "ticker": window.ticker, "date": str(window.date),
                                "reason": self._reasons[key]})
        return self._reasons[key]

    # ------------------------------------------------------------------ calibration and routing
    def fit(self, train_windows: list[DayWindow], labels: np.ndarray) -> None:
        labels = np.asarray(labels).astype(np.int64)
        if len(train_windows) != len(labels) or not train_windows:
            raise ValueError(f"{self.name}.fit: {len(train_windows)} windows for {len(labels)} labels (need >= 1)")
        margins = self.margins(train_windows)
        self._slope, self._intercept = calibrate(margins, labels, self.calibration)
        self._last_train_day = max(np.datetime64(w.date, "D") for w in train_windows)
        self._fitted = True

    def probabilities(self, margins: np.ndarray) -> np.ndarray:
        return sigmoid(self._slope * np.asarray(margins, dtype=np.float64) + self._intercept)

    def _wants_reason(self, window: DayWindow) -> bool:
        day = np.datetime64(window.date, "D")
        if self.reasons_from is not None:
            return bool(day >= self.reasons_from)
        if self.reasons == "all":
            return True
        return self.reasons == "unseen" and self._last_train_day is not None and bool(day > self._last_train_day)

    def route(self, windows: list[DayWindow]) -> list[RouteDecision]:
        if not self._fitted:
            raise RuntimeError(f"{self.name}: route() before fit()")
        margins = self.margins(windows)
        decisions = []
        for window, margin, probability in zip(windows, margins, self.probabilities(margins)):
            label = self.labels[0] if probability > 0.5 else self.labels[1]
            evidence = (f"log P({self.labels[0]}) - log P({self.labels[1]}) = {margin:+.2f}, "
                        f"calibrated P(optimistic) = {probability:.2f}")
            # a reason made before (e.g. by an earlier run sharing cache_file) costs nothing to show
            known = self.cached_reason(window, label)
            if known is not None or self._wants_reason(window):
                explanation = f"{known if known is not None else self.reason(window, label)} [{evidence}]"
            else:
                explanation = f"{evidence} (no generated reason for this day: reasons={self.reasons})"
            decisions.append(decision_from_probability(probability, explanation))
        return decisions

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def calibrate(margins: np.ndarray, labels: np.ndarray, method: str = "platt") -> tuple[float, float]:
    """(slope a, intercept b) of P(optimistic) = σ(a·Δ + b), fitted on training margins and labels."""
    margins = np.asarray(margins, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if method == "none":
        return 1.0, 0.0
    if method == "platt":
        # a tiny penalty keeps the fit finite when the margins separate the training labels perfectly
        weights, intercept = fit_logistic(margins[:, None], labels, l2=1e-6)
        return float(weights[0]), intercept
    if method == "threshold":
        cuts = np.unique(margins)
        candidates = np.concatenate([[cuts[0] - 1.0], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1.0]])
        accuracy = [np.mean((margins > c) == (labels == 1)) for c in candidates]
        return 1.0, -float(candidates[int(np.argmax(accuracy))])
    raise ConfigError(f"routers.llm.calibration: {method!r} is not one of {CALIBRATIONS}")


def first_sentence(text: str, max_chars: int = 300) -> str:
    """The first sentence of a generated text (or its first ``max_chars`` characters), on one line."""
    text = " ".join(text.split())
    for end, char in enumerate(text):
        if char in ".!?" and (end + 1 == len(text) or text[end + 1] == " "):
            return text[: end + 1]
    return text[:max_chars] if text else "(the model gave no reason)"
