"""The serving stage: a chat request that begins with a stored prefix is sent with the gist instead.

Match rule: the request's messages are rendered with the backend's chat template and tokenized; a gist
applies when those tokens begin with the gist's prefix tokens (its system message, or the start of its
first user message, exactly as trained) and it was trained for the serving model's weights. Of several,
the longest prefix wins, then the better held-out agreement. The prompt then goes to the backend as input
embeddings: the k gist vectors, followed by the model's own embeddings of the remaining tokens.

Per request (`promptfold` options): `"gist": false` turns it off, `"gist": {"id": "g-..."}` asks for one
gist (an unknown id is a 404, a gist of another model or of another prefix a 422). A backend that cannot
take input embeddings (SGLang with its radix cache on, OpenAI-compatible servers) runs the request
unchanged and the report says why.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from backend import Backend, UnsupportedRequest

from ...pipeline import Context, Request
from ...report import StageReport
from .errors import GistUnusable
from .model import ServingModel, serving_model
from .prefix import prefix_hash
from .store import GistRecord, GistStore

NAME = "gist"
_EMBEDS_HINTS = {"sglang": " (SGLang takes input_embeds only when launched with --disable-radix-cache)"}


class GistStage:
    name = NAME

    def __init__(self, backend: Backend, store: GistStore) -> None:
        self.backend = backend
        self.store = store
        self._serving: ServingModel | GistUnusable | None = None
        self._serving_lock = asyncio.Lock()

    async def __call__(self, request: Request, context: Context) -> tuple[Request, StageReport | None]:
        asked, wanted = request.options.gist.enabled, request.options.gist.id
        if request.messages is None or request.embeds is not None:
            if wanted:
                return request, StageReport.skipped(NAME, "gists apply to chat messages only")
            return request, None
        records = self.store.records()
        if not records and not wanted:
            return request, None
        ids = self._prompt_ids(request.messages)
        if isinstance(ids, str):
            return request, (StageReport.skipped(NAME, ids) if wanted or records else None)
        matching = _matching(records, ids)
        if wanted:
            matching = [self.store.record(wanted)]  # GistNotFound: 404
        if not matching:
            return request, None
        serving = await self._serving_model()
        if isinstance(serving, GistUnusable):
            return request, StageReport.skipped(NAME, serving.message, gist=matching[0].id)
        if wanted:
            matching[0].check_model(serving.fingerprint, serving.model_id)  # WrongModel: 422
            if matching[0] not in _matching(matching, ids):
                raise GistUnusable(f"the request does not begin with the prefix of gist {wanted}", param="id")
        usable = [r for r in matching if r.model_hash == serving.fingerprint]
        if not usable:
            other = matching[0]
            return request, StageReport.skipped(
                NAME,
                f"gist {other.id} stands for this prefix but was trained for model {other.model_id} "
                f"(weights {other.model_hash[:12]}), not for this server's {serving.model_id} "
                f"(weights {serving.fingerprint[:12]})",
                gist=other.id,
            )
        record = max(usable, key=_preference)
        if not asked:
            return request, StageReport.skipped(NAME, "turned off by the request", gist=record.id)
        if not self.backend.capabilities.input_embeds:
            hint = _EMBEDS_HINTS.get(self.backend.name, "")
            return request, StageReport.skipped(
                NAME,
                f"the {self.backend.name} backend cannot take input embeddings{hint}; "
                "the prompt was sent unchanged",
                gist=record.id,
            )
        return self._apply(request, record, serving, ids)

    def _apply(
        self, request: Request, record: GistRecord, serving: ServingModel, ids: list[int]
    ) -> tuple[Request, StageReport]:
        """The request with its prefix replaced by the gist's vectors (input embeddings), and the report."""
        gist = self.store.load(record.id)
        rest = ids[record.prefix_tokens :]
        embeds = serving.gist_prompt(gist.vectors, rest)
        report = StageReport(
            NAME,
            applied=True,
            tokens_in=len(ids),
            tokens_out=record.tokens + len(rest),
            details={
                "gist": record.id,
                "tokens": record.tokens,
                "prefix_tokens": record.prefix_tokens,
                "prefix_tokens_saved": record.prefix_tokens - record.tokens,
            },
        )
        return replace(request, embeds=embeds), report

    def _prompt_ids(self, messages: list[dict[str, Any]]) -> list[int] | str:
        """The rendered prompt's token ids, or the reason they cannot be known here."""
        tokenizer = self.backend.tokenizer()
        if tokenizer is None:
            return f"the prompt cannot be rendered here to match a gist: the {self.backend.name} backend's tokenizer is not on this machine"
        try:
            return tokenizer.encode(tokenizer.render_chat(messages))
        except UnsupportedRequest as error:
            return f"the prompt cannot be rendered here to match a gist: {error}"

    async def _serving_model(self) -> ServingModel | GistUnusable:
        """Found once per process (fingerprinting the weights takes about half a second)."""
        async with self._serving_lock:
            if self._serving is None:
                try:
                    self._serving = await serving_model(self.backend)
                except GistUnusable as error:
                    self._serving = error
            return self._serving


def _matching(records: list[GistRecord], ids: list[int]) -> list[GistRecord]:
    """The records whose prefix tokens begin `ids` (compared by hash, so no vectors are loaded)."""
    hashes: dict[int, str] = {}
    found = []
    for record in records:
        n = record.prefix_tokens
        if n > len(ids):
            continue
        if n not in hashes:
            hashes[n] = prefix_hash(ids[:n])
        if hashes[n] == record.prefix_hash:
            found.append(record)
    return found


def _preference(record: GistRecord) -> tuple[int, float, str]:
    agreement = record.eval.next_token_agreement if record.eval else -1.0
    return record.prefix_tokens, agreement, record.created
