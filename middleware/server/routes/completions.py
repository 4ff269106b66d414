"""/v1/completions: a prompt or a list of prompts (text or token ids), each through the pipeline, with
`n` choices each, OpenAI's `logprobs` (alternatives per token), `echo`, `best_of`, and streaming of all of
it (choice `index` = prompt * n + choice, as OpenAI and vLLM number them)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from backend import Generation

from ...pipeline import Completion
from ...pipeline import Request as PipelineRequest
from ...user_errors import InvalidRequest
from ..logprobs import completion_logprobs
from ..schemas import CompletionChoice, CompletionRequest, TextCompletion, new_id, now
from ..sse import StreamPlan, stream_response
from ..state import ServerState, get_state
from ..support import check_supported
from ..translate import TextChunks, sampling_from, unclaimed, usage_out
from .common import options_of, parse_body
from .openai import check_request


def build_router(auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])
    router.add_api_route("/v1/completions", completions, methods=["POST"])
    return router


async def completions(request: Request) -> Any:
    state = get_state(request)
    body = await parse_body(request, CompletionRequest)
    check_request(state, body.model, body.n)
    samples = _samples(body, state)
    notes = check_supported(body, state.backend, request)
    options = options_of(body.promptfold, request, state)
    extra: dict[str, Any] = {"logprobs": body.logprobs} if body.logprobs is not None else {}
    if samples > body.n:
        extra["logprobs"] = body.logprobs or 0  # best_of ranks the samples by their logprobs
    if body.suffix is not None:
        extra["suffix"] = body.suffix  # only a server that takes it gets here (support.py)
    sampling = sampling_from(body, body.max_tokens, extra)
    echo_scores = body.echo and body.logprobs is not None and not body.stream
    requests = [
        PipelineRequest(sampling=sampling, prompt=p, n=samples, options=options, prompt_logprobs=echo_scores)
        for p in body.prompts()
    ]
    if body.stream:
        return await _stream(state, body, requests, notes)
    results: list[Completion] = await state.run(
        asyncio.gather(*(state.pipeline.complete(r) for r in requests)), route="completions"
    )
    for result in results:
        result.report.notes.extend(notes)
    choices = [
        _choice(state, body, p * body.n + i, prompt, g)
        for p, (prompt, result) in enumerate(zip(body.prompts(), results, strict=True))
        for i, g in enumerate(_best(result.choices, body.n))
    ]
    response = TextCompletion(
        id=new_id("cmpl"),
        created=now(),
        model=state.model_id,
        choices=choices,
        usage=usage_out(*results),
        promptfold=results[0].report.as_dict()
        if len(results) == 1
        else {"requests": [r.report.as_dict() for r in results]},
        **unclaimed(
            TextCompletion, results[0].choices[0].upstream.get("response") if results[0].choices else None
        ),
    )
    return JSONResponse(response.model_dump(exclude_none=True), headers=results[0].report.headers())


def _samples(body: CompletionRequest, state: ServerState) -> int:
    """How many samples to draw per prompt: `best_of` (OpenAI: at least n; not with streaming), else n."""
    if body.best_of is None or body.best_of == body.n:
        return body.n
    if body.best_of < body.n:
        raise InvalidRequest("best_of must be at least n", param="best_of")
    if body.stream:
        raise InvalidRequest("best_of cannot be streamed", param="best_of")
    if body.best_of > state.settings.max_n:
        raise InvalidRequest(f"Invalid 'best_of': at most {state.settings.max_n}.", param="best_of")
    return body.best_of


def _best(choices: list[Generation], n: int) -> list[Generation]:
    """The n samples with the highest total logprob (all of them, in order, when there are only n)."""
    if len(choices) <= n:
        return choices
    return sorted(choices, key=lambda g: -sum(e.logprob for e in g.logprobs or []))[:n]


def _choice(
    state: ServerState, body: CompletionRequest, index: int, prompt: str | list[int], g: Generation
) -> CompletionChoice:
    echoed = _prompt_text(state, prompt) if body.echo else ""
    logprobs = None
    if body.logprobs is not None:
        scored = _prompt_scores(state, g) if body.echo else None
        logprobs = completion_logprobs(g.logprobs or [], prompt=scored, offset=len(echoed))
    return CompletionChoice(
        index=index,
        text=echoed + g.text,
        finish_reason=g.finish_reason,
        logprobs=logprobs,
        **unclaimed(CompletionChoice, g.upstream.get("choice")),
    )


def _prompt_text(state: ServerState, prompt: str | list[int]) -> str:
    if isinstance(prompt, str):
        return prompt
    tokenizer = state.backend.tokenizer()
    if tokenizer is None:
        raise InvalidRequest("echo of a token-id prompt needs the model's tokenizer here", param="echo")
    return tokenizer.decode(prompt)


def _prompt_scores(state: ServerState, g: Generation) -> tuple[list[str], list[float | None]] | None:
    tokenizer = state.backend.tokenizer()
    if g.prompt_token_ids is None or g.prompt_logprobs is None or tokenizer is None:
        return None
    return tokenizer.token_texts(g.prompt_token_ids), list(g.prompt_logprobs)


async def _stream(
    state: ServerState, body: CompletionRequest, requests: list[PipelineRequest], notes: list[str]
) -> Any:
    prepared = []
    for request in requests:
        stream = await state.run(state.pipeline.stream(request), route="completions", count=False)
        stream.report.notes.extend(notes)
        prepared.append(stream)
    prompts = body.prompts()

    def opening(index: int) -> str:
        return _prompt_text(state, prompts[index // body.n]) if body.echo else ""

    plan = StreamPlan(
        [(p * body.n, s) for p, s in enumerate(prepared)],
        len(prompts) * body.n,
        body.include_usage(),
        opening,
    )
    return await stream_response(state, plan, "completions", TextChunks(state.model_id))
