"""The largest prompt each surface accepts, checked before any model work (the settings name the limits):

    surface                                   limit (tokens)                 setting
    /v1/chat/completions, /v1/completions     the text of the request        max_prompt_tokens
      ... with compression on                 the same, and                  max_compress_tokens
    /v1/compress                              the text to compress           max_compress_tokens
    POST /v1/gists                            the prefix and its queries     max_prompt_tokens
    POST /v1/corpora/NAME/documents (JSON)    the documents of one request   max_ingest_tokens

"The text" is every string of the JSON body, plus the token ids of a token-id prompt: an upper bound
of what reaches the model, found in the walk that reads the body (`body.py`). The check costs nothing
for ordinary requests and milliseconds for the rest:
- at most `limit` bytes of text: accepted without counting (a token is at least one byte);
- more than `MAX_BYTES_PER_TOKEN` bytes per allowed token: refused at once (no tokenizer packs that much
  text into a token; a 5 MB prompt is refused in milliseconds);
- in between: counted with the serving model's tokenizer on the proxy's worker pool, off the event loop.
Over the limit is a 413 `prompt_too_long` that names the limit and its setting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..user_errors import UserError
from .body import BodyText

MAX_BYTES_PER_TOKEN = 16


class PromptTooLong(UserError):
    status = 413
    code = "prompt_too_long"


@dataclass(frozen=True)
class PromptLimit:
    tokens: int
    setting: str  # the setting that sets it, named in the error
    param: str  # the body field the error is about


def limit_for(path: str, data: dict[str, Any], settings: Settings, bypass: bool) -> PromptLimit | None:
    """The limit of the surface at `path` for this body (None: the surface takes no prompt)."""
    prompt = PromptLimit(settings.max_prompt_tokens, "max_prompt_tokens", "messages")
    compress = PromptLimit(settings.max_compress_tokens, "max_compress_tokens", "messages")
    if path in ("/v1/chat/completions", "/v1/completions"):
        param = "messages" if path == "/v1/chat/completions" else "prompt"
        chosen = prompt
        if _compresses(data, settings, bypass) and compress.tokens < prompt.tokens:
            chosen = compress
        return PromptLimit(chosen.tokens, chosen.setting, param)
    if path == "/v1/compress":
        return PromptLimit(compress.tokens, compress.setting, "prompt" if "prompt" in data else "messages")
    if path == "/v1/gists":
        return PromptLimit(prompt.tokens, prompt.setting, "prefix")
    if path.startswith("/v1/corpora/") and path.endswith("/documents"):
        return PromptLimit(settings.max_ingest_tokens, "max_ingest_tokens", "documents")
    return None


async def check_prompt(
    path: str,
    data: Any,
    text: BodyText,
    limit: PromptLimit,
    count_tokens: Callable[[], Callable[[str], int]],
    offload: Callable[..., Awaitable[Any]],
) -> None:
    """Raise PromptTooLong when the body's text is over `limit` (see the module docstring for the cost)."""
    cheap = text.utf8_bytes + text.token_ids
    if cheap <= limit.tokens:
        return
    if text.utf8_bytes > limit.tokens * MAX_BYTES_PER_TOKEN:
        raise _too_long(path, limit, f"{text.utf8_bytes} bytes of text")
    counter = count_tokens()
    tokens = await offload(_count_strings, data, counter) + text.token_ids
    if tokens > limit.tokens:
        raise _too_long(path, limit, f"{tokens} tokens")


def _too_long(path: str, limit: PromptLimit, found: str) -> PromptTooLong:
    return PromptTooLong(
        f"The prompt is too long: {found}, where {path} accepts at most {limit.tokens} tokens "
        f"(setting {limit.setting}).",
        param=limit.param,
    )


def _compresses(data: dict[str, Any], settings: Settings, bypass: bool) -> bool:
    """Whether this chat or completion request asks for compression (its own options, else the server's
    defaults); a cheap look at the raw options, validated later by the route."""
    if bypass:
        return False
    own = data.get("promptfold")
    if isinstance(own, dict) and "compress" in own:
        return own["compress"] not in (None, False)
    return settings.stage_defaults.get("compress") not in (None, False)


def _count_strings(data: Any, count: Callable[[str], int]) -> int:
    """Tokens of every string in `data` (iterative: the body is already known to be shallow)."""
    strings: list[str] = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count("\n".join(strings)) if strings else 0
