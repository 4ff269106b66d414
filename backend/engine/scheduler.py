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

from ..base import Generation, TokenLogprob
from ..errors import BackendUnavailable
from .kv import KVBatch, concat_rows, drop_empty_columns, select_rows
from .logprobs import token_logprobs
from .model import LoadedModel
from .prefill import prefill, warm
from .prefix_cache import PrefixCache
from .requests import EngineRequest
from .rows import Row, new_row, result_of
from .sampling import Choice, choose_tokens

log = logging.getLogger("promptfold.engine")

STOP_TIMEOUT_S = 10.0  # Engine.stop() waits this long for a step in progress, then answers for it


@dataclass
class _Warm:
    tokens: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    cached: int = 0
    error: BaseException | None = None


class Engine:
    """The engine thread. Every request submitted gets exactly one answer (a Generation or an error), also
    when another request fails, a forward fails, or the engine stops."""

    def __init__(
        self, model: LoadedModel, *, max_rows: int = 32, prefix_cache_bytes: int = 512 * 2**20
    ) -> None:
        self.model = model
        self.max_rows = max_rows
        self.prefix_cache = PrefixCache(prefix_cache_bytes)
        self._inbox: queue.Queue[list[EngineRequest] | _Warm | None] = queue.Queue()
        self._waiting: list[list[EngineRequest]] = []
        self._rows: list[Row] = []
        self._batch: KVBatch | None = None
        self._thread = threading.Thread(target=self._run, name="promptfold-engine", daemon=True)
        self._stopping = False
        self._open: dict[int, EngineRequest] = {}  # id() -> request not answered yet
        self._open_lock = threading.Lock()
        self.steps = 0  # decode forwards run, for tests and metrics
        self.rows_per_step_total = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the thread and answer every request still queued or running with BackendUnavailable.

        Returns within about `timeout_s` even when a forward is still running (its rows are answered
        here; the thread, a daemon, drops them when the forward ends)."""
        self._stopping = True
        self._inbox.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        self._answer_all_open(BackendUnavailable("the local engine stopped before this request finished"))

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def submit(self, group: list[EngineRequest]) -> None:
        """Queue prompts that should be prefilled together (their shared prefix is computed once)."""
        with self._open_lock:
            for request in group:
                self._open[id(request)] = request
        if self._stopping:
            self._answer_all_open(BackendUnavailable("the local engine has stopped"))
            return
        self._inbox.put(group)

    def warm(self, tokens: np.ndarray) -> int:
        """Block until the KV of `tokens` is cached (pinned); return how many were cached before."""
        job = _Warm(tokens)
        self._inbox.put(job)
        while not job.done.wait(0.5):
            if not self.alive:
                raise BackendUnavailable("the local engine stopped before the prefix was warmed")
        if job.error is not None:
            raise job.error
        return job.cached

    # --- answering, exactly once ------------------------------------------------------------------

    def _answer(self, request: EngineRequest, result: Generation | None, error: BaseException | None) -> None:
        with self._open_lock:
            if self._open.pop(id(request), None) is None:
                return  # answered already (stop() got there first)
        try:
            if error is not None:
                request.sink.on_error(error)
            else:
                assert result is not None
                request.sink.on_done(result)
        except Exception:  # a broken sink must not take the engine down
            log.exception("a sink failed to take its answer")

    def _answer_all_open(self, error: BaseException) -> None:
        with self._open_lock:
            pending = list(self._open.values())
        for request in pending:
            self._answer(request, None, error)

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
                self._fail_rows(error)
        self._answer_all_open(BackendUnavailable("the local engine stopped before this request finished"))
        self._rows, self._batch, self._waiting = [], None, []

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
        new_rows = self._new_rows(admitted)
        if not new_rows:
            return
        try:
            result = prefill(self.model, self.prefix_cache, [row.request for row in new_rows])
        except Exception as error:
            log.exception("prefill failed")
            for row in new_rows:
                self._answer(row.request, None, error)
            return
        for i, row in enumerate(new_rows):
            row.cached_tokens, row.prompt_logprobs = result.cached_tokens[i], result.prompt_logprobs[i]
        self._rows.extend(new_rows)
        self._batch = result.batch if self._batch is None else concat_rows([self._batch, result.batch])
        keep = [i for i, row in enumerate(new_rows) if row.request.sampling.max_tokens > 0]
        now = time.perf_counter()
        for i in keep:
            new_rows[i].first_token_at = now
        self._advance([new_rows[i] for i in keep], result.last_logits[keep])

    def _new_rows(self, admitted: list[EngineRequest]) -> list[Row]:
        """Rows for the admitted requests that are still open; a request whose row cannot be built fails alone."""
        rows = []
        for request in admitted:
            if id(request) not in self._open:
                continue  # answered while queued (the engine is stopping)
            try:
                rows.append(new_row(request, self.model))
            except Exception as error:
                log.exception("a request could not be admitted")
                self._answer(request, None, error)
        return rows

    def _decode_step(self) -> None:
        assert self._batch is not None
        batch = self._batch
        last = torch.tensor([row.generated[-1] for row in self._rows], dtype=torch.long)
        new_mask = torch.ones(batch.rows, 1, dtype=torch.long)
        positions = batch.next_position.unsqueeze(1)
        try:
            with torch.inference_mode(), self.model.lock:
                embeds = self.model.embed(last.unsqueeze(1))
                hidden, self._batch = self.model.forward(batch, embeds, new_mask, positions)
                logits = self.model.logits(hidden[:, -1])
        except Exception as error:  # the rows of this forward fail; the engine goes on with new ones
            log.exception("decode forward failed")
            self._fail_rows(error)
            return
        self.steps += 1
        self.rows_per_step_total += batch.rows
        self._advance(self._rows, logits)

    def _advance(self, rows: list[Row], logits: torch.Tensor) -> None:
        """Choose, check and accept one token for each of `rows` (the rows of `logits`), then retire."""
        choices = choose_tokens(logits, [r.rules for r in rows], [r.generator for r in rows])
        entries = self._logprobs(rows, logits, choices)
        for row, choice, entry in zip(rows, choices, entries, strict=True):
            try:
                if isinstance(choice, BaseException):
                    raise choice
                if row.rules.grammar is not None:
                    row.rules.grammar.accept(choice)
                self._accept(row, choice, entry)
            except Exception as error:
                self._fail_row(row, error)
        self._retire()

    def _logprobs(
        self, rows: list[Row], logits: torch.Tensor, choices: list[Choice]
    ) -> list[TokenLogprob | None]:
        wanted = [i for i, row in enumerate(rows) if row.logprobs is not None and isinstance(choices[i], int)]
        entries: list[TokenLogprob | None] = [None] * len(rows)
        if not wanted:
            return entries
        try:
            computed = token_logprobs(
                logits,
                wanted,
                [int(choices[i]) for i in wanted],  # type: ignore[call-overload]
                [rows[i].request.sampling.top_logprobs for i in wanted],
                self.model.tokenizer,
            )
        except Exception as error:
            for i in wanted:
                choices[i] = error
            return entries
        for i, entry in zip(wanted, computed, strict=True):
            entries[i] = entry
        return entries

    def _accept(self, row: Row, token: int, entry: TokenLogprob | None) -> None:
        row.record(token, entry)
        if token in row.stop_ids:
            return
        delta = row.text.add(token)
        if delta:
            self._emit(row, delta)

    def _emit(self, row: Row, text: str) -> None:
        """Hand a text delta and the tokens since the last one to the sink."""
        ids, entries = row.pending_ids, row.pending_logprobs
        row.pending_ids, row.pending_logprobs = [], []
        try:
            if row.logprobs is None:
                row.request.sink.on_delta(text, ids)
            else:
                row.request.sink.on_delta(text, ids, entries)
        except Exception:  # the consumer is gone: stop decoding for it
            log.exception("a sink failed to take a delta")
            row.request.cancelled = True

    def _fail_row(self, row: Row, error: BaseException) -> None:
        log.warning("request failed alone: %s: %s", type(error).__name__, error)
        row.failed = True
        self._answer(row.request, None, error)

    def _retire(self) -> None:
        """Hand finished rows their result and drop them (and failed rows) from the batch."""
        keep: list[int] = []
        for index, row in enumerate(self._rows):
            if row.failed:
                continue
            room = self.model.max_positions - row.request.prompt_len
            reason = row.finished(room)
            if reason is None:
                keep.append(index)
                continue
            tail = row.text.finish()
            if tail or row.pending_ids:
                self._emit(row, tail)
            self._answer(row.request, result_of(row, reason), None)
        if len(keep) == len(self._rows):
            return
        self._rows = [self._rows[i] for i in keep]
        if not self._rows:
            self._batch = None
            return
        assert self._batch is not None
        self._batch = drop_empty_columns(select_rows(self._batch, keep))

    def _fail_rows(self, error: BaseException) -> None:
        """Fail every running row (they shared the forward that failed) and start from an empty batch."""
        for row in self._rows:
            self._answer(row.request, None, error)
        self._rows = []
        self._batch = None
