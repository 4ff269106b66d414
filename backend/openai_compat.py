"""Any OpenAI-compatible server over HTTP (vLLM, `transformers serve`, SGLang's /v1 routes, hosted APIs).

Chat messages go to `POST {base}/chat/completions`; text and token ids to `POST {base}/completions` (the
OpenAI spec allows a list of token ids as the prompt). The OpenAI API takes one prompt per request, so a
batch is sent as concurrent requests: `capabilities.batch` is True only in that sense (the server may or
may not batch them on its side). Prompt logprobs, input embeddings and prefix warming are not part of the
spec, so they raise `UnsupportedRequest`. Tokenizing and rendering the chat template need a local
tokenizer folder (`tokenizer=`), so `capabilities.chat_template` says whether one was given; chat
messages themselves always work, rendered by the server.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import httpx

__all__ = ["OpenAICompatBackend", "openai_sampling", "usage_from_openai"]

from ._openai_wire import StreamReader, generation_of, usage_from_openai
from ._remote import (
    CONNECT_TIMEOUT_S,
    gather_all,
    load_tokenizer,
    request_json,
    sampling_fields,
    sse_events,
    timeout,
    where,
)
from .base import (
    BackendError,
    Capabilities,
    ChatMessage,
    Generation,
    Health,
    Prompt,
    SamplingParams,
    StreamChunk,
    UnsupportedRequest,
)
from .sampling_params import per_copy_seeds
from .tokenizer import HFTokenizer
from .weights import ModelWeights


class OpenAICompatBackend:
    """Client of an OpenAI-compatible server. `base_url` ends where the OpenAI paths start (`.../v1`).

    `model_id` defaults to the first id of `GET {base}/models`, fetched on first use (or by `connect()`).
    `client` lets an owner share its connection pool (and its auth headers); the owner then closes it.
    Timeouts are in seconds: `timeout_s` the longest silence from the server while it answers,
    `connect_timeout_s` to open a connection.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model_id: str | None = None,
        timeout_s: float = 600,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        tokenizer: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._model_id = model_id
        self._tokenizer_path = tokenizer
        self._tokenizer: Any = None
        self._owns_client = client is None
        if client is None:
            key = api_key or os.environ.get("OPENAI_API_KEY")
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            client = httpx.AsyncClient(headers=headers, timeout=timeout(timeout_s, connect_timeout_s))
        self._client = client
        self._models_lock = asyncio.Lock()
        self._connected = False
        self.capabilities = Capabilities(
            batch=True,  # concurrent requests, one per prompt
            prefix_cache=False,  # the server may cache, but cannot be told to; cached_tokens still reported
            prompt_logprobs=False,
            input_embeds=False,
            token_ids=True,
            # apply_chat_template works only with a local tokenizer; messages work either way (server-rendered)
            chat_template=tokenizer is not None,
            streaming=True,
            logprobs=True,
            # sent as response_format and vLLM's guided_* / top_k / min_p / ...: the server decides whether
            # it honours them (vLLM and SGLang do; a hosted API may refuse the vLLM extensions)
            constrained_decoding=True,
            sampling_penalties=True,
            tool_calls=True,  # tools go to the server as sent; its tool calls come back as it parsed them
        )

    @property
    def model_id(self) -> str:
        """The model name sent in every request; "" until resolved from /models (see `connect()`)."""
        return self._model_id or ""

    async def connect(self) -> str:
        """Read GET /models once: the model id (first listed, unless given) and its context length."""
        if not self._connected:
            async with self._models_lock:
                if not self._connected:
                    await self._read_models()
                    self._connected = True
        return self.model_id

    async def _read_models(self) -> None:
        url = f"{self.base_url}/models"
        try:
            listing = await request_json(
                self._client, "GET", url, backend=self.name, timeout_s=min(30, self.timeout_s)
            )
        except (BackendError, UnsupportedRequest):
            if self._model_id is None:
                raise
            return  # the id was given: a server without /models is still usable
        models = listing.get("data") if isinstance(listing, dict) else None
        if not models:
            if self._model_id is None:
                raise BackendError(
                    f"{where(self.name, url)} lists no models; pass model_id=", backend=self.name
                )
            return
        chosen = next((m for m in models if m.get("id") == self._model_id), models[0])
        self._model_id = self._model_id or str(chosen["id"])
        context = chosen.get("max_model_len") or chosen.get("context_length")
        if isinstance(context, int):
            self.capabilities = replace(self.capabilities, max_context_tokens=context)

    # --- the seam ---------------------------------------------------------------------------------

    async def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams,
        *,
        prompt_logprobs: bool = False,
        logprob_start: int = 0,
    ) -> list[Generation]:
        """One request per prompt, all in flight together; results in the order of `prompts`."""
        if prompt_logprobs:
            raise UnsupportedRequest(
                "prompt logprobs are not part of the OpenAI API; this backend cannot score prompts"
            )
        # validates all before sending any; with a seed, the i-th copy of a prompt samples with seed + i
        requests = [
            self._route_and_body(p, s)
            for p, s in zip(prompts, per_copy_seeds(prompts, sampling), strict=True)
        ]
        if not requests:
            return []
        await self.connect()
        return await gather_all(*(self._complete(path, body) for path, body in requests))

    async def stream(self, prompt: Prompt, sampling: SamplingParams) -> AsyncIterator[StreamChunk]:
        """Server-sent events of one request; the last chunk carries finish_reason and usage (zeros if the
        server sent no usage)."""
        path, body = self._route_and_body(prompt, sampling)
        await self.connect()
        body = {**body, "model": self.model_id, "stream": True, "stream_options": {"include_usage": True}}
        reader = StreamReader(path == "/chat/completions", self.name)
        async for event in sse_events(
            self._client, self.base_url + path, body, backend=self.name, timeout_s=self.timeout_s
        ):
            for chunk in reader.read(event):
                yield chunk
        yield reader.last(where(self.name, self.base_url))

    async def warm_prefix(self, prefix: Prompt) -> int:
        raise UnsupportedRequest("an OpenAI-compatible server cannot be told to keep a prefix cached")

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        tokenizer = self._require_tokenizer("render the chat template")
        return str(
            tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=add_generation_prompt, tokenize=False
            )
        )

    def tokenizer(self) -> HFTokenizer | None:
        if not self._tokenizer_path:
            return None
        return HFTokenizer(self._require_tokenizer("count tokens"), self.model_id or self._tokenizer_path)

    async def model_weights(self) -> ModelWeights | None:
        return None  # an OpenAI-compatible server keeps its weights to itself

    def tokenize(self, text: str) -> list[int]:
        tokenizer = self._require_tokenizer("count tokens")
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    async def health(self) -> Health:
        """Healthy when GET /models answers; never raises."""
        try:
            await self.connect()
            await request_json(
                self._client,
                "GET",
                f"{self.base_url}/models",
                backend=self.name,
                timeout_s=min(30, self.timeout_s),
            )
        except (BackendError, UnsupportedRequest) as exc:
            return Health(False, self.name, self.model_id, str(exc))
        return Health(True, self.name, self.model_id)

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # --- helpers ----------------------------------------------------------------------------------

    def _require_tokenizer(self, purpose: str) -> Any:
        if self._tokenizer is None:
            if not self._tokenizer_path:
                raise UnsupportedRequest(
                    f"the {self.name} backend needs a local tokenizer to {purpose}: pass tokenizer=/path/to/model"
                )
            self._tokenizer = load_tokenizer(self._tokenizer_path)
        return self._tokenizer

    def _route_and_body(self, prompt: Prompt, sampling: SamplingParams) -> tuple[str, dict[str, Any]]:
        if prompt.embeds is not None:
            raise UnsupportedRequest("an OpenAI-compatible server takes no input embeddings")
        if prompt.token_ids == []:
            raise UnsupportedRequest("the prompt is empty")
        body = openai_sampling(sampling, chat=prompt.messages is not None)
        if prompt.messages is not None:
            return "/chat/completions", {"messages": prompt.messages, **body}
        return "/completions", {
            "prompt": prompt.text if prompt.text is not None else prompt.token_ids,
            **body,
        }

    async def _complete(self, path: str, body: dict[str, Any]) -> Generation:
        started = time.perf_counter()
        url = self.base_url + path
        data = await request_json(
            self._client,
            "POST",
            url,
            backend=self.name,
            timeout_s=self.timeout_s,
            body={**body, "model": self.model_id},
        )
        return generation_of(
            data, path == "/chat/completions", self.name, where(self.name, url), time.perf_counter() - started
        )


def openai_sampling(sampling: SamplingParams, *, chat: bool = True) -> dict[str, Any]:
    fields = sampling_fields(sampling, max_tokens="max_tokens", seed="seed")
    if not chat and fields.get("logprobs") is True:  # /completions takes the number of alternatives
        fields["logprobs"] = fields.pop("top_logprobs", 0)
    return fields
