"""Corpus routes of the proxy:

    POST   /v1/corpora                              {"name", "embedding_model"?, "chunk_tokens"?, "overlap_tokens"?}
    GET    /v1/corpora                              every corpus with its counts
    GET    /v1/corpora/{name}
    DELETE /v1/corpora/{name}
    POST   /v1/corpora/{name}/documents             JSON {"documents": [{"id", "text", "source"?, "title"?}]}
                                                    or multipart/form-data files (id and source = file name)
    GET    /v1/corpora/{name}/documents
    DELETE /v1/corpora/{name}/documents/{id}
    GET    /v1/corpora/{name}/search?q=...&k=5[&mmr=0.7]

A document that is not UTF-8 text (a PDF, an image, another encoding) is refused with 415; an unknown
corpus or document is 404; an existing corpus name 409; an empty query or a bad field 400.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ...retrieval.catalog import Corpora
from ...retrieval.chunking import ChunkingConfig
from ...retrieval.corpus import DocumentInput, SearchConfig
from ...retrieval.errors import InvalidInput, NotText
from ...retrieval.ingest import decode_text
from ...retrieval.stage import require_packages
from ..state import get_state
from .common import parse_body


class CreateCorpus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    embedding_model: str | None = Field(
        None, description="local sentence-transformers folder (default MiniLM)"
    )
    chunk_tokens: int = Field(ChunkingConfig.max_tokens, ge=8, le=4096)
    overlap_tokens: int = Field(ChunkingConfig.overlap_tokens, ge=0)


class DocumentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    source: str | None = None
    title: str | None = None


class AddDocuments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentBody] = Field(min_length=1)


def build_router(auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])
    router.add_api_route("/v1/corpora", create_corpus, methods=["POST"])
    router.add_api_route("/v1/corpora", list_corpora, methods=["GET"])
    router.add_api_route("/v1/corpora/{name}", get_corpus, methods=["GET"])
    router.add_api_route("/v1/corpora/{name}", drop_corpus, methods=["DELETE"])
    router.add_api_route("/v1/corpora/{name}/documents", add_documents, methods=["POST"])
    router.add_api_route("/v1/corpora/{name}/documents", list_documents, methods=["GET"])
    router.add_api_route(
        "/v1/corpora/{name}/documents/{document_id:path}", delete_document, methods=["DELETE"]
    )
    router.add_api_route("/v1/corpora/{name}/search", search, methods=["GET"])
    return router


def _corpora(request: Request) -> Corpora:
    require_packages(corpus=True)  # a clear 501 naming faiss-cpu or bm25s when one is missing
    return get_state(request).corpora


async def create_corpus(request: Request) -> JSONResponse:
    from backend.models import ModelNotFound

    body = await parse_body(request, CreateCorpus)
    chunking = ChunkingConfig(body.chunk_tokens, body.overlap_tokens)
    try:
        corpus = await asyncio.to_thread(
            _corpora(request).create, body.name, embedding_model=body.embedding_model, chunking=chunking
        )
    except ModelNotFound as error:
        raise InvalidInput(str(error), param="embedding_model") from error
    return JSONResponse({"object": "corpus", **corpus.info()}, status_code=201)


async def list_corpora(request: Request) -> dict[str, Any]:
    corpora = _corpora(request)
    infos = await asyncio.to_thread(lambda: [corpora.get(n).info() for n in corpora.names()])
    return {"object": "list", "data": [{"object": "corpus", **info} for info in infos]}


async def get_corpus(name: str, request: Request) -> dict[str, Any]:
    corpus = await asyncio.to_thread(_corpora(request).get, name)
    return {"object": "corpus", **corpus.info()}


async def drop_corpus(name: str, request: Request) -> dict[str, Any]:
    await asyncio.to_thread(_corpora(request).drop, name)
    return {"object": "corpus.deleted", "name": name, "deleted": True}


async def add_documents(name: str, request: Request) -> dict[str, Any]:
    corpus = await asyncio.to_thread(_corpora(request).get, name)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        documents = await _uploaded_documents(request)
    elif content_type.startswith("application/json") or not content_type:
        body = await parse_body(request, AddDocuments)
        documents = [DocumentInput(d.id, d.text, d.source, d.title) for d in body.documents]
    else:
        raise NotText(
            f"Unsupported content type '{content_type}': send JSON {{\"documents\": [...]}} or "
            "multipart/form-data text files."
        )
    count = get_state(request).pipeline.count_tokens()
    result = await asyncio.to_thread(corpus.add, documents, count)
    return {
        "object": "corpus.documents",
        "corpus": name,
        "added": result.added,
        "replaced": result.replaced,
        "chunks": result.chunks,
        "tokens": result.tokens,
        "generation": result.generation,
    }


async def list_documents(name: str, request: Request) -> dict[str, Any]:
    corpus = await asyncio.to_thread(_corpora(request).get, name)
    return {"object": "list", "corpus": name, "data": await asyncio.to_thread(corpus.documents)}


async def delete_document(name: str, document_id: str, request: Request) -> dict[str, Any]:
    corpus = await asyncio.to_thread(_corpora(request).get, name)
    await asyncio.to_thread(corpus.delete, [document_id])
    return {"object": "corpus.document.deleted", "corpus": name, "id": document_id, "deleted": True}


async def search(
    name: str,
    request: Request,
    q: str | None = None,
    k: int = 5,
    mmr: float | None = None,
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid",
) -> dict[str, Any]:
    if q is None or not q.strip():
        raise InvalidInput("The query 'q' is missing or empty.", param="q")
    if not 1 <= k <= 100:
        raise InvalidInput("Invalid 'k': it must be between 1 and 100.", param="k")
    if mmr is not None and not 0 <= mmr <= 1:
        raise InvalidInput("Invalid 'mmr': it must be between 0 and 1.", param="mmr")
    corpus = await asyncio.to_thread(_corpora(request).get, name)
    passages = await asyncio.to_thread(corpus.search, q, k, SearchConfig(mmr_lambda=mmr, mode=mode))
    return {"object": "list", "corpus": name, "query": q, "data": [p.as_dict() for p in passages]}


async def _uploaded_documents(request: Request) -> list[DocumentInput]:
    from starlette.datastructures import UploadFile

    form = await request.form()
    documents: list[DocumentInput] = []
    for field_name, value in form.multi_items():
        if not isinstance(value, UploadFile):
            continue
        name = value.filename or field_name
        documents.append(DocumentInput(name, decode_text(await value.read(), name), source=name))
    if not documents:
        raise InvalidInput("The form holds no file.", param="files")
    return documents
