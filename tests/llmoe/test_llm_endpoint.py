"""The OpenAI-compatible endpoint backend against a local HTTP server (in a thread) answering canned JSON:
what it sends, how it reads log-probabilities and text back, and the errors it gives."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rlexec.errors import ConfigError
from rlexec.llmoe.routers.backends import make_backend, raw_prompt
from rlexec.llmoe.routers.backends.endpoint import OpenAIEndpointBackend


class _Server:
    """Records each request (path, headers, JSON body) and answers with ``self.answer(path, body)``."""

    def __init__(self):
        self.requests: list[tuple[str, dict, dict]] = []
        self.answer = lambda path, body: (404, {})
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, dict(self.headers), body))
                status, payload = server.answer(self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with _Server() as running:
        yield running


def _echo_answer(prompt_len: int, continuation_tokens: list[tuple[str, float]]):
    """An echoed completion: 2 prompt tokens, then the continuation's, then one generated token."""

    def answer(path, body):
        text = body["prompt"]
        tokens = [text[: prompt_len // 2], text[prompt_len // 2: prompt_len]]
        offsets = [0, prompt_len // 2]
        values = [None, -0.7]
        position = prompt_len
        for token, value in continuation_tokens:
            tokens.append(token)
            offsets.append(position)
            values.append(value)
            position += len(token)
        tokens.append(" X")
        offsets.append(len(text))
        values.append(-9.0)  # the generated token (max_tokens 1) is not part of the score
        return 200, {"choices": [{"text": text + " X", "logprobs": {"tokens": tokens, "text_offset": offsets,
                                                                      "token_logprobs": values}}]}

    return answer


def test_completions_mode_sends_echo_and_sums_the_continuation_token_logprobs(server):
    backend = make_backend({"kind": "openai", "base_url": server.url, "model": "m1"})
    prompt = raw_prompt("Outlook?")
    server.answer = _echo_answer(len(prompt), [(" Optim", -0.25), ("istic", -0.5)])
    assert backend.score("Outlook?", ["Optimistic"]) == [pytest.approx(-0.75)]
    path, headers, body = server.requests[-1]
    assert path == "/v1/completions"
    assert body == {"model": "m1", "prompt": prompt + " Optimistic", "max_tokens": 1, "temperature": 0,
                    "echo": True, "logprobs": 0}
    assert "Authorization" not in headers


def test_chat_mode_reads_the_first_token_top_logprobs_by_label_prefix(server, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "secret")
    backend = OpenAIEndpointBackend(server.url, "m2", api="chat", api_key_env="TEST_LLM_KEY", top_logprobs=3)
    server.answer = lambda path, body: (200, {"choices": [{"logprobs": {"content": [{"token": "Opt", "top_logprobs": [
        {"token": "Opt", "logprob": -0.5}, {"token": " opt", "logprob": -2.0}, {"token": "Unc", "logprob": -3.0}]}]}}]})
    optimistic, pessimistic = backend.score("Outlook?", ["Optimistic", "Pessimistic"])
    assert optimistic == pytest.approx(math.log(math.exp(-0.5) + math.exp(-2.0)))  # both spellings of the label
    assert pessimistic == -3.0  # not among the top 3: the smallest returned log-probability
    path, headers, body = server.requests[-1]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer secret"
    assert body["messages"] == [{"role": "user", "content": "Outlook?"}]
    assert body["logprobs"] is True and body["top_logprobs"] == 3 and body["max_tokens"] == 1


def test_generate_reads_the_text_of_either_api(server):
    server.answer = lambda path, body: (200, {"choices": [{"text": " Shares rose. ", "message": {"content": " Up. "}}]})
    assert OpenAIEndpointBackend(server.url, "m").generate("Why?", 16) == "Shares rose."
    assert server.requests[-1][2] == {"model": "m", "prompt": raw_prompt("Why?"), "max_tokens": 16, "temperature": 0}
    assert OpenAIEndpointBackend(server.url, "m", api="chat").generate("Why?", 16) == "Up."
    assert server.requests[-1][0] == "/v1/chat/completions"


def test_errors_name_the_url_and_what_is_missing(server, monkeypatch):
    monkeypatch.delenv("TEST_UNSET_KEY", raising=False)
    backend = OpenAIEndpointBackend(server.url, "m")
    server.answer = lambda path, body: (500, {"error": "model not loaded"})
    with pytest.raises(ConfigError, match=r"/v1/completions answered HTTP 500.*model not loaded"):
        backend.score("x", ["Optimistic"])
    server.answer = lambda path, body: (200, {"choices": [{"text": "ok"}]})
    with pytest.raises(ConfigError, match=r"no choices.\[0\].logprobs"):
        backend.score("x", ["Optimistic"])
    server.answer = lambda path, body: (200, b"<html>")
    with pytest.raises(ConfigError, match="did not answer JSON"):
        backend.generate("x", 4)
    with pytest.raises(ConfigError, match="TEST_UNSET_KEY"):
        OpenAIEndpointBackend(server.url, "m", api_key_env="TEST_UNSET_KEY").generate("x", 4)
    with pytest.raises(ConfigError, match="not an http"):
        OpenAIEndpointBackend("127.0.0.1:8080", "m")


def test_an_unreachable_endpoint_is_a_one_line_error():
    with _Server() as closed:
        url = closed.url
    with pytest.raises(ConfigError, match="cannot reach"):
        OpenAIEndpointBackend(url, "m", timeout_s=5).score("x", ["Optimistic"])
