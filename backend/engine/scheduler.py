"""The engine thread: admits queued requests, prefills them, and decodes every active row in one forward.

Requests may arrive at any time. Between two decode steps the thread takes everything queued (up to
`max_rows` active rows), prefills it as one group and merges it into the running batch, so concurrent
clients share forwards instead of waiting for each other (continuous batching, step granularity).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..base import Generation, Usage
from .detokenize import TextStream
from .kv import KVBatch, concat_rows, drop_empty_columns, select_rows
from .model import LoadedModel
from .prefill import prefill, warm
from .prefix_cache import PrefixCache
from .requests import EngineRequest
from .sampling import make_generator, sample_rows

log = logging.getLogger("promptfold.engine")


@dataclass
class _Row:
    request: EngineRequest
    cached_tokens: int
    prompt_logprobs: list[float | None] | None
    text: TextStream
    generator: torch.Generator
    generated: list[int] = field(default_factory=list)
    first_token_at: float | None = None

    def finished(self, stop_ids: frozenset[int], room: int) -> str | None:
        """'stop' or 'length' once this row is done, else None."""
        if self.request.cancelled:
            return "stop"
        if self.text.stopped or (self.generated and self.generated[-1] in stop_ids):
            return "stop"
        if len(self.generated) >= min(self.request.sampling.max_tokens, room):
            return "length"
        return None


@dataclass
class _Warm:
    tokens: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    cached: int = 0
    error: BaseException | None = None


class Engine:
    def __init__(
        self, model: LoadedModel, *, max_rows: int = 32, prefix_cache_bytes: int = 512 * 2**20
    ) -> None:
        self.model = model
        self.max_rows = max_rows
        self.prefix_cache = PrefixCache(prefix_cache_bytes)
        self._inbox: queue.Queue[list[EngineRequest] | _Warm | None] = queue.Queue()
        self._waiting: list[list[EngineRequest]] = []
        self._rows: list[_Row] = []
        self._batch: KVBatch | None = None
        self._thread = threading.Thread(target=self._run, name="promptfold-engine", daemon=True)
        self._stopping = False
        self.steps = 0  # decode forwards run, for tests and metrics
        self.rows_per_step_total = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._inbox.put(None)
        self._thread.join(timeout=30)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, group: list[EngineRequest]) -> None:
        """Queue prompts that should be prefilled together (their shared prefix is computed once)."""
        self._inbox.put(group)

    def warm(self, tokens: np.ndarray) -> int:
        """Block until the KV of `tokens` is cached (pinned); return how many were cached before."""
        job = _Warm(tokens)
        self._inbox.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.cached

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            try:
                self._take_inbox(block=not self._rows and not self._waiting)
                self._admit()
                if self._rows:
                    self._decode_step()
            except Exception as error:  # never let one bad batch kill the engine thread
                log.exception("engine step failed")
                self._fail_all(error)

    def _take_inbox(self, *, block: bool) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
            except queue.Empty:
                return
            block = False
            if item is None:
                return
            if isinstance(item, _Warm):
                self._do_warm(item)
            else:
                self._waiting.append(item)

    def _do_warm(self, job: _Warm) -> None:
        try:
            job.cached = warm(self.model, self.prefix_cache, job.tokens, pinned=True)
        except Exception as error:
            job.error = error
        job.done.set()

    def _admit(self) -> None:
        admitted: list[EngineRequest] = []
        while self._waiting and len(self._rows) + len(admitted) + len(self._waiting[0]) <= self.max_rows:
            admitted.extend(self._waiting.pop(0))
        if not admitted and self._waiting and not self._rows:
            admitted = self._waiting.pop(0)  # a group larger than max_rows still runs, alone
        if not admitted:
            return
        try:
            result = prefill(self.model, self.prefix_cache, admitted)
        except Exception as error:
            for request in admitted:
                request.sink.on_error(error)
            return
        now = time.perf_counter()
        new_rows = []
        for i, request in enumerate(admitted):
            row = _Row(
                request,
                result.cached_tokens[i],
                result.prompt_logprobs[i],
                TextStream(self.model.tokenizer, request.sampling.stop),
                make_generator(request.sampling.seed),
            )
            new_rows.append(row)
        self._rows.extend(new_rows)
        self._batch = result.batch if self._batch is None else concat_rows([self._batch, result.batch])
        keep = [r for r in new_rows if r.request.sampling.max_tokens > 0]
        first = sample_rows(
            result.last_logits[[new_rows.index(r) for r in keep]],
            [r.request.sampling for r in keep],
            [r.generator for r in keep],
        )
        for row, token in zip(keep, first, strict=True):
            row.first_token_at = now
            self._accept(row, token)
        self._retire()

    def _decode_step(self) -> None:
        assert self._batch is not None
        batch = self._batch
        last = torch.tensor([row.generated[-1] for row in self._rows], dtype=torch.long)
        new_mask = torch.ones(batch.rows, 1, dtype=torch.long)
        positions = batch.next_position.unsqueeze(1)
        with torch.inference_mode(), self.model.lock:
            embeds = self.model.embed(last.unsqueeze(1))
            hidden, self._batch = self.model.forward(batch, embeds, new_mask, positions)
            logits = self.model.logits(hidden[:, -1])
        self.steps += 1
        self.rows_per_step_total += batch.rows
        tokens = sample_rows(
            logits, [r.request.sampling for r in self._rows], [r.generator for r in self._rows]
        )
        for row, token in zip(self._rows, tokens, strict=True):
            self._accept(row, token)
        self._retire()

    def _accept(self, row: _Row, token: int) -> None:
        row.generated.append(token)
        if token in self.model.stop_token_ids:
            return
        delta = row.text.add(token)
        if delta:
            row.request.sink.on_delta(delta, [token])

    def _retire(self) -> None:
        """Hand finished rows their result and drop them from the batch."""
        keep: list[int] = []
        for index, row in enumerate(self._rows):
            room = self.model.max_positions - row.request.prompt_len
            reason = row.finished(self.model.stop_token_ids, room)
            if reason is None:
                keep.append(index)
                continue
            tail = row.text.finish()
            if tail:
                row.request.sink.on_delta(tail, [])
            row.request.sink.on_done(self._result(row, reason))
        if len(keep) == len(self._rows):
            return
        self._rows = [self._rows[i] for i in keep]
        if not self._rows:
            self._batch = None
            return
        assert self._batch is not None
        self._batch = drop_empty_columns(select_rows(self._batch, keep))

    def _result(self, row: _Row, reason: str) -> Generation:
        request = row.request
        finished_at = time.perf_counter()
        return Generation(
            text=row.text.text,
            finish_reason="stop" if reason == "stop" else "length",
            usage=Usage(request.prompt_len, len(row.generated), row.cached_tokens),
            token_ids=list(row.generated),
            prompt_token_ids=request.token_ids.tolist() if request.token_ids is not None else None,
            prompt_logprobs=row.prompt_logprobs,
            time_to_first_token_s=(row.first_token_at - request.submitted_at) if row.first_token_at else None,
            latency_s=finished_at - request.submitted_at,
        )

    def _fail_all(self, error: BaseException) -> None:
        for row in self._rows:
            row.request.sink.on_error(error)
        self._rows = []
        self._batch = None
