"""An OpenAI-compatible HTTP endpoint (llama.cpp server, vLLM, Ollama, ...) as a router backend.

Two modes (option ``api``):

* ``completions`` (``POST {base_url}/completions``): the exact score. The request sends prompt +
  continuation with ``echo: true, logprobs: 0, max_tokens: 1`` and sums the returned
  ``token_logprobs`` of the tokens whose ``text_offset`` falls inside the continuation. Needs a
  server that echoes prompt log-probabilities (vLLM, OpenAI's legacy API). The prompt is
  :func:`~rlexec.llmoe.routers.backends.raw_prompt`; the server applies no chat template.
* ``chat`` (``POST {base_url}/chat/completions``): the message goes as a user turn (the server
  applies the model's chat template), one token is generated with ``logprobs: true,
  top_logprobs: N``, and a continuation scores the log-sum-exp of the top tokens that are a prefix
  of it (case-insensitive, spaces stripped). This is the first token's probability only, and a label
  whose first token is not among the top N gets the smallest returned log-probability (an upper
  bound). Works wherever the server returns ``top_logprobs`` for generated tokens.

``base_url`` ends with ``/v1`` (e.g. ``http://127.0.0.1:8080/v1``). An API key, if the server wants
one, is read from the environment variable named by ``api_key_env`` (never from the config file).
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from rlexec.errors import ConfigError
from rlexec.llmoe.routers.backends import RAW_CONTINUATION_PREFIX, raw_prompt

APIS = ("completions", "chat")


class OpenAIEndpointBackend:
    def __init__(self, base_url: str, model: str, api: str = "completions", api_key_env: str | None = None,
                 timeout_s: float = 120.0, top_logprobs: int = 20, name: str | None = None):
        if api not in APIS:
            raise ConfigError(f"routers.llm.backend.api: {api!r} is not one of {APIS}")
        if not str(base_url).startswith(("http://", "https://")):
            raise ConfigError(f"routers.llm.backend.base_url: {base_url!r} is not an http(s) URL")
        self.base_url, self.model, self.api = str(base_url).rstrip("/"), model, api
        self.api_key_env, self.timeout_s, self.top_logprobs = api_key_env, float(timeout_s), int(top_logprobs)
        self.name = name or f"{model}@{self.base_url}"

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{route}"
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ConfigError(f"routers.llm.backend.api_key_env: environment variable {self.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
            raise ConfigError(f"routers.llm.backend.base_url: {url} answered HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ConfigError(f"routers.llm.backend.base_url: cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise ConfigError(f"routers.llm.backend.base_url: {url} did not answer JSON: {payload[:200]!r}") from None

    @staticmethod
    def _field(response: dict[str, Any], url: str, *path: Any) -> Any:
        node: Any = response
        for key in path:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path)
                raise ConfigError(f"routers.llm.backend: the answer of {url} has no {where} "
                                  f"(does the server return log-probabilities for this api?)") from None
        return node

    # ------------------------------------------------------------------ scoring
    def score(self, message: str, continuations: Sequence[str]) -> list[float]:
        return ([self._score_completion(message, c) for c in continuations] if self.api == "completions"
                else self._score_chat(message, continuations))

    def _score_completion(self, message: str, continuation: str) -> float:
        prompt = raw_prompt(message)
        full = prompt + RAW_CONTINUATION_PREFIX + continuation
        response = self._post("completions", {"model": self.model, "prompt": full, "max_tokens": 1, "temperature": 0,
                                              "echo": True, "logprobs": 0})
        url = f"{self.base_url}/completions"
        logprobs = self._field(response, url, "choices", 0, "logprobs")
        offsets = self._field(logprobs, url, "text_offset")
        values = self._field(logprobs, url, "token_logprobs")
        if len(offsets) != len(values):
            raise ConfigError(f"routers.llm.backend: {url} gave {len(offsets)} offsets for {len(values)} log-probabilities")
        picked = [v for offset, v in zip(offsets, values) if len(prompt) <= offset < len(full)]
        if not picked or any(v is None for v in picked):
            raise ConfigError(f"routers.llm.backend: {url} echoed no log-probabilities for the continuation "
                              f"{continuation!r} (the server must support echo with logprobs; else use api: chat)")
        return float(sum(picked))

    def _score_chat(self, message: str, continuations: Sequence[str]) -> list[float]:
        response = self._post("chat/completions", {
            "model": self.model, "messages": [{"role": "user", "content": message}], "max_tokens": 1,
            "temperature": 0, "logprobs": True, "top_logprobs": self.top_logprobs})
        url = f"{self.base_url}/chat/completions"
        top = self._field(response, url, "choices", 0, "logprobs", "content", 0, "top_logprobs")
        candidates = [(str(entry["token"]).strip().lower(), float(entry["logprob"])) for entry in top
                      if isinstance(entry, dict) and "token" in entry and "logprob" in entry]
        if not candidates:
            raise ConfigError(f"routers.llm.backend: {url} returned an empty top_logprobs list")
        floor = min(lp for _, lp in candidates)
        scores = []
        for continuation in continuations:
            target = continuation.strip().lower()
            matching = [lp for token, lp in candidates if token and target.startswith(token)]
            scores.append(_logsumexp(matching) if matching else floor)
        return scores

    # ------------------------------------------------------------------ generation
    def generate(self, message: str, max_new_tokens: int) -> str:
        if self.api == "completions":
            response = self._post("completions", {"model": self.model, "prompt": raw_prompt(message),
                                                  "max_tokens": int(max_new_tokens), "temperature": 0})
            return str(self._field(response, f"{self.base_url}/completions", "choices", 0, "text")).strip()
        response = self._post("chat/completions", {"model": self.model, "max_tokens": int(max_new_tokens),
                                                    "temperature": 0,
                                                    "messages": [{"role": "user", "content": message}]})
        return str(self._field(response, f"{self.base_url}/chat/completions",
                               "choices", 0, "message", "content")).strip()


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
