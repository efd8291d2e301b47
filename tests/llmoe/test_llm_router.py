"""LLM router: the prompt, log-probability scoring on a tiny in-memory GPT-2 checked by hand, the
calibration, reasons only where asked, the resumable cache; and (slow) the shipped SmolLM2 GGUF."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import time

import numpy as np
import pytest

from rlexec.errors import ConfigError
from rlexec.llmoe.data import NO_NEWS, DayWindow
from rlexec.llmoe.routers import make_router
from rlexec.llmoe.routers.backends import make_backend, raw_prompt
from rlexec.llmoe.routers.llm import LLMRouter, build_prompt, calibrate, first_sentence


def _window(day: int, texts: list[list[str]], close_change: float = 0.0, ticker: str = "TEST") -> DayWindow:
    dates = tuple(dt.date(2015, 3, 2) + dt.timedelta(days=day + i) for i in range(5))
    features = np.zeros((5, 11), np.float32)
    features[:, 3] = close_change
    return DayWindow(ticker, dates[-1], features, texts, dates)


# ---------------------------------------------------------------- prompt

def test_prompt_has_the_table_in_percent_one_headline_a_day_and_no_news():
    features = np.zeros((5, 11), np.float32)
    features[4, 3], features[4, 5], features[4, 8] = 0.0123, -0.004, 0.05  # z_close, z_d5, z_d20 of day t
    dates = tuple(dt.date(2015, 3, d) for d in (2, 3, 4, 5, 6))
    texts = [["Apple up", "Apple up", "Other"], [], [], [], ["RT @x: Big news http://t.co/a"]]
    prompt = build_prompt(DayWindow("AAPL", dates[-1], features, texts, dates))
    lines = prompt.splitlines()
    assert "last 5 trading days of AAPL" in lines[0] and "Optimistic or Pessimistic" in lines[0]
    assert lines[1] == "day | close change % | 5d avg/close-1 % | 20d avg/close-1 %"
    assert lines[2:4] == ["03-02 | +0.0 | +0.0 | +0.0", '  news: "Apple up"']
    assert lines[4:6] == ["03-03 | +0.0 | +0.0 | +0.0", f"  news: {NO_NEWS}"]
    assert lines[10:12] == ["03-06 | +1.2 | -0.4 | +5.0", '  news: "Big news"']
    assert lines[-1] == "Answer with one word: Optimistic or Pessimistic."
    assert len(build_prompt(DayWindow("AAPL", dates[-1], features, texts, dates), table_features=(
        "z_open", "z_high", "z_low", "z_close", "z_adj", "z_d5", "z_d10", "z_d15", "z_d20", "z_d25", "z_d30")
    ).splitlines()[1].split("|")) == 12


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="table_features"):
        LLMRouter(table_features=["z_volume"])
    with pytest.raises(ConfigError, match="calibration"):
        make_router("llm", {"calibration": "isotonic"})
    with pytest.raises(ConfigError, match="backend.kind"):
        make_backend({"kind": "llama"})


# ---------------------------------------------------------------- scoring on a tiny GPT-2, by hand

WORDS = ["[UNK]", "[PAD]", "the", "market", "is", "up", "down", "two", "Answer", ":", "news", "good", "bad"]


@pytest.fixture(scope="module")
def tiny_backend():
    pytest.importorskip("transformers")
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from rlexec.llmoe.routers.backends.hf import HFBackend

    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(WORDS), n_positions=512, n_embd=16, n_layer=2, n_head=2)).eval()
    return HFBackend(model=model, tokenizer=tokenizer, name="tiny-gpt2")


def _hand_log_prob(backend, prompt_text: str, continuation_words: list[str]) -> float:
    import torch

    prompt = [WORDS.index(w) for w in prompt_text.replace(":", " :").split()]
    target = [WORDS.index(w) for w in continuation_words]
    with torch.no_grad():
        logits = backend._model(torch.tensor([prompt + target])).logits[0]
    log_probs = torch.log_softmax(logits, dim=-1)
    return float(sum(log_probs[len(prompt) - 1 + j, token] for j, token in enumerate(target)))


def test_score_is_the_summed_token_log_probability_of_each_continuation(tiny_backend):
    message = "the market is"
    assert raw_prompt(message) == "the market is\nAnswer:"  # no chat template: the raw format
    prompt_ids, continuation_ids = tiny_backend.token_ids(message, ["up", "down two"])
    assert prompt_ids == [WORDS.index(w) for w in ("the", "market", "is", "Answer", ":")]
    assert continuation_ids == [[WORDS.index("up")], [WORDS.index("down"), WORDS.index("two")]]
    scores = tiny_backend.score(message, ["down two", "up two", "up"])
    for score, words in zip(scores, (["down", "two"], ["up", "two"], ["up"])):
        assert score == pytest.approx(_hand_log_prob(tiny_backend, raw_prompt(message), words), abs=1e-5)
    # each continuation runs on its own copy of the prompt's cache: their order changes nothing
    assert tiny_backend.score(message, ["up", "up two", "down two"]) == pytest.approx(scores[::-1], abs=1e-6)
    assert tiny_backend.generate(message, 3)  # greedy text comes back (words of the tiny vocabulary)


def test_the_router_routes_by_the_calibrated_margin_of_the_tiny_model(tiny_backend):
    router = LLMRouter(labels=("up", "down"), language_model=tiny_backend, reasons="none")
    windows = [_window(i, [["good news"]] * 5, close_change=0.01 * (i - 5)) for i in range(10)]
    margins = router.margins(windows)
    for window, margin in zip(windows[:2], margins):
        up, down = tiny_backend.score(router.prompt(window), ["up", "down"])
        assert margin == pytest.approx(up - down, abs=1e-6)
    router.fit(windows, np.array([0, 1] * 5))
    decisions = router.route(windows)
    np.testing.assert_allclose([d.probability for d in decisions], router.probabilities(margins))
    assert all("log P(up) - log P(down)" in d.explanation for d in decisions)


# ---------------------------------------------------------------- calibration

def test_threshold_calibration_cuts_between_the_classes():
    slope, intercept = calibrate(np.array([-2.0, -1.0, 1.0, 3.0]), np.array([0, 0, 1, 1]), "threshold")
    assert (slope, intercept) == (1.0, 0.0)  # the cut halfway between -1 and 1
    slope, intercept = calibrate(np.array([5.0, 6.0, 8.0, 9.0]), np.array([0, 0, 1, 1]), "threshold")
    assert intercept == -7.0  # a model that always prefers label 0 is shifted back


def test_platt_calibration_is_the_one_feature_logistic_fit_and_may_flip_the_sign():
    margins = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 0.3, -0.3])
    labels = np.array([0, 0, 1, 1, 1, 1, 0, 0])
    slope, intercept = calibrate(margins, labels, "platt")
    p = 1 / (1 + np.exp(-(slope * margins + intercept)))
    assert slope > 0
    assert np.sum(p - labels) == pytest.approx(0.0, abs=1e-6)  # stationarity in b
    assert np.sum((p - labels) * margins) == pytest.approx(-1e-6 * slope, abs=1e-6)  # stationarity in a
    flipped, _ = calibrate(margins, 1 - labels, "platt")
    assert flipped == pytest.approx(-slope, rel=1e-6)
    assert calibrate(margins, labels, "none") == (1.0, 0.0)


def test_first_sentence_keeps_one_line_and_one_sentence():
    assert first_sentence(" Shares rose 2.5% on iPhone news.  Then more.") == "Shares rose 2.5% on iPhone news."
    assert first_sentence("") == "(the model gave no reason)"


# ---------------------------------------------------------------- reasons and the cache, on a stand-in model

class _CountingModel:
    """Scores 'Optimistic' higher the more 'good' appears in the prompt; counts its calls."""

    name = "counting"

    def __init__(self):
        self.scored, self.generated = 0, 0

    def score(self, message, continuations):
        self.scored += 1
        good = message.count("good") - message.count("bad")
        return [0.5 * good - 1.0, -1.0]

    def generate(self, message, max_new_tokens):
        self.generated += 1
        return "The good headline on the last day supports it. Extra words."


def _good_bad_windows(n):
    windows, labels = [], []
    for i in range(n):
        label = i % 2
        windows.append(_window(i, [[("good" if label else "bad") + f" item {i}"]] * 5))
        labels.append(label)
    return windows, np.array(labels)


def test_reasons_are_generated_only_after_the_training_days_and_cached_to_disk(tmp_path):
    windows, labels = _good_bad_windows(12)
    model = _CountingModel()
    cache = tmp_path / "llm.jsonl"
    router = LLMRouter(language_model=model, cache_file=str(cache))
    router.fit(windows[:8], labels[:8])
    decisions = router.route(windows)
    assert [d.route == "optimistic" for d in decisions] == [bool(y) for y in labels]
    assert model.scored == 12 and model.generated == 4  # one score per window, reasons for the 4 unseen days
    assert decisions[-1].explanation.startswith("The good headline on the last day supports it. [")
    assert "no generated reason" in decisions[0].explanation
    records = [json.loads(line) for line in cache.read_text().splitlines()]
    assert sum("margin" in r for r in records) == 12 and sum("reason" in r for r in records) == 4

    # a second router on the same cache file (a resumed or repeated run) calls the model for nothing
    again_model = _CountingModel()
    again = LLMRouter(language_model=again_model, cache_file=str(cache))
    again.fit(windows[:8], labels[:8])
    assert [d.explanation for d in again.route(windows)] == [d.explanation for d in decisions]
    assert again_model.scored == 0 and again_model.generated == 0
    # reasons already made are shown even by a router asked to make none
    quiet = LLMRouter(language_model=_CountingModel(), cache_file=str(cache), reasons="none")
    quiet.fit(windows[:8], labels[:8])
    assert [d.explanation for d in quiet.route(windows)][8:] == [d.explanation for d in decisions][8:]


def test_a_line_cut_short_in_the_cache_is_recomputed_and_the_router_pickles(tmp_path):
    windows, labels = _good_bad_windows(4)
    cache = tmp_path / "llm.jsonl"
    first = LLMRouter(language_model=_CountingModel(), cache_file=str(cache), reasons="none")
    first.margins(windows)
    cache.write_text(cache.read_text()[:-20])  # a killed run left half a line
    model = _CountingModel()
    router = LLMRouter(language_model=model, cache_file=str(cache), reasons="none")
    router.fit(windows, labels)
    assert model.scored == 1
    clone = pickle.loads(pickle.dumps(router))
    assert [d.probability for d in clone.route(windows)] == [d.probability for d in router.route(windows)]


def test_reasons_from_a_date_override_the_mode():
    windows, labels = _good_bad_windows(6)
    model = _CountingModel()
    router = LLMRouter(language_model=model, reasons="none", reasons_from=str(windows[4].date))
    router.fit(windows, labels)
    router.route(windows)
    assert model.generated == 2


# ---------------------------------------------------------------- the shipped SmolLM2 (slow: ~16 s to load on 2 idle cores)

@pytest.fixture(scope="session")
def smollm2():
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    try:
        backend = make_backend({"kind": "smollm2"})
    except ConfigError as exc:
        pytest.skip(str(exc))
    start = time.perf_counter()
    backend.token_ids("warm up", ["x"])  # loads the model
    backend.load_seconds = time.perf_counter() - start
    return backend


@pytest.mark.slow
def test_smollm2_gguf_scores_a_tiny_prompt_like_a_full_forward_pass(smollm2):
    import torch

    message = "Apple beat earnings and the stock rose 5%. Is the outlook Optimistic or Pessimistic?"
    scores = smollm2.score(message, ["Optimistic", "Pessimistic"])
    assert all(np.isfinite(scores)) and all(s < 0 for s in scores)
    prompt_ids, continuation_ids = smollm2.token_ids(message, ["Optimistic", "Pessimistic"])
    with torch.no_grad():
        for score, ids in zip(scores, continuation_ids):
            logits = smollm2._model(torch.tensor([prompt_ids + ids])).logits[0]
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            hand = sum(float(log_probs[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(ids))
            assert score == pytest.approx(hand, abs=1e-3)
    assert smollm2.generate("Say one word about Apple stock.", 8)
