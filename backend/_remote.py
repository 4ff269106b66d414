"""What the remote backends (SGLang, OpenAI-compatible) share: HTTP error mapping, reading server-sent
events, a fan-out that cancels its siblings on failure, and loading a local tokenizer.

Every httpx failure leaves here as one of the seam's exceptions, carrying the server's own words:
unreachable or timed out -> BackendUnavailable (503); an error status -> BackendError (502), or
UnsupportedRequest for a 400 the request itself caused (too long a prompt, a bad sampling value).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import httpx

from .base import (
    BackendError,
    BackendUnavailable,
    Constraint,
    SamplingParams,
    TokenLogprob,
    TopLogprob,
    UnsupportedRequest,
)
from .sampling_params import CLIENT_FIELDS, lift_openai_fields
from .tokenizer import load_hf_tokenizer

T = TypeVar("T")
_LABELS = {"openai": "the OpenAI-compatible server", "sglang": "SGLang"}


CONNECT_TIMEOUT_S = 10.0


def timeout(seconds: float, connect_s: float = CONNECT_TIMEOUT_S) -> httpx.Timeout:
    """`seconds` for each read and write (the longest silence tolerated: a streamed answer sends bytes as
    it goes, a whole one only at its end), and at most `connect_s` to connect: a dead host fails fast."""
    return httpx.Timeout(seconds, connect=min(seconds, connect_s))


def per_request(client: httpx.AsyncClient, seconds: float) -> httpx.Timeout:
    """`timeout(seconds)` for one request, keeping the connect timeout the backend's client was made with."""
    connect = client.timeout.connect
    return timeout(seconds, CONNECT_TIMEOUT_S if connect is None else connect)


def where(backend: str, url: str) -> str:
    """ "SGLang at http://…" — how messages name the server."""
    return f"{_LABELS.get(backend, backend)} at {url}"


def error_text(response: httpx.Response) -> str:
    """The server's own words from an error response (OpenAI, SGLang, FastAPI shapes), <= 500 chars."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        message = message or body.get("message") or body.get("detail")
    text = str(message) if message else response.text.strip() or response.reason_phrase
    return text[:500]


def http_error(response: httpx.Response, backend: str) -> Exception:
    """Map an HTTP error status to the seam's exceptions; the message carries the server's words."""
    status, words = response.status_code, error_text(response)
    server = where(backend, str(response.request.url))
    if status in (401, 403):
        return BackendError(f"{server} refused the API key (HTTP {status}): {words}", backend=backend)
    if status in (400, 413, 422):
        return UnsupportedRequest(f"{server} rejected the request (HTTP {status}): {words}")
    if status in (429, 503):
        return BackendUnavailable(f"{server} is busy or not ready (HTTP {status}): {words}", backend=backend)
    return BackendError(f"{server} answered HTTP {status}: {words}", backend=backend)


def transport_error(exc: httpx.HTTPError, url: str, backend: str, timeout_s: float) -> BackendError:
    """Map an httpx failure without an HTTP status: unreachable or too slow -> 503, a broken link -> 502."""
    server = where(backend, url)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return BackendUnavailable(f"cannot reach {server}: {exc or type(exc).__name__}", backend=backend)
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnavailable(f"{server} did not answer within {timeout_s:g} s", backend=backend)
    return BackendError(f"the connection to {server} failed: {type(exc).__name__}: {exc}", backend=backend)


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    backend: str,
    timeout_s: float,
    body: Any = None,
) -> Any:
    """Send one request and return its JSON body; every failure becomes a seam exception."""
    try:
        response = await client.request(method, url, json=body, timeout=per_request(client, timeout_s))
    except httpx.HTTPError as exc:
        raise transport_error(exc, url, backend, timeout_s) from exc
    if response.status_code >= 400:
        raise http_error(response, backend)
    try:
        return response.json()
    except ValueError as exc:
        raise BackendError(f"{where(backend, url)} answered with something that is not JSON") from exc


async def sse_events(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], *, backend: str, timeout_s: float
) -> AsyncIterator[dict[str, Any]]:
    """POST `body` and yield the JSON of each `data:` line of the event stream until `data: [DONE]`.

    An event `{"error": ...}` (how vLLM and SGLang report a failure mid-stream) raises BackendError.
    Closing the iterator early closes the connection, which makes the server abort the request.
    """
    try:
        async with client.stream("POST", url, json=body, timeout=per_request(client, timeout_s)) as response:
            if response.status_code >= 400:
                await response.aread()
                raise http_error(response, backend)
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments and `event:` lines
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                event = json.loads(data)
                if isinstance(event, dict) and event.get("error"):
                    error = event["error"]
                    words = error.get("message") if isinstance(error, dict) else error
                    raise BackendError(f"{where(backend, url)} failed mid-stream: {words}", backend=backend)
                yield event
    except httpx.HTTPError as exc:
        raise transport_error(exc, url, backend, timeout_s) from exc
    except json.JSONDecodeError as exc:
        raise BackendError(
            f"{where(backend, url)} streamed a line that is not JSON", backend=backend
        ) from exc


async def gather_all(*jobs: Awaitable[T]) -> list[T]:
    """Like asyncio.gather, but the first failure cancels the jobs still running (no orphan requests)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def load_tokenizer(path: str) -> Any:
    """A transformers tokenizer from a local folder, never from a hub (loaded once per folder)."""
    try:
        return load_hf_tokenizer(path)
    except Exception as exc:  # transformers raises OSError, ValueError, ... depending on what is missing
        raise UnsupportedRequest(f"could not load a tokenizer from '{path}': {exc}") from exc


def sampling_fields(
    sampling: SamplingParams, *, max_tokens: str, seed: str, dialect: str = "openai"
) -> dict[str, Any]:
    """Our sampling under a server's field names; `extra` is passed through as is (and wins on a clash).

    `dialect` "openai" gives the OpenAI names plus vLLM's extensions (top_k, min_p, repetition_penalty,
    min_tokens, stop_token_ids, ignore_eos, guided_*); "sglang" gives the names of SGLang's native
    /generate `sampling_params` (min_new_tokens, json_schema, regex, ebnf). Fields at their default are
    left out, so a plain request looks as it always did. Values are validated first (InvalidRequest).
    """
    sampling = lift_openai_fields(sampling)
    sampling.validate()
    fields: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        max_tokens: sampling.max_tokens,
    }
    if sampling.stop:
        fields["stop"] = list(sampling.stop)
    if sampling.seed is not None:
        fields[seed] = sampling.seed
    fields.update(
        _rule_fields(sampling, min_tokens="min_new_tokens" if dialect == "sglang" else "min_tokens")
    )
    if dialect == "openai" and sampling.logprobs:
        fields.update(logprobs=True, top_logprobs=sampling.top_logprobs)
    if sampling.constraint is not None:
        fields.update(_constraint_fields(sampling.constraint, dialect))
    fields.update({k: v for k, v in sampling.extra.items() if dialect == "openai" or k not in CLIENT_FIELDS})
    return fields


def _rule_fields(sampling: SamplingParams, *, min_tokens: str) -> dict[str, Any]:
    s = sampling
    candidates: dict[str, Any] = {
        "top_k": s.top_k if s.top_k not in (None, -1, 0) else None,
        "min_p": s.min_p or None,
        "frequency_penalty": s.frequency_penalty or None,
        "presence_penalty": s.presence_penalty or None,
        "repetition_penalty": s.repetition_penalty if s.repetition_penalty != 1 else None,
        min_tokens: s.min_tokens or None,
        "stop_token_ids": list(s.stop_token_ids) or None,
        "ignore_eos": True if s.ignore_eos else None,
        "logit_bias": {str(k): v for k, v in s.logit_bias.items()} or None,  # JSON keys are strings
    }
    return {k: v for k, v in candidates.items() if v is not None}


def _constraint_fields(constraint: Constraint, dialect: str) -> dict[str, Any]:
    if dialect == "sglang":  # SGLang's native fields; a choice becomes a regex of its alternatives
        if constraint.kind in ("json_schema", "json_object"):
            return {"json_schema": json.dumps(constraint.schema or {"type": "object"})}
        if constraint.kind == "regex":
            return {"regex": constraint.pattern}
        if constraint.kind == "choice":
            return {"regex": "(" + "|".join(_regex_literal(c) for c in constraint.choices) + ")"}
        return {"ebnf": constraint.grammar}
    if constraint.kind == "json_schema":
        spec = {"name": "answer", "schema": constraint.schema, "strict": constraint.strict}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    if constraint.kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if constraint.kind == "regex":
        return {"guided_regex": constraint.pattern}
    if constraint.kind == "choice":
        return {"guided_choice": list(constraint.choices)}
    return {"guided_grammar": constraint.grammar}


def _regex_literal(text: str) -> str:
    """`text` as a regex matching exactly it (only regex metacharacters escaped, which every dialect takes)."""
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}" else c for c in text)


def openai_logprobs(raw: Any) -> list[TokenLogprob] | None:
    """A choice's `logprobs` as typed entries: the chat shape (`content: [{token, logprob, top_logprobs}]`)
    or the completions shape (`tokens`, `token_logprobs`, `top_logprobs: [{token: logprob}]`).

    The OpenAI API names tokens by their text only, so `token_id` is -1 (vLLM's "token_id:N" texts, with
    `return_tokens_as_token_ids`, are read back as ids).
    """
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("content"), list):
        return [
            TokenLogprob(
                _id_of(e.get("token")),
                str(e.get("token") or ""),
                float(e.get("logprob") or 0.0),
                [
                    TopLogprob(
                        _id_of(t.get("token")), str(t.get("token") or ""), float(t.get("logprob") or 0.0)
                    )
                    for t in e.get("top_logprobs") or []
                ],
            )
            for e in raw["content"]
        ]
    tokens, values = raw.get("tokens"), raw.get("token_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list):
        return None
    tops = raw.get("top_logprobs") or [None] * len(tokens)
    return [
        TokenLogprob(
            _id_of(token),
            str(token),
            float(value or 0.0),
            [TopLogprob(_id_of(t), str(t), float(v)) for t, v in (top or {}).items()],
        )
        for token, value, top in zip(tokens, values, tops, strict=False)
    ]


def _id_of(token: Any) -> int:
    text = str(token or "")
    if text.startswith("token_id:") and text[len("token_id:") :].isdigit():
        return int(text[len("token_id:") :])
    return -1
