"""Tool calling for a backend that renders and decodes but does not parse calls (the embedded engine,
SGLang's native /generate): the tools go into the prompt (render.py), and each call is decoded under a
JSON-schema constraint, so its arguments always parse and validate against the tool's parameters.

One choice runs in up to three kinds of steps, each a backend call on the rendered prompt plus what was
written so far (the embedded engine and SGLang reuse that prefix from their caches):

1. `auto`: free text, streamed, cut where the model opens a `<tool_call>` block (no block: a plain answer).
   `required` and a named function skip it: the answer is calls from the first token.
2. a call: JSON {"name", "arguments"} constrained to the allowed functions' schemas.
3. another call?  A tiny constrained step (`\\n<tool_call>` or the end), unless parallel_tool_calls is false.

Calls stream as OpenAI sends them: a first delta with the id and name, then the arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from backend import (
    Backend,
    Constraint,
    Generation,
    Prompt,
    SamplingParams,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    UnsupportedRequest,
    Usage,
)

from .calls import MORE_CALLS, call_constraint, parse_call
from .render import CALL_CLOSE, CALL_OPEN, prompt_messages, template_messages
from .spec import ToolSpec

MAX_CALLS = 8  # calls in one answer, so that a model repeating itself cannot run on


def check_backend(backend: Backend) -> None:
    """UnsupportedRequest unless `backend` can render a chat, take token ids and constrain decoding."""
    caps = backend.capabilities
    missing = [
        name
        for name, ok in (
            ("a chat template here", caps.chat_template),
            ("token-id prompts", caps.token_ids),
            ("constrained decoding", caps.constrained_decoding),
        )
        if not ok
    ]
    if missing:
        raise UnsupportedRequest(f"tool calling on the {backend.name} backend needs {', '.join(missing)}")


async def stream_choice(
    backend: Backend,
    messages: Sequence[dict[str, Any]],
    spec: ToolSpec,
    sampling: SamplingParams,
    index: int = 0,
) -> AsyncIterator[StreamChunk]:
    """One choice's answer, piece by piece; the last chunk has the finish reason ("tool_calls" when the
    model called) and the usage of every step."""
    base = await asyncio.to_thread(rendered_prompt, backend, messages, spec)
    tally = _Tally()
    before = ""
    if not spec.forced:
        cut = _TextCut()
        ids = await asyncio.to_thread(backend.tokenize, base)
        tally.prompt = len(ids)
        stream = cast(AsyncGenerator[StreamChunk, None], backend.stream(Prompt.from_token_ids(ids), sampling))
        async with contextlib.aclosing(stream):  # leaving early cancels the generation
            async for chunk in stream:
                if chunk.finish_reason is not None:
                    tail = cut.flush()
                    if tail:
                        yield StreamChunk(text=tail, index=index)
                    yield replace(chunk, index=index)
                    return
                tally.completion += len(chunk.token_ids)
                safe, found = cut.feed(chunk.text)
                if safe or chunk.logprobs:
                    yield StreamChunk(
                        text=safe, token_ids=chunk.token_ids, logprobs=chunk.logprobs, index=index
                    )
                if found:
                    break
        before = cut.before + CALL_OPEN + "\n"
    else:
        before = CALL_OPEN + "\n"
    async for piece in _calls(backend, base, before, spec, sampling, tally, index):
        yield piece


def rendered_prompt(backend: Backend, messages: Sequence[dict[str, Any]], spec: ToolSpec) -> str:
    """The prompt up to the assistant's turn: by the model's own template where it has a Hermes-style
    tools section, else in the documented layout of render.py."""
    tokenizer = backend.tokenizer()
    if tokenizer is not None and tokenizer.tool_format == "hermes":
        return tokenizer.render_chat(template_messages(messages), tools=spec.tools)
    return backend.apply_chat_template(prompt_messages(messages, spec))


async def complete_choice(
    backend: Backend, messages: Sequence[dict[str, Any]], spec: ToolSpec, sampling: SamplingParams
) -> Generation:
    """The same answer whole: text before the calls, the calls, finish reason and usage."""
    texts: list[str] = []
    calls: dict[int, ToolCall] = {}
    logprobs = []
    last = StreamChunk(text="")
    async for chunk in stream_choice(backend, messages, spec, sampling):
        texts.append(chunk.text)
        logprobs.extend(chunk.logprobs or [])
        for delta in chunk.tool_calls or []:
            call = calls.setdefault(delta.index, ToolCall(delta.id or "", delta.name or "", ""))
            call.arguments += delta.arguments or ""
        last = chunk
    return Generation(
        text="".join(texts),
        finish_reason=last.finish_reason or "stop",
        usage=last.usage or Usage(),
        logprobs=logprobs if sampling.logprobs else None,
        tool_calls=[calls[i] for i in sorted(calls)] or None,
    )


async def _calls(
    backend: Backend,
    base: str,
    written: str,
    spec: ToolSpec,
    sampling: SamplingParams,
    tally: _Tally,
    index: int,
) -> AsyncIterator[StreamChunk]:
    constraint = call_constraint(spec)
    step = replace(
        sampling, stop=[], stop_token_ids=[], min_tokens=0, ignore_eos=False, logprobs=False, top_logprobs=0
    )
    for number in range(MAX_CALLS):
        budget = sampling.max_tokens - tally.completion
        if budget <= 0:
            break
        call = await _step(
            backend, base + written, replace(step, constraint=constraint, max_tokens=budget), tally
        )
        parsed = parse_call(call.text)
        if parsed is None:  # cut short by max_tokens
            break
        yield StreamChunk(
            text="", index=index, tool_calls=[ToolCallDelta(number, parsed.id, parsed.name, "", "function")]
        )
        yield StreamChunk(
            text="", index=index, tool_calls=[ToolCallDelta(number, arguments=parsed.arguments)]
        )
        written += call.text + "\n" + CALL_CLOSE
        budget = sampling.max_tokens - tally.completion
        if (
            spec.choice not in ("auto", "required")
            or not spec.parallel
            or budget <= 0
            or number + 1 == MAX_CALLS
        ):
            yield _last(tally, "tool_calls", index)
            return
        more = replace(step, constraint=Constraint.regex(MORE_CALLS), max_tokens=min(budget, 8))
        if CALL_OPEN not in (await _step(backend, base + written, more, tally)).text:
            yield _last(tally, "tool_calls", index)
            return
        written += "\n" + CALL_OPEN + "\n"
    yield _last(tally, "length", index)  # max_tokens ran out before a call was complete


async def _step(backend: Backend, text: str, sampling: SamplingParams, tally: _Tally) -> Generation:
    ids = await asyncio.to_thread(backend.tokenize, text)
    [generation] = await backend.generate([Prompt.from_token_ids(ids)], sampling)
    tally.completion += generation.usage.completion_tokens
    if tally.prompt == 0:  # the first step of a forced choice: its prompt is the request's
        tally.prompt, tally.cached = generation.usage.prompt_tokens, generation.usage.cached_tokens
    return generation


def _last(tally: _Tally, reason: Any, index: int) -> StreamChunk:
    return StreamChunk(text="", finish_reason=reason, usage=tally.usage(), index=index)


@dataclass
class _Tally:
    prompt: int = 0
    cached: int = 0
    completion: int = 0

    def usage(self) -> Usage:
        return Usage(self.prompt, self.completion, self.cached)


class _TextCut:
    """Free text up to the first `<tool_call>`: text that might be the start of the tag is held back
    until the next piece shows whether it is."""

    def __init__(self) -> None:
        self.before = ""
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """(text safe to send now, whether the tag opened)."""
        buffer = self._held + text
        at = buffer.find(CALL_OPEN)
        if at >= 0:
            self._held = ""
            self.before += buffer[:at]
            return buffer[:at], True
        keep = next(
            (
                k
                for k in range(min(len(buffer), len(CALL_OPEN) - 1), 0, -1)
                if CALL_OPEN.startswith(buffer[-k:])
            ),
            0,
        )
        safe, self._held = buffer[: len(buffer) - keep], buffer[len(buffer) - keep :]
        self.before += safe
        return safe, False

    def flush(self) -> str:
        tail, self._held = self._held, ""
        self.before += tail
        return tail
