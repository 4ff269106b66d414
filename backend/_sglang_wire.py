"""SGLang's native wire format, without I/O: the /generate request fields and how its answers read.

Shapes as SGLang 0.5.x sends them (the /generate answer, one per prompt of a list batch)::

    {"text": " Paris.", "output_ids": [7042, 30],
     "meta_info": {"prompt_tokens": 6, "completion_tokens": 2, "cached_tokens": 0,
                   "finish_reason": {"type": "stop", "matched": 2},
                   "input_token_logprobs": [[null, 1, null], [-3.2, 504, null], ...]}}
"""

from __future__ import annotations

from typing import Any

from ._remote import sampling_fields
from .base import (
    BackendError,
    FinishReason,
    Generation,
    Prompt,
    SamplingParams,
    TokenLogprob,
    TopLogprob,
    UnsupportedRequest,
    Usage,
)
from .sampling_params import lift_openai_fields

# A batch whose prompts share at least this much is warmed with that prefix first (see shared_prefix).
MIN_SHARED_TOKENS = 32
MIN_SHARED_CHARS = 128


def sglang_sampling(sampling: SamplingParams) -> dict[str, Any]:
    return sampling_fields(sampling, max_tokens="max_new_tokens", seed="sampling_seed", dialect="sglang")


def logprob_fields(sampling: SamplingParams) -> dict[str, Any]:
    """The top-level /generate fields that ask for per-token logprobs of the answer (none if not asked)."""
    sampling = lift_openai_fields(sampling)
    if not sampling.logprobs:
        return {}
    return {
        "return_logprob": True,
        "top_logprobs_num": sampling.top_logprobs,
        "return_text_in_logprobs": True,
    }


def output_logprobs(meta: dict[str, Any]) -> list[TokenLogprob] | None:
    """`meta_info.output_token_logprobs` ([logprob, id, text]) with `output_top_logprobs` as typed entries."""
    entries = meta.get("output_token_logprobs")
    if not isinstance(entries, list):
        return None
    tops = meta.get("output_top_logprobs") or [None] * len(entries)
    return [
        TokenLogprob(
            int(e[1]),
            str(e[2] or "") if len(e) > 2 else "",
            float(e[0]),
            [TopLogprob(int(t[1]), str(t[2] or "") if len(t) > 2 else "", float(t[0])) for t in top or []],
        )
        for e, top in zip(entries, tops, strict=False)
    ]


def native_input(prompt: Prompt, tokenizer: Any) -> tuple[str, Any]:
    """The /generate field a prompt goes in and its value; ("chat", None) for messages nobody here can
    render (they then take SGLang's /v1/chat/completions)."""
    if prompt.text is not None:
        return "text", prompt.text
    if prompt.token_ids is not None:
        if not prompt.token_ids:
            raise UnsupportedRequest("the prompt is empty")
        return "input_ids", prompt.token_ids
    if prompt.embeds is not None:
        return "input_embeds", embeds_as_lists(prompt.embeds)
    if tokenizer is None:
        return "chat", None
    rendered = tokenizer.apply_chat_template(prompt.messages, add_generation_prompt=True, tokenize=False)
    # The template already holds the special tokens (BOS); adding them again would double them.
    return "input_ids", list(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def embeds_as_lists(embeds: Any) -> list[list[float]]:
    """[tokens][hidden] floats from a nested list, numpy array or torch tensor (any dtype, any device)."""
    import numpy as np

    if hasattr(embeds, "detach"):  # torch, without importing it; bf16 needs .float() before numpy
        embeds = embeds.detach().float().cpu().numpy()
    array = np.asarray(embeds, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise UnsupportedRequest(
            f"input embeddings must have shape [tokens, hidden], got {list(array.shape)}"
        )
    return array.tolist()


def shared_prefix(field: str, inputs: list[Any]) -> Any:
    """The prefix every prompt of a batch starts with, if long enough to be worth computing once, else None.

    SGLang's default scheduling (fcfs) prefills the prompts of one batch side by side, so a prefix they
    share but the radix cache does not hold yet would be computed once per prompt. Text is cut at a space
    so that the prefix tokenizes as the start of every prompt does.
    """
    if len(inputs) < 2 or field not in ("text", "input_ids"):
        return None
    n = _common_prefix_len(inputs)
    if field == "input_ids":
        return inputs[0][:n] if n >= MIN_SHARED_TOKENS else None
    text = inputs[0][:n]
    if len(text) < min(map(len, inputs)):  # cut before the space: tokenizers glue it to the next word
        text = text[: max(text.rfind(" "), 0)]
    return text if len(text) >= MIN_SHARED_CHARS else None


def _common_prefix_len(items: list[Any]) -> int:
    shortest = min(items, key=len)
    for i, element in enumerate(shortest):
        if any(item[i] != element for item in items):
            return i
    return len(shortest)


def usage_of(meta: dict[str, Any]) -> Usage:
    return Usage(
        int(meta.get("prompt_tokens") or 0),
        int(meta.get("completion_tokens") or 0),
        int(meta.get("cached_tokens") or 0),
    )


def finish_reason_of(raw: Any, usage: Usage, max_tokens: int) -> FinishReason:
    """`meta_info.finish_reason` ({"type": "stop"|"length"|"abort", ...}) as ours; an abort raises."""
    kind = raw.get("type") if isinstance(raw, dict) else raw
    if kind == "length":
        return "length"
    if kind == "stop":
        return "stop"
    if kind is None:  # not expected in a final answer; judge by the token count
        return "length" if usage.completion_tokens >= max_tokens else "stop"
    words = raw.get("message") if isinstance(raw, dict) else None
    if kind == "abort" and isinstance(raw, dict) and raw.get("status_code") == 400:
        raise UnsupportedRequest(f"SGLang refused the request: {words}")
    raise BackendError(f"SGLang ended the generation with finish reason '{kind}': {words}", backend="sglang")


def generation_of(
    out: dict[str, Any],
    known_ids: list[int] | None,
    max_tokens: int,
    logprob_start: int | None,
    latency_s: float,
    *,
    with_logprobs: bool = False,
) -> Generation:
    """One /generate answer as a Generation; `logprob_start` None when no prompt logprobs were asked;
    `with_logprobs` reads the answer's per-token logprobs."""
    meta = out.get("meta_info") or {}
    usage = usage_of(meta)
    generation = Generation(
        text=out.get("text") or "",
        finish_reason=finish_reason_of(meta.get("finish_reason"), usage, max_tokens),
        usage=usage,
        token_ids=[int(t) for t in out.get("output_ids") or []],
        latency_s=latency_s,
        logprobs=output_logprobs(meta) if with_logprobs else None,
    )
    if logprob_start is not None:
        ids = known_ids or out.get("prompt_token_ids") or meta.get("prompt_token_ids")
        generation.prompt_token_ids, generation.prompt_logprobs = align_prompt_logprobs(
            meta.get("input_token_logprobs") or [], usage.prompt_tokens, logprob_start, ids
        )
    return generation


def align_prompt_logprobs(
    entries: list[Any], prompt_tokens: int, logprob_start: int, known_ids: list[int] | None
) -> tuple[list[int] | None, list[float | None]]:
    """(prompt token ids, one logprob per prompt token) from SGLang's `input_token_logprobs`.

    The entries are [logprob, token_id, text] and run to the end of the prompt; where they start differs
    (SGLang pads a None for the first token only when logprob_start_len is 0), so they are aligned to the
    end. Positions before `logprob_start`, and the first token, get None. The ids are None when neither
    the caller nor the server gave all of them.
    """
    n = prompt_tokens or (len(known_ids) if known_ids else logprob_start + len(entries))
    entries = entries[-n:] if n else []
    offset = n - len(entries)
    logprobs: list[float | None] = [None] * n
    ids: list[int | None] = list(known_ids) if known_ids and len(known_ids) == n else [None] * n
    for k, entry in enumerate(entries):
        position = offset + k
        if position >= max(logprob_start, 1) and entry[0] is not None:
            logprobs[position] = float(entry[0])
        if ids[position] is None and len(entry) > 1 and entry[1] is not None:
            ids[position] = int(entry[1])
    complete = [i for i in ids if i is not None]
    return (complete if len(complete) == n else None), logprobs


class StreamDeltas:
    """Turns SGLang's stream chunks into deltas. By default SGLang sends the whole text and output_ids so
    far in every chunk; with --incremental-streaming-output only the new part. A chunk is cumulative when
    its ids count equals meta_info.completion_tokens, or (without ids) when it starts with the text so far.
    """

    def __init__(self) -> None:
        self.text = ""
        self.ids: list[int] = []
        self.logprobs_sent = 0

    def new_logprobs(self, entries: list[TokenLogprob] | None) -> list[TokenLogprob] | None:
        """The entries of `meta_info.output_token_logprobs` not sent yet (SGLang repeats them all in every
        chunk unless it streams incrementally, when a chunk has only its own)."""
        if not entries:
            return None
        if len(entries) > self.logprobs_sent and len(entries) == len(self.ids):  # cumulative
            new = entries[self.logprobs_sent :]
        else:
            new = entries
        self.logprobs_sent += len(new)
        return new or None

    def step(
        self, text: str | None, ids: list[int] | None, completion_tokens: int | None
    ) -> tuple[str, list[int]]:
        """The new text and token ids of one chunk. `text` None means the chunk carried no text."""
        ids = [int(t) for t in ids or []]
        if ids and completion_tokens is not None:
            cumulative = len(ids) == completion_tokens
        else:
            cumulative = text is not None and text.startswith(self.text)
        if not cumulative:
            self.text, self.ids = self.text + (text or ""), self.ids + ids
            return text or "", ids
        delta_ids = ids[len(self.ids) :]
        self.ids = ids or self.ids
        if text is None:
            return "", delta_ids
        # Text already sent cannot be taken back; if the server revised it, only the new tail goes out.
        delta_text, self.text = text[len(self.text) :], text
        return delta_text, delta_ids
