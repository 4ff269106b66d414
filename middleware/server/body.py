"""Reading a request's JSON body without trusting it: standard JSON only (no NaN, no 5,000-digit
numbers), at most `MAX_DEPTH` levels of nesting, every string valid Unicode (no lone surrogate such as
`"\\ud800"`, which no tokenizer or encoder takes), and what the routes need to bound a prompt cheaply:
how many UTF-8 bytes of text the body holds (`BodyText`), measured in the same walk.

Every problem is a 400 (`InvalidRequest`) naming where it is; nothing here raises anything else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..user_errors import InvalidRequest

MAX_DEPTH = 64  # objects and arrays inside each other; OpenAI's deepest bodies (tools' schemas) use ~10
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class BodyText:
    """What a body carries as text: `utf8_bytes` of every string (keys excluded) and `token_ids`, the
    integers of token-id prompts (`/v1/completions` takes `[1, 2, 3]` as a prompt)."""

    utf8_bytes: int = 0
    token_ids: int = 0


def read_json(raw: bytes) -> tuple[Any, BodyText]:
    """The parsed body and its text measure; InvalidRequest (400) for anything that is not plain JSON."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except InvalidRequest:
        raise
    except RecursionError as error:
        raise _too_deep() from error
    except UnicodeDecodeError as error:
        raise InvalidRequest(f"The request body is not valid UTF-8: {error}.", code="invalid_json") from error
    except ValueError as error:  # JSONDecodeError, and int() refusing a number of over 4,300 digits
        raise InvalidRequest(f"The request body is not valid JSON: {error}.", code="invalid_json") from error
    return data, measure(data)


def measure(data: Any) -> BodyText:
    """Walk `data` once (iteratively: no recursion to exhaust) checking depth and strings."""
    utf8 = tokens = 0
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node) is not None:
                raise _surrogate(where)
            utf8 += len(node) if node.isascii() else len(node.encode("utf-8"))
        elif isinstance(node, bool | float | None):
            continue
        elif isinstance(node, int):
            tokens += 1
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            if isinstance(node, dict):
                for key, value in node.items():
                    if _SURROGATE.search(key) is not None:
                        raise _surrogate(where or "body")
                    stack.append((value, depth + 1, f"{where}.{key}" if where else key))
            else:
                stack.extend((value, depth + 1, f"{where}.{i}") for i, value in enumerate(node))
    return BodyText(utf8, tokens)


def _no_constant(name: str) -> Any:
    raise InvalidRequest(
        f"The request body is not valid JSON: {name} is not a JSON value.", code="invalid_json"
    )


def _too_deep() -> InvalidRequest:
    return InvalidRequest(
        f"The request body is nested too deeply: at most {MAX_DEPTH} levels of objects and arrays.",
        code="invalid_json",
    )


def _surrogate(where: str) -> InvalidRequest:
    param = where or None
    return InvalidRequest(
        f"Invalid '{where or 'body'}': the string holds a lone surrogate (such as \\ud800), which is not "
        "valid Unicode; send text as valid UTF-8.",
        param=param,
        code="invalid_unicode",
    )
