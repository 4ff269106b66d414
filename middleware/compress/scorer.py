"""The Scorer seam: how surprising each token of a text is to a causal LM, in nats.

A `ScoreRequest` is a text to score and an optional `prefix` the model reads first (the text before it,
a question, or both); only the text's own tokens are scored. Question-aware (contrastive) scores are two
requests, the same text with and without the question in the prefix:

    contrastive = log p(token | question + prefix) - log p(token | prefix)
                = self_information(without question) - self_information(with question)

Two scorers sit behind the seam: `LocalScorer` runs a transformers model in-process (the packaged
SmolLM2 by default, or the embedded engine's own model), batching every request of a
call into a few bf16 forwards; `BackendScorer` asks any Backend for prompt logprobs (the local engine,
SGLang's `/generate` with `return_logprob`), so that a large served model can do the scoring.
Compression code never loads a model itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from backend import Backend, Prompt, SamplingParams

if TYPE_CHECKING:
    from backend.weights import LoadedModel


@dataclass(frozen=True)
class ScoreRequest:
    """Score `text`, with `prefix` read before it (not scored). An empty prefix starts from a newline."""

    text: str
    prefix: str = ""


@dataclass
class TokenScores:
    """Per-token results for one text: ids, character spans [start, end) in the text, and the
    self-information -log p(token | everything before it), in nats (float32)."""

    token_ids: np.ndarray  # [n] int64
    spans: np.ndarray  # [n, 2] int64, character offsets into the scored text
    self_information: np.ndarray  # [n] float32, nats

    def __len__(self) -> int:
        return len(self.token_ids)


@runtime_checkable
class Scorer(Protocol):
    """Rates tokens. `count_tokens` counts a text in the tokenizer the scores are in."""

    name: str

    async def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        """One TokenScores per request, in order; all requests are run together where the scorer can."""
        ...

    def count_tokens(self, text: str) -> int: ...


START_TEXT = "\n"  # what an empty prefix becomes, so that the first token of a text is predicted too

# Whether anyone still waits for the scores being computed; a scorer that works in steps asks between
# steps. Set by SharedScorer for the batch it runs (a context variable: asyncio.to_thread carries it into
# the worker thread).
WANTED: contextvars.ContextVar[Callable[[], bool]] = contextvars.ContextVar(
    "scores_wanted", default=lambda: True
)


class ScoringAbandoned(Exception):
    """Every caller of a scoring batch went away; the scorer stopped between forwards."""


# --- local: a transformers model in this process --------------------------------------------------------


class LocalScorer:
    """Scores with a causal LM in this process: the model `loaded` given (the embedded engine's own, shared),
    else `model` (an alias or HF folder; the packaged SmolLM2 when None) loaded through
    `backend.weights.load_causal_lm` (once per process).

    Requests are sorted by length and packed into forwards of at most `max_batch_tokens` (padded) tokens;
    the LM head and log-softmax run only on the positions that are scored, `head_chunk` at a time, so the
    [positions, vocab] logits never exist all at once.
    """

    name = "local"

    def __init__(
        self,
        model: str | None = None,
        *,
        loaded: LoadedModel | None = None,
        device: str = "cpu",
        dtype: str = "auto",
        max_batch_tokens: int | None = None,
        head_chunk: int | None = None,
    ) -> None:
        from backend.models import resolve_causal_lm
        from backend.tokenizer import HFTokenizer
        from backend.weights import load_causal_lm

        if loaded is None:
            ref = resolve_causal_lm(model)
            loaded = load_causal_lm(str(ref.path), device, dtype)
            self.model_id = ref.model_id
        else:
            self.model_id = loaded.path.name
        self.loaded = loaded
        _stop_between_layers(loaded)
        self.tokenizer = HFTokenizer(loaded.tokenizer, self.model_id)
        # A GPU takes a whole long prompt in one forward; a CPU gains nothing from padding past a few
        # thousand tokens and keeps its working set small.
        on_gpu = loaded.device.type == "cuda"
        self.max_batch_tokens = max_batch_tokens or (65536 if on_gpu else 4096)
        self.head_chunk = head_chunk or (4096 if on_gpu else 512)

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count(text)

    def tokenize_with_spans(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        return self.tokenizer.encode_with_offsets(text)

    async def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        return await asyncio.to_thread(self.score_sync, requests)

    def score_sync(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        """The same as `score`, in the calling thread: texts and prefixes are tokenized in two batch calls,
        rows sorted by length and packed into forwards of at most `max_batch_tokens` padded tokens."""
        texts = self.tokenizer.encode_many_with_offsets([r.text for r in requests])
        prefixes = self._prefix_ids([r.prefix or START_TEXT for r in requests])
        lengths = [len(p) + len(ids) for p, (ids, _) in zip(prefixes, texts, strict=True)]
        results: list[TokenScores | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lengths.__getitem__)
        wanted = WANTED.get()
        for group in _pack(order, lengths, self.max_batch_tokens):
            if not wanted():
                raise ScoringAbandoned("every caller of this scoring batch went away")
            nll = self._forward([(prefixes[i], texts[i][0]) for i in group])
            for i, values in zip(group, nll, strict=True):
                results[i] = TokenScores(texts[i][0], texts[i][1], values)
        return [r for r in results if r is not None]

    def _prefix_ids(self, prefixes: list[str]) -> list[np.ndarray]:
        """Token ids of each prefix; a prefix shared by many rows (the question) is tokenized once."""
        distinct = list(dict.fromkeys(prefixes))
        encoded = dict(zip(distinct, self.tokenizer.encode_many_with_offsets(distinct), strict=True))
        return [encoded[p][0] for p in prefixes]

    def _forward(self, rows: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """-log p of every text token of every row, from one padded batch forward. Indices are built in
        numpy and moved once; the LM head runs `head_chunk` positions at a time on the device, and the
        values come back to the host in one copy."""
        import torch

        loaded = self.loaded
        prefix_lengths = np.asarray([len(p) for p, _ in rows], dtype=np.int64)
        text_lengths = np.asarray([len(t) for _, t in rows], dtype=np.int64)
        totals = prefix_lengths + text_lengths
        ids = np.full((len(rows), int(totals.max())), loaded.pad_token_id, dtype=np.int64)
        for r, (prefix, text) in enumerate(rows):
            ids[r, : len(prefix)] = prefix
            ids[r, len(prefix) : totals[r]] = text
        mask = (np.arange(ids.shape[1])[None, :] < totals[:, None]).astype(np.int64)
        where_rows = np.repeat(np.arange(len(rows)), text_lengths)
        first = np.repeat(prefix_lengths - np.cumsum(text_lengths) + text_lengths, text_lengths)
        where_cols = first + np.arange(int(text_lengths.sum()))  # the positions whose token is scored
        device = loaded.device
        input_ids = torch.from_numpy(ids).to(device, non_blocking=True)
        rows_t = torch.from_numpy(where_rows).to(device, non_blocking=True)
        cols_t = torch.from_numpy(where_cols).to(device, non_blocking=True)
        with torch.inference_mode(), loaded.lock:
            hidden = loaded.model.model(
                input_ids=input_ids, attention_mask=torch.from_numpy(mask).to(device), use_cache=False
            ).last_hidden_state
            states = hidden[rows_t, cols_t - 1]  # the state before a token predicts it
            targets = input_ids[rows_t, cols_t]
            nll = torch.empty(len(where_cols), dtype=torch.float32, device=device)
            for begin in range(0, len(where_cols), self.head_chunk):
                end = begin + self.head_chunk
                logits = loaded.logits(states[begin:end]).float()
                picked = logits.gather(1, targets[begin:end].unsqueeze(1)).squeeze(1)
                nll[begin:end] = torch.logsumexp(logits, dim=-1) - picked
            values = nll.cpu().numpy()
        return np.split(values, np.cumsum(text_lengths)[:-1])


def _stop_between_layers(loaded: LoadedModel) -> None:
    """Let a scoring forward stop between two decoder layers once nobody wants its scores (on a CPU one
    forward of a long prompt takes seconds: a client that left must not keep the model busy). The check
    reads WANTED, which only a scoring thread sets; the engine's own forwards always go on."""
    layers = getattr(loaded.model.model, "layers", None)  # transformers' decoder stacks keep them here
    if layers is None or loaded.model in _STOPPABLE:
        return

    def check(_module: object, _inputs: object) -> None:
        if not WANTED.get()():
            raise ScoringAbandoned("every caller of this scoring batch went away")

    for layer in layers:
        layer.register_forward_pre_hook(check)
    _STOPPABLE.add(loaded.model)


_STOPPABLE: weakref.WeakSet[Any] = weakref.WeakSet()  # models whose layers already check WANTED


def _pack(order: list[int], lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Groups of request indices (sorted by length, ascending) whose padded size fits `max_tokens`: the
    last row of a group is its longest."""
    groups: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and lengths[index] * (len(current) + 1) > max_tokens:
            groups.append(current)
            current = []
        current.append(index)
    if current:
        groups.append(current)
    return groups


# --- any backend: prompt logprobs -------------------------------------------------------------------------

# Pieces that BPE tokenizers never merge across: a run of letters/digits/marks with its leading space,
# a run of other symbols with its leading space, or whitespace. Tokenizing piece by piece gives every
# token an exact character span without needing offsets from the backend.
_PIECE = re.compile(r" ?[^\W\d_]+| ?\d| ?[^\s\w]+|_+|\s+(?!\S)|\s+")


class BackendScorer:
    """Scores with any Backend that declares `prompt_logprobs` (the local engine, SGLang).

    Each request becomes one token-id prompt (prefix + text) sent with `max_tokens=0` and
    `prompt_logprobs=True`; a call sends all its requests in one `generate`, which the backend batches.
    Token ids come from `backend.tokenize`, piece by piece (see `_PIECE`), so spans are exact.
    """

    name = "backend"

    def __init__(self, backend: Backend) -> None:
        if not backend.capabilities.prompt_logprobs:
            from backend import UnsupportedRequest

            raise UnsupportedRequest(
                f"the {backend.name} backend cannot return prompt logprobs to score with"
            )
        self.backend = backend
        self._piece_ids: dict[str, list[int]] = {}

    def count_tokens(self, text: str) -> int:
        return len(self.backend.tokenize(text))

    def tokenize_with_spans(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for match in _PIECE.finditer(text):
            piece = match.group()
            piece_ids = self._piece_ids.get(piece)
            if piece_ids is None:
                piece_ids = self._piece_ids[piece] = self.backend.tokenize(piece)
            ids.extend(piece_ids)
            spans.extend(_spread(match.start(), match.end(), len(piece_ids)))
        return np.asarray(ids, dtype=np.int64), np.asarray(spans, dtype=np.int64).reshape(-1, 2)

    async def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        rows = []
        for request in requests:
            prefix_ids, _ = self.tokenize_with_spans(request.prefix or START_TEXT)
            ids, spans = self.tokenize_with_spans(request.text)
            rows.append((prefix_ids, ids, spans))
        scored = [r for r in rows if len(r[1])]
        generations: list[Any] = []
        if scored:
            # One call per distinct prefix length: logprob_start is per call in the Backend seam.
            by_start: dict[int, list[int]] = {}
            for i, row in enumerate(scored):
                by_start.setdefault(len(row[0]), []).append(i)
            generations = [None] * len(scored)
            calls = [
                self.backend.generate(
                    [
                        Prompt.from_token_ids(np.concatenate([scored[i][0], scored[i][1]]).tolist())
                        for i in group
                    ],
                    SamplingParams(temperature=0.0, max_tokens=0),
                    prompt_logprobs=True,
                    logprob_start=start,
                )
                for start, group in by_start.items()
            ]
            for group, results in zip(by_start.values(), await asyncio.gather(*calls), strict=True):
                for i, generation in zip(group, results, strict=True):
                    generations[i] = generation
        out, at = [], 0
        for prefix, ids, spans in rows:
            if not len(ids):
                out.append(TokenScores(ids, spans, np.zeros(0, dtype=np.float32)))
                continue
            logprobs = _logprobs_of(generations[at], len(prefix), len(ids))
            at += 1
            out.append(TokenScores(ids, spans, -logprobs))
        return out


def _logprobs_of(generation: Any, start: int, count: int) -> np.ndarray:
    values = (generation.prompt_logprobs or [])[start : start + count]
    if len(values) != count or any(v is None for v in values):
        from backend import BackendError

        raise BackendError("the backend returned no prompt logprob for some tokens", backend="scorer")
    return np.asarray(values, dtype=np.float32)


def _spread(start: int, end: int, count: int) -> list[tuple[int, int]]:
    """Spans for `count` tokens of the piece text[start:end]: the first token takes the piece's start,
    the others split the rest evenly (exact for the usual one-token pieces)."""
    if count <= 1:
        return [(start, end)] * count
    cuts = [start + (end - start) * k // count for k in range(count + 1)]
    return [(cuts[k], cuts[k + 1]) for k in range(count)]
