"""`Middleware`: promptfold as a library. The same pipeline the proxy runs, called from Python.

from middleware import Middleware

mw = Middleware()                                   # embedded SmolLM2 on the CPU
reply = mw.chat("What is 2+2?", temperature=0)
print(reply.text, reply.usage.prompt_tokens)

mw = Middleware("sglang://127.0.0.1:30000", compress={"rate": 0.5})
reply = mw.chat(messages, organize="auto")          # per-call options override the defaults
result = mw.compress(long_text, rate=0.4)            # compression alone: result.text, result.ratio
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backend import Backend, Generation, SamplingParams, Usage, open_backend

from ..config import Settings
from ..options import bypassed, merge, request_options
from ..pipeline import Completion, Request
from ..report import RequestReport
from ..user_errors import InvalidRequest
from .loop import LoopThread

if TYPE_CHECKING:
    from ..compress.result import CompressionResult
    from ..stages import Assembly

Messages = str | Sequence[dict[str, Any]]


@dataclass
class ChatResult:
    """An answer: `text` (the first choice), all `choices`, token `usage` and promptfold's `report`."""

    text: str
    choices: list[str]
    finish_reason: str
    usage: Usage
    report: RequestReport

    @classmethod
    def of(cls, completion: Completion) -> ChatResult:
        first: Generation = completion.choices[0]
        report = completion.report
        usage = Usage(report.prompt_tokens, report.completion_tokens, report.cached_tokens)
        return cls(first.text, [c.text for c in completion.choices], first.finish_reason, usage, report)


class Middleware:
    """promptfold in-process. `backend` is a spec (see `backend.open_backend`) or a Backend instance.

    Keyword defaults (`compress=`, `retrieval=`, `organize=`, `gist=`) apply to every call unless the
    call sets its own; they use the same shapes as the proxy's `promptfold` request field.
    """

    def __init__(
        self,
        backend: str | Backend = "local",
        *,
        settings: Settings | None = None,
        compress: dict[str, Any] | bool | None = None,
        retrieval: dict[str, Any] | None = None,
        organize: str | dict[str, Any] | None = None,
        gist: dict[str, Any] | bool | None = None,
        **backend_options: Any,
    ) -> None:
        own = {"compress": compress, "retrieval": retrieval, "organize": organize, "gist": gist}
        spec = backend if isinstance(backend, str) else "local"
        self.settings = settings or Settings(backend=spec)
        self.settings.stage_defaults = merge(self.settings.stage_defaults, own)
        request_options(None, self.settings.stage_defaults)  # a bad default fails here, not on first use
        self._loop = LoopThread()
        self._owns_backend = isinstance(backend, str)
        if isinstance(backend, str):
            options = {**self.settings.backend_options(), **backend_options}
            self.backend: Backend = open_backend(
                backend, **{k: v for k, v in options.items() if v is not None}
            )
        else:
            self.backend = backend
        parts = self._loop.run(self._build())
        self.pipeline, self.compression = parts.pipeline, parts.compression

    async def _build(self) -> Assembly:
        from ..stages import assemble

        await self.backend.health()  # remote backends learn their model name and limits
        return assemble(self.backend, self.settings)

    # --- chat -------------------------------------------------------------------------------------

    def chat(self, messages: Messages, **options: Any) -> ChatResult:
        """Answer `messages` (a string is one user message). Options: compress, retrieval, organize,
        gist, bypass, and sampling (temperature, top_p, max_tokens, stop, seed, n, extra fields)."""
        return ChatResult.of(self._loop.run(self.pipeline.complete(self.request(messages, **options))))

    async def achat(self, messages: Messages, **options: Any) -> ChatResult:
        """`chat` for async code (the work runs on the SDK's own loop thread)."""
        request = self.request(messages, **options)
        return ChatResult.of(await self._loop.run_async(self.pipeline.complete(request)))

    def stream(self, messages: Messages, **options: Any) -> Iterator[str]:
        """The answer's text piece by piece; the report is complete once the iterator ends."""
        request = self.request(messages, **options)
        prepared = self._loop.run(self.pipeline.stream(request))
        self.last_report = prepared.report
        for chunk in self._loop.iterate(prepared.chunks):
            if chunk.text:
                yield chunk.text

    async def astream(self, messages: Messages, **options: Any) -> AsyncIterator[str]:
        request = self.request(messages, **options)
        prepared = await self._loop.run_async(self.pipeline.stream(request))
        self.last_report = prepared.report
        async for chunk in self._loop.iterate_async(prepared.chunks):
            if chunk.text:
                yield chunk.text

    def request(
        self,
        messages: Messages,
        *,
        compress: dict[str, Any] | bool | None = None,
        retrieval: dict[str, Any] | None = None,
        organize: str | dict[str, Any] | None = None,
        gist: dict[str, Any] | bool | None = None,
        bypass: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        seed: int | None = None,
        n: int = 1,
        **extra: Any,
    ) -> Request:
        """The pipeline request `chat` would run (useful to inspect or to batch)."""
        chat = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
        if not chat:
            raise InvalidRequest("messages must not be empty", param="messages")
        own = {"compress": compress, "retrieval": retrieval, "organize": organize, "gist": gist}
        options = bypassed() if bypass else request_options(own, self.settings.stage_defaults, where=None)
        sampling = SamplingParams(
            temperature=temperature,
            top_p=top_p,
            max_tokens=self.settings.default_max_tokens if max_tokens is None else max_tokens,
            stop=[stop] if isinstance(stop, str) else list(stop or []),
            seed=seed,
            extra=extra,
        )
        return Request(sampling=sampling, messages=chat, n=n, options=options)

    # --- compression alone (no model call) --------------------------------------------------------

    def compress(self, prompt: Messages, **options: Any) -> CompressionResult:
        """Compress a text or chat messages the way the pipeline would, without calling the model.

        `options` are the `compress` fields (rate, target_tokens, question, mode, scorer, ...) over the
        instance's `compress=` defaults; a bad value raises ValueError naming it::

            result = mw.compress(long_text, rate=0.4)
            print(result.text, result.original_tokens, "->", result.compressed_tokens)
            result = mw.compress(messages, rate=0.3, question="Who founded it?")  # result.messages
        """
        return self._loop.run(self._compress(prompt, options))

    async def acompress(self, prompt: Messages, **options: Any) -> CompressionResult:
        """`compress` for async code."""
        return await self._loop.run_async(self._compress(prompt, options))

    async def _compress(self, prompt: Messages, options: dict[str, Any]) -> CompressionResult:
        parsed = request_options({"compress": options}, self.settings.stage_defaults, where=None).compress
        if parsed is None:
            raise InvalidRequest("compression is turned off (enabled=false)", param="compress.enabled")
        if isinstance(prompt, str):
            return await self.compression.compress(parsed, text=prompt)
        return await self.compression.compress(parsed, messages=list(prompt))

    # --- wrapping an OpenAI client -----------------------------------------------------------------

    def wrap(self, client: Any) -> Any:
        """A client like `client` whose `chat.completions.create` runs promptfold's pipeline in front of
        the server `client` points at (same base_url and key), streaming included. Everything else
        (`models`, `embeddings`, ...) goes to `client` unchanged. Sync and async clients both work."""
        from .wrap import wrap_openai_client

        return wrap_openai_client(client, self)

    # --- lifecycle ---------------------------------------------------------------------------------

    def run(self, work: Any) -> Any:
        """Run a coroutine on the SDK's loop (for code that builds its own pipeline calls)."""
        return self._loop.run(work)

    def close(self) -> None:
        if self._owns_backend:
            self._loop.run(self.backend.close())
        self._loop.close()

    def __enter__(self) -> Middleware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
