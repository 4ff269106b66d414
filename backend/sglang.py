"""Client of a running SGLang server (start one with `backend.sglang_launcher.launch_sglang`).

Prompts go to SGLang's native `POST /generate` as list batches, one request per prompt kind (`text`,
`input_ids`, `input_embeds`), issued concurrently. A long prefix that all prompts of a batch share is
prefilled first (max_new_tokens 0), so SGLang's radix cache computes it once and the batch reports it
as `cached_tokens`; SGLang's default scheduling would otherwise compute it once per prompt.

Chat messages: with a tokenizer at hand (`tokenizer=`, or the server's own model folder when the proxy
runs on the same machine, as it usually does) they are rendered here with the model's chat template and
sent as `input_ids`, so they batch, score and cache like any other prompt; `capabilities.chat_template`
is then True and `apply_chat_template`/`tokenize` work. Without one, messages still work: they go
through SGLang's `POST /v1/chat/completions`, one request each, rendered by the server; chat_template
is then False and `apply_chat_template`/`tokenize` raise UnsupportedRequest.

SGLang accepts `input_embeds` only when launched with `--disable-radix-cache`, and then caches no
prefix. `connect()` (also run by `health()`) reads the server info once and narrows `capabilities` to
what the server was launched with; before that they are optimistic.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from . import _sglang_wire as wire
from ._remote import (
    CONNECT_TIMEOUT_S,
    error_text,
    gather_all,
    load_tokenizer,
    request_json,
    sse_events,
    timeout,
    transport_error,
)
from ._sglang_server import INFO_TIMEOUT_S, SGLangServerInfo, has_tokenizer, model_path_sync, read_server_info
from .base import (
    BackendError,
    BackendUnavailable,
    Capabilities,
    ChatMessage,
    Generation,
    Health,
    Prompt,
    SamplingParams,
    StreamChunk,
    UnsupportedRequest,
    require,
)
from .openai_compat import OpenAICompatBackend
from .sampling_params import per_copy_seeds
from .tokenizer import HFTokenizer
from .weights import ModelWeights

EMBEDS_HINT = "SGLang accepts input_embeds only when launched with --disable-radix-cache"
_WARMED_KEPT = 64


class SGLangBackend:
    """Backend for one SGLang server at `base_url` (http://HOST:PORT). Timeouts are in seconds: `timeout_s`
    the longest silence from the server while it answers, `connect_timeout_s` to open a connection."""

    name = "sglang"

    def __init__(
        self,
        base_url: str,
        *,
        model_id: str | None = None,
        tokenizer: str | None = None,
        timeout_s: float = 600,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._model_id = model_id
        self._tokenizer_path = tokenizer
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()  # the sync methods may run in worker threads
        self._server_folder: str | None = None  # the server's model folder here; "" once found unusable
        self._info: SGLangServerInfo | None = None
        self._info_lock = asyncio.Lock()
        # Prefixes warm_prefix() prefilled lately ((field, prefix) -> None, oldest first): a batch whose
        # shared prefix one of them covers needs no warm-up round trip of its own.
        self._warmed: OrderedDict[tuple[str, Any], None] = OrderedDict()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout(timeout_s, connect_timeout_s))
        # SGLang's own OpenAI route, for messages nobody here can render; it shares our client and key.
        self._chat_route = OpenAICompatBackend(
            self.base_url + "/v1", model_id="default", timeout_s=timeout_s, client=self._client
        )
        self._chat_route.name = self.name
        self.capabilities = Capabilities(
            batch=True,
            prefix_cache=True,
            prompt_logprobs=True,
            input_embeds=True,
            token_ids=True,
            chat_template=tokenizer is not None,
            streaming=True,
            logprobs=True,
            constrained_decoding=True,  # SGLang's grammar backend (xgrammar by default: `grammar` is EBNF)
            sampling_penalties=True,
        )

    @property
    def model_id(self) -> str:
        """The given id, else the server's model folder name (known after `connect()`), else "default"."""
        if self._model_id:
            return self._model_id
        if self._info and self._info.model_path:
            return Path(self._info.model_path.rstrip("/")).name
        return "default"

    async def connect(self) -> SGLangServerInfo:
        """Read the server info once (model path, context length, cache mode) and narrow `capabilities`."""
        if self._info is None:
            async with self._info_lock:
                if self._info is None:
                    info = await read_server_info(self._client, self.base_url)
                    self._info = info
                    self.capabilities = replace(
                        self.capabilities,
                        max_context_tokens=info.context_len,
                        prefix_cache=info.radix_cache is not False,
                        input_embeds=info.radix_cache is not True,
                        seeded_sampling=info.deterministic,
                        chat_template=self._tokenizer_path is not None or has_tokenizer(info.model_path),
                    )
        return self._info

    # --- the seam ---------------------------------------------------------------------------------

    async def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams,
        *,
        prompt_logprobs: bool = False,
        logprob_start: int = 0,
    ) -> list[Generation]:
        """One /generate list batch per prompt kind, all in flight together; results in input order."""
        if logprob_start < 0:
            raise UnsupportedRequest("logprob_start must be >= 0")
        tokenizer = await self._chat_tokenizer() if any(p.messages is not None for p in prompts) else None
        groups: dict[str, list[int]] = {}
        inputs = []
        for i, (field, value) in enumerate(await _native_inputs(prompts, tokenizer)):
            groups.setdefault(field, []).append(i)
            inputs.append(value)
        if prompt_logprobs and ("chat" in groups or "input_embeds" in groups):
            raise UnsupportedRequest(
                "prompt logprobs need token ids: pass tokenizer= for chat messages; embeddings have none"
            )
        start = logprob_start if prompt_logprobs else None
        per_prompt = per_copy_seeds(prompts, sampling)  # with a seed, copy i of a prompt gets seed + i
        jobs = [
            self._via_chat_route([prompts[i] for i in idx], sampling)
            if field == "chat"
            else self._generate_batch(field, [inputs[i] for i in idx], [per_prompt[i] for i in idx], start)
            for field, idx in groups.items()
        ]
        results: list[Generation | None] = [None] * len(prompts)
        for idx, generations in zip(groups.values(), await gather_all(*jobs), strict=True):
            for i, generation in zip(idx, generations, strict=True):
                results[i] = generation
        return [g for g in results if g is not None]

    async def stream(self, prompt: Prompt, sampling: SamplingParams) -> AsyncIterator[StreamChunk]:
        """Streams /generate, turning SGLang's chunks (cumulative by default) into deltas."""
        tokenizer = await self._chat_tokenizer() if prompt.messages is not None else None
        [(field, value)] = await _native_inputs([prompt], tokenizer)
        if field == "chat":
            async for chunk in self._chat_route.stream(prompt, sampling):
                yield chunk
            return
        body = {field: value, "sampling_params": wire.sglang_sampling(sampling), "stream": True}
        asked = wire.logprob_fields(sampling)
        body.update(asked)
        deltas, finished = wire.StreamDeltas(), False
        meta: dict[str, Any] = {}
        url = self.base_url + "/generate"
        try:
            async for event in sse_events(
                self._client, url, body, backend=self.name, timeout_s=self.timeout_s
            ):
                meta = event.get("meta_info") or meta
                text, ids = deltas.step(
                    event.get("text"), event.get("output_ids"), meta.get("completion_tokens")
                )
                logprobs = deltas.new_logprobs(wire.output_logprobs(meta) if asked else None)
                if text or ids or logprobs:
                    yield StreamChunk(text=text, token_ids=ids, logprobs=logprobs)
                finished = finished or meta.get("finish_reason") is not None
        except (BackendError, UnsupportedRequest) as exc:
            hinted = self._embeds_hint(exc) if field == "input_embeds" else None
            if hinted is None:
                raise
            raise hinted from exc
        if not finished:
            raise BackendError(f"SGLang at {url} ended the stream before the generation finished")
        usage = wire.usage_of(meta)
        finish = wire.finish_reason_of(meta.get("finish_reason"), usage, sampling.max_tokens)
        yield StreamChunk(text="", finish_reason=finish, usage=usage)

    async def warm_prefix(self, prefix: Prompt) -> int:
        """Prefill `prefix` (max_new_tokens 0) so SGLang's radix cache keeps it; returns its token count."""
        require(self.capabilities, "prefix_cache", self.name)
        if prefix.embeds is not None:
            raise UnsupportedRequest(f"a prefix given as embeddings cannot be cached: {EMBEDS_HINT}")
        if prefix.messages is not None and await self._chat_tokenizer() is None:
            raise UnsupportedRequest("warming a chat prefix needs a tokenizer to render it: pass tokenizer=")
        [warm] = await self.generate([prefix], SamplingParams(temperature=0.0, max_tokens=0))
        if prefix.token_ids is not None or prefix.text is not None:
            key = (
                ("input_ids", tuple(prefix.token_ids))
                if prefix.token_ids is not None
                else ("text", prefix.text)
            )
            self._warmed[key] = None
            self._warmed.move_to_end(key)
            while len(self._warmed) > _WARMED_KEPT:
                self._warmed.popitem(last=False)
        return warm.usage.prompt_tokens

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        tokenizer = self._require_tokenizer("render the chat template")
        rendered = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=add_generation_prompt, tokenize=False
        )
        return str(rendered)

    def tokenizer(self) -> HFTokenizer | None:
        found = self._tokenizer_or_none()
        return HFTokenizer(found, self.model_id) if found is not None else None

    async def model_weights(self) -> ModelWeights | None:
        """The server's model folder when it is on this machine with safetensors weights."""
        info = await self.connect()
        folder = Path(info.model_path) if info.model_path else None
        if folder is None or not any(folder.glob("*.safetensors")):
            return None
        return ModelWeights(folder)

    def tokenize(self, text: str) -> list[int]:
        tokenizer = self._require_tokenizer("count tokens")
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    async def health(self) -> Health:
        """GET /health (200 = ready), then the server info for the model name; never raises."""
        url = self.base_url + "/health"
        try:
            response = await self._client.get(url, timeout=timeout(min(self.timeout_s, INFO_TIMEOUT_S)))
        except httpx.HTTPError as exc:
            error = transport_error(exc, url, self.name, INFO_TIMEOUT_S)
            return Health(False, self.name, self.model_id, str(error))
        if response.status_code != 200:
            detail = f"SGLang at {url} answered HTTP {response.status_code}: {error_text(response)}"
            return Health(False, self.name, self.model_id, detail)
        try:
            await self.connect()
        except (BackendError, UnsupportedRequest) as exc:
            return Health(True, self.name, self.model_id, f"ready, but its server info is unreadable: {exc}")
        return Health(True, self.name, self.model_id)

    async def flush_cache(self) -> None:
        """Empty SGLang's radix cache (not part of the seam). SGLang refuses while requests are running."""
        url = self.base_url + "/flush_cache"
        try:
            response = await self._client.post(url, timeout=timeout(INFO_TIMEOUT_S))
        except httpx.HTTPError as exc:
            raise transport_error(exc, url, self.name, INFO_TIMEOUT_S) from exc
        if response.status_code != 200:
            status, words = response.status_code, error_text(response)
            raise BackendError(f"SGLang at {url} did not flush its cache (HTTP {status}): {words}")

    async def close(self) -> None:
        await self._client.aclose()

    # --- helpers ----------------------------------------------------------------------------------

    async def _generate_batch(
        self, field: str, inputs: list[Any], samplings: list[SamplingParams], logprob_start: int | None
    ) -> list[Generation]:
        sampling = samplings[0]
        params = [wire.sglang_sampling(s) for s in samplings]
        # one sampling_params for all, or one per prompt where they differ (the seeds of n copies)
        body: dict[str, Any] = {
            field: inputs,
            "sampling_params": params[0] if all(p == params[0] for p in params) else params,
        }
        body.update(wire.logprob_fields(sampling))
        if logprob_start is not None:
            # SGLang leaves out the token at logprob_start_len itself (it pads a None only at 0): ask
            # from one earlier; align_prompt_logprobs blanks what lies before logprob_start.
            body.update(return_logprob=True, logprob_start_len=max(logprob_start - 1, 0))
            if field == "text":
                body["return_prompt_token_ids"] = True  # SGLang >= 0.5.13; older ones ignore it
        else:
            # Radix matching stops where logprobs start, so a warm-up only pays off without them.
            shared = wire.shared_prefix(field, inputs) if self.capabilities.prefix_cache else None
            if shared is not None and not self._recently_warmed(field, shared):
                await self._post_generate(field, {field: shared, "sampling_params": {"max_new_tokens": 0}})
        started = time.perf_counter()
        outputs = await self._post_generate(field, body)
        latency_s = time.perf_counter() - started
        if not isinstance(outputs, list) or len(outputs) != len(inputs):
            raise BackendError(f"SGLang answered a batch of {len(inputs)} prompts with something else")
        known_ids = inputs if field == "input_ids" else [None] * len(inputs)
        return [
            wire.generation_of(
                out,
                ids,
                sampling.max_tokens,
                logprob_start,
                latency_s,
                with_logprobs="return_logprob" in body,
            )
            for out, ids in zip(outputs, known_ids, strict=True)
        ]

    def _recently_warmed(self, field: str, shared: Any) -> bool:
        """Whether warm_prefix() lately prefilled most (>= 90%) of `shared` (a batch's common prefix)."""
        for kind, warmed in reversed(self._warmed):
            if (
                kind == field
                and len(warmed) >= 0.9 * len(shared)
                and tuple(shared[: len(warmed)]) == tuple(warmed)
            ):
                return True
        return False

    async def _post_generate(self, field: str, body: dict[str, Any]) -> Any:
        url = self.base_url + "/generate"
        try:
            return await request_json(
                self._client, "POST", url, backend=self.name, timeout_s=self.timeout_s, body=body
            )
        except (BackendError, UnsupportedRequest) as exc:
            hinted = self._embeds_hint(exc) if field == "input_embeds" else None
            if hinted is None:
                raise
            raise hinted from exc

    async def _via_chat_route(self, prompts: list[Prompt], sampling: SamplingParams) -> list[Generation]:
        generations = await self._chat_route.generate(prompts, sampling)
        for generation in generations:
            generation.notes.append("no local tokenizer: rendered by SGLang's /v1/chat/completions")
        return generations

    async def _chat_tokenizer(self) -> Any:
        """The tokenizer that renders messages here, or None (messages then take the chat route)."""
        if self._tokenizer is not None or self._server_folder == "":
            return self._tokenizer
        if self._tokenizer_path is None and self._info is None:
            with contextlib.suppress(BackendError, UnsupportedRequest):
                await self.connect()  # if the server is down, the request itself will say so
        return await asyncio.to_thread(self._tokenizer_or_none)

    def _tokenizer_or_none(self) -> Any:
        with self._tokenizer_lock:
            if self._tokenizer is not None or self._server_folder == "":
                return self._tokenizer
            if self._tokenizer_path is not None:
                self._tokenizer = load_tokenizer(self._tokenizer_path)  # a bad explicit path is an error
                return self._tokenizer
            folder = (
                self._info.model_path if self._info else model_path_sync(self.base_url, self._client.headers)
            )
            if folder is None:
                return None  # the server is unreachable now: look again next time
            self._server_folder = folder if has_tokenizer(folder) else ""
            if self._server_folder:
                try:
                    self._tokenizer = load_tokenizer(self._server_folder)
                except UnsupportedRequest:
                    self._server_folder = ""  # unusable here: messages take the chat route
            return self._tokenizer

    def _embeds_hint(self, exc: BackendError | UnsupportedRequest) -> Exception | None:
        """`exc` with the sentence that usually explains a failed embeddings request, or None where it
        would not help (server unreachable, radix cache known off, or SGLang already said so)."""
        radix_off = self._info is not None and self._info.radix_cache is False
        if isinstance(exc, BackendUnavailable) or radix_off or "radix" in str(exc):
            return None
        if isinstance(exc, UnsupportedRequest):
            return UnsupportedRequest(f"{exc} ({EMBEDS_HINT})")
        return BackendError(f"{exc.message} ({EMBEDS_HINT})", status=exc.status, backend=exc.backend)

    def _require_tokenizer(self, purpose: str) -> Any:
        tokenizer = self._tokenizer_or_none()
        if tokenizer is None:
            raise UnsupportedRequest(
                f"the sglang backend needs a tokenizer to {purpose}: pass tokenizer=/path/to/model "
                "(the server's model folder is not on this machine)"
            )
        return tokenizer


async def _native_inputs(prompts: Sequence[Prompt], tokenizer: Any) -> list[tuple[str, Any]]:
    """The /generate field and value of each prompt. Rendering a chat template and tokenizing an 8k-token
    prompt take milliseconds of CPU: with a tokenizer at hand that runs on a worker thread, so that the
    proxy's event loop keeps serving other requests meanwhile."""
    if tokenizer is None or all(p.messages is None for p in prompts):
        return [wire.native_input(p, tokenizer) for p in prompts]
    return await asyncio.to_thread(lambda: [wire.native_input(p, tokenizer) for p in prompts])
