"""The embedded engine: a real transformers model in-process (SmolLM2 on the CPU by default).

Prompts from one `generate` call are prefilled together (a prefix they share is computed once and the
others report it as cached, like SGLang's `cached_tokens`), then decoded with one forward per step for
the whole batch. Calls from concurrent clients join the running batch between steps.

Every SamplingParams field is honoured (penalties, logit_bias, top-k, min-p, min_tokens,
stop_token_ids, ignore_eos, per-token logprobs, constraints); values are checked before anything
reaches the engine. With a `seed`, the i-th copy of the same prompt in one call samples with seed + i
(as vLLM does for n > 1), so n choices differ yet repeat run to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np

from .base import (
    BackendError,
    Capabilities,
    ChatMessage,
    Generation,
    Health,
    Prompt,
    SamplingParams,
    StreamChunk,
    TokenLogprob,
    UnsupportedRequest,
    UserError,
)
from .engine.requests import EngineRequest
from .errors import InvalidRequest, MissingDependency
from .sampling_params import CLIENT_FIELDS, lift_openai_fields, per_copy_seeds
from .tokenizer import HFTokenizer
from .weights import ModelWeights

# OpenAI / vLLM fields the local engine honours when they arrive in `extra` (they are lifted into the
# typed SamplingParams fields); any other field in `extra` is reported as ignored.
HONOURED_FIELDS: frozenset[str] = frozenset(
    {
        "top_k",
        "min_p",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "logit_bias",
        "min_tokens",
        "stop_token_ids",
        "ignore_eos",
        "logprobs",
        "top_logprobs",
        "response_format",
        "guided_json",
        "guided_regex",
        "guided_choice",
        "guided_grammar",
    }
)


class LocalBackend:
    """In-process backend. `model` is None (the packaged SmolLM2), an alias or a local HF folder."""

    name = "local"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        max_rows: int = 32,
        prefix_cache_mb: int = 512,
    ) -> None:
        from .engine.model import load_causal_lm
        from .engine.scheduler import Engine
        from .models import resolve_causal_lm

        ref = resolve_causal_lm(model)
        self.model_id = ref.model_id
        self.loaded = load_causal_lm(str(ref.path), device, dtype)
        self.engine = Engine(self.loaded, max_rows=max_rows, prefix_cache_bytes=prefix_cache_mb * 2**20)
        self.engine.start()
        tokenizer = self.loaded.tokenizer
        self._tokenizer = HFTokenizer(tokenizer, self.model_id)
        self._grammars: Any = None  # a GrammarCompiler, made on the first constrained request
        self.capabilities = Capabilities(
            batch=True,
            prefix_cache=True,
            prompt_logprobs=True,
            input_embeds=True,
            token_ids=True,
            chat_template=bool(getattr(tokenizer, "chat_template", None)),
            streaming=True,
            seeded_sampling=True,
            logprobs=True,
            constrained_decoding=importlib.util.find_spec("llguidance") is not None,
            sampling_penalties=True,
            max_context_tokens=self.loaded.max_positions,
        )

    # --- the seam ---------------------------------------------------------------------------------

    async def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams,
        *,
        prompt_logprobs: bool = False,
        logprob_start: int = 0,
    ) -> list[Generation]:
        sampling = self._checked(sampling)
        loop = asyncio.get_running_loop()
        sinks = [_FutureSink(loop) for _ in prompts]
        per_prompt = per_copy_seeds(prompts, sampling)
        # Rendering the chat template and tokenizing a long prompt take milliseconds: off the event loop.
        group = await asyncio.to_thread(
            lambda: [
                self._request(p, s, sink, prompt_logprobs, logprob_start)
                for p, s, sink in zip(prompts, per_prompt, sinks, strict=True)
            ]
        )
        await self._attach_grammars(group)
        self._ensure_running()
        self.engine.submit(group)
        try:
            results = await asyncio.gather(*(sink.future for sink in sinks))
        except asyncio.CancelledError:
            for request in group:
                request.cancelled = True
            raise
        notes = _ignored_fields(sampling)
        for result in results:
            result.notes.extend(notes)
        return list(results)

    async def stream(self, prompt: Prompt, sampling: SamplingParams) -> AsyncIterator[StreamChunk]:
        sampling = self._checked(sampling)
        loop = asyncio.get_running_loop()
        sink = _QueueSink(loop)
        request = await asyncio.to_thread(self._request, prompt, sampling, sink, False, 0)
        await self._attach_grammars([request])
        self._ensure_running()
        self.engine.submit([request])
        try:
            while True:
                kind, payload = await sink.queue.get()
                if kind == "delta":
                    text, ids, logprobs = payload
                    yield StreamChunk(text=text, token_ids=ids, logprobs=logprobs)
                elif kind == "done":
                    yield StreamChunk(text="", finish_reason=payload.finish_reason, usage=payload.usage)
                    return
                else:
                    raise _as_backend_error(payload)
        finally:
            request.cancelled = True  # a no-op once done; stops decoding if the consumer went away

    async def warm_prefix(self, prefix: Prompt) -> int:
        tokens = self._token_ids(prefix)
        await asyncio.to_thread(self.engine.warm, tokens)
        return len(tokens) if len(tokens) >= self.engine.prefix_cache.min_tokens else 0

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        if not self.capabilities.chat_template:
            raise UnsupportedRequest(f"the model {self.model_id} has no chat template")
        return self._tokenizer.render_chat(messages, add_generation_prompt=add_generation_prompt)

    def tokenize(self, text: str) -> list[int]:
        return self._tokenizer.encode(text)

    def tokenizer(self) -> HFTokenizer:
        return self._tokenizer

    async def model_weights(self) -> ModelWeights:
        return ModelWeights(self.loaded.path, self.loaded)

    async def health(self) -> Health:
        ok = self.engine.alive
        return Health(ok, self.name, self.model_id, "" if ok else "the engine thread has stopped")

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.stop)

    # --- helpers ----------------------------------------------------------------------------------

    def _checked(self, sampling: SamplingParams) -> SamplingParams:
        """`sampling` with OpenAI names lifted out of `extra`, validated, with token ids checked against
        this model's vocabulary (InvalidRequest names the field)."""
        sampling = lift_openai_fields(sampling)
        sampling.validate()
        vocab = self.loaded.vocab_size
        if any(t >= vocab for t in sampling.logit_bias):
            raise InvalidRequest(f"logit_bias token ids must lie in [0, {vocab})", param="logit_bias")
        if any(t >= vocab for t in sampling.stop_token_ids):
            raise InvalidRequest(f"stop_token_ids must lie in [0, {vocab})", param="stop_token_ids")
        if sampling.constraint is not None and not self.capabilities.constrained_decoding:
            raise MissingDependency(
                "constrained decoding needs the llguidance package (pip install llguidance)"
            )
        return sampling

    async def _attach_grammars(self, group: list[EngineRequest]) -> None:
        """Give each constrained request its own matcher, compiled (and cached) in a worker thread."""
        constrained = [r for r in group if r.sampling.constraint is not None]
        if not constrained:
            return
        if self._grammars is None:
            from .engine.grammar import GrammarCompiler

            self._grammars = GrammarCompiler(
                self.loaded.tokenizer, self.loaded.vocab_size, self.loaded.stop_token_ids
            )
        for request in constrained:
            request.grammar = await asyncio.to_thread(self._grammars.matcher, request.sampling.constraint)

    def _ensure_running(self) -> None:
        if not self.engine.alive:
            raise BackendError("the local engine thread has stopped", status=503, backend=self.name)

    def _token_ids(self, prompt: Prompt) -> np.ndarray:
        tokenizer = self.loaded.tokenizer
        if prompt.token_ids is not None:
            ids = prompt.token_ids
            vocab = len(tokenizer)
            if any(t < 0 or t >= vocab for t in ids):
                raise UnsupportedRequest(f"token ids must lie in [0, {vocab})")
        elif prompt.messages is not None:
            ids = self.tokenize(self.apply_chat_template(prompt.messages))
        elif prompt.text is not None:
            ids = list(tokenizer(prompt.text)["input_ids"])  # special tokens as the model expects (BOS)
        else:
            raise UnsupportedRequest("embeddings have no token ids")
        return np.asarray(ids, dtype=np.int64)

    def _request(
        self, prompt: Prompt, sampling: SamplingParams, sink: Any, prompt_logprobs: bool, logprob_start: int
    ) -> EngineRequest:
        if prompt.embeds is not None:
            embeds = _as_tensor(prompt.embeds)
            if embeds.ndim != 2 or embeds.shape[1] != self.loaded.hidden_size:
                raise UnsupportedRequest(
                    f"input embeddings must have shape [tokens, {self.loaded.hidden_size}], "
                    f"got {list(embeds.shape)}"
                )
            request = EngineRequest(sampling, sink, embeds=embeds)
        else:
            request = EngineRequest(
                sampling,
                sink,
                token_ids=self._token_ids(prompt),
                prompt_logprobs=prompt_logprobs,
                logprob_start=logprob_start,
            )
        if request.prompt_len == 0:
            raise UnsupportedRequest("the prompt is empty")
        if request.prompt_len >= self.loaded.max_positions:
            raise UnsupportedRequest(
                f"the prompt has {request.prompt_len} tokens; {self.model_id} reads at most "
                f"{self.loaded.max_positions - 1}"
            )
        return request


def _ignored_fields(sampling: SamplingParams) -> list[str]:
    ignored = sorted(k for k in sampling.extra if k not in HONOURED_FIELDS | CLIENT_FIELDS)
    return [f"the local engine ignored: {', '.join(ignored)}"] if ignored else []


def _as_tensor(embeds: Any) -> Any:
    import torch

    if isinstance(embeds, torch.Tensor):
        return embeds.detach()
    return torch.as_tensor(np.asarray(embeds, dtype=np.float32))


def _as_backend_error(error: BaseException) -> BaseException:
    if isinstance(error, BackendError | UserError):
        return error
    return BackendError(f"local engine error: {type(error).__name__}: {error}", status=502, backend="local")


class _FutureSink:
    """Resolves an asyncio future with the final Generation (thread-safe)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Generation] = loop.create_future()

    def on_delta(self, text: str, token_ids: list[int], logprobs: list[TokenLogprob] | None = None) -> None:
        pass

    def on_done(self, result: Generation) -> None:
        _deliver(self.loop, _settle, self.future, result, None)

    def on_error(self, error: BaseException) -> None:
        _deliver(self.loop, _settle, self.future, None, _as_backend_error(error))


def _settle(
    future: asyncio.Future[Generation], result: Generation | None, error: BaseException | None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)


class _QueueSink:
    """Feeds deltas and the end of one generation into an asyncio queue (thread-safe)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on_delta(self, text: str, token_ids: list[int], logprobs: list[TokenLogprob] | None = None) -> None:
        _deliver(self.loop, self.queue.put_nowait, ("delta", (text, token_ids, logprobs)))

    def on_done(self, result: Generation) -> None:
        _deliver(self.loop, self.queue.put_nowait, ("done", result))

    def on_error(self, error: BaseException) -> None:
        _deliver(self.loop, self.queue.put_nowait, ("error", error))


def _deliver(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> None:
    """Hand a result to the caller's event loop from the engine thread. A loop that has closed (its caller
    is gone, e.g. an SDK call's loop) cannot take it: that request's output is dropped, and the engine
    goes on serving the others."""
    with contextlib.suppress(RuntimeError):  # "Event loop is closed"
        loop.call_soon_threadsafe(callback, *args)
