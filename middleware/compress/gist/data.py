"""The distillation data: queries that follow the prefix, and the serving model's own answers to them.

Queries come from a file, or are sampled from the model itself: the rendered prefix is exactly where a
query begins, so its sampled continuations (up to a line break) are queries of the kind the prefix
invites (a few-shot block ending in "Question: " yields new questions; a system prompt, user messages).
Each example is then the prompt after the prefix plus the model's greedy answer to prefix + query.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend import Backend, Prompt, SamplingParams

from .errors import GistError
from .prefix import FramedPrefix

_QUERY_FIELDS = ("question", "query", "prompt", "text", "content", "input")


@dataclass(frozen=True)
class Example:
    """One continuation x of the prefix: the rest of the prompt, then the model's answer (token ids)."""

    query: str
    rest_ids: tuple[int, ...]  # the prompt after the prefix: the query and the template's tail
    answer_ids: tuple[int, ...]  # greedy answer to prefix + query (with its stop token when it stopped)

    @property
    def continuation(self) -> list[int]:
        return [*self.rest_ids, *self.answer_ids]


def read_queries(path: str | Path) -> list[str]:
    """Queries from a text file (one a line) or JSONL (strings, or objects with a question/query/text)."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise GistError(f"cannot read the queries file '{file}': {error.strerror}", param="queries") from None
    queries = [_query_of(line, file) if file.suffix == ".jsonl" else line.strip() for line in lines]
    queries = [q for q in queries if q]
    if not queries:
        raise GistError(f"the queries file '{file}' holds no queries", param="queries")
    return queries


def _query_of(line: str, file: Path) -> str:
    if not line.strip():
        return ""
    value: Any = json.loads(line)
    if isinstance(value, dict):
        value = next((value[f] for f in _QUERY_FIELDS if isinstance(value.get(f), str)), None)
    if not isinstance(value, str):
        raise GistError(f"a line of '{file}' has no query text (fields: {', '.join(_QUERY_FIELDS)})")
    return value.strip()


async def sample_queries(
    backend: Backend, prefix: FramedPrefix, count: int, *, seed: int = 0, max_tokens: int = 64, rows: int = 8
) -> list[str]:
    """`count` distinct queries sampled from the model as continuations of the prefix (seeded), `rows` at
    a time (each row holds its own copy of the prefix's KV in the embedded engine: bound the memory)."""
    head = Prompt.from_token_ids(list(prefix.token_ids))
    found: dict[str, None] = {}
    first_seed = seed * 100_003
    for round_ in range(4 * count // rows + 2):  # some samples are empty, repeated or run into the template
        batch = [first_seed + round_ * rows + i for i in range(rows)]
        # One call per seed (a seed is per call); the engine runs the concurrent calls as one batch.
        outs = await asyncio.gather(
            *(
                backend.generate(
                    [head],
                    SamplingParams(temperature=1.0, top_p=0.95, max_tokens=max_tokens, stop=["\n"], seed=s),
                )
                for s in batch
            )
        )
        for [out] in outs:
            query = out.text.strip()
            if len(query.split()) >= 3 and query not in found and prefix.prompt_ids(backend, query):
                found[query] = None
        if len(found) >= count:
            break
    if len(found) < 2:
        raise GistError("the model did not produce usable queries from this prefix; pass a queries file")
    return list(found)[:count]


async def build_examples(
    backend: Backend,
    prefix: FramedPrefix,
    queries: Sequence[str],
    *,
    max_answer_tokens: int = 64,
    rows: int = 8,
) -> list[Example]:
    """The model's greedy answers to prefix + query, `rows` at a time; queries whose prompt would not begin
    with the prefix tokens (a merge at the seam) are left out."""
    prompts: list[tuple[str, list[int]]] = []
    for query in queries:
        ids = prefix.prompt_ids(backend, query)
        if ids is not None:
            prompts.append((query, ids))
    if not prompts:
        raise GistError("no query gives a prompt that begins with the prefix", param="queries")
    greedy = SamplingParams(temperature=0.0, max_tokens=max_answer_tokens)
    outs = []
    for start in range(0, len(prompts), rows):
        chunk = prompts[start : start + rows]
        outs += await backend.generate([Prompt.from_token_ids(ids) for _, ids in chunk], greedy)
    n = len(prefix)
    return [
        Example(query, tuple(ids[n:]), tuple(out.token_ids or backend.tokenize(out.text)))
        for (query, ids), out in zip(prompts, outs, strict=True)
    ]


def split_heldout(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """A seeded split into (train, held out); at least one example on each side."""
    if len(examples) < 2:
        raise GistError(f"distillation needs at least 2 queries, got {len(examples)}", param="queries")
    order = list(examples)
    random.Random(seed).shuffle(order)
    held = min(max(1, round(len(order) * fraction)), len(order) - 1)
    return order[held:], order[:held]
