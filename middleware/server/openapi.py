"""The OpenAPI document, complete: routes parse their bodies themselves (`routes/common.py parse_body`), so
FastAPI cannot see them; this module adds each route's request body (from its pydantic model) and the
error responses every route may give (OpenAI's error body), so that client generators and schema-driven
fuzzers can use the document.

    app.openapi = lambda: openapi_document(app)     # what app.py does
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from .responses_api import ResponsesRequest
from .routes.compress import CompressRequest
from .routes.corpora import AddDocuments, CreateCorpus
from .routes.gists import GistCreate
from .routes.tokens import DetokenizeRequest, EmbeddingRequest, TokenizeRequest
from .schemas import ChatCompletionRequest, CompletionRequest, ErrorResponse

REF = "#/components/schemas/{model}"

# The JSON body of each operation that reads one.
REQUEST_BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("/v1/chat/completions", "post"): ChatCompletionRequest,
    ("/v1/completions", "post"): CompletionRequest,
    ("/v1/compress", "post"): CompressRequest,
    ("/v1/corpora", "post"): CreateCorpus,
    ("/v1/corpora/{name}/documents", "post"): AddDocuments,
    ("/v1/gists", "post"): GistCreate,
    ("/v1/responses", "post"): ResponsesRequest,
    ("/v1/embeddings", "post"): EmbeddingRequest,
    **{(f"{prefix}/tokenize", "post"): TokenizeRequest for prefix in ("", "/v1")},
    **{(f"{prefix}/detokenize", "post"): DetokenizeRequest for prefix in ("", "/v1")},
}

# What any route may answer besides its success (README, "errors"); a few surfaces add their own.
COMMON_ERRORS = {
    "400": "malformed JSON or an invalid parameter (`param` names it)",
    "401": "the API key is missing or wrong (when one is set)",
    "404": "unknown model, route or resource",
    "405": "wrong method (the `Allow` header lists the right ones)",
    "408": "the request body did not arrive in time (body_timeout_s)",
    "413": "body larger than max_body_bytes, or a prompt over its token limit",
    "422": "a valid request the backend cannot serve as asked",
    "500": "a bug: the message carries the request id",
    "502": "the backend failed",
    "503": "the backend cannot be reached, or the server is starting",
}
EXTRA_ERRORS = {
    "/v1/corpora": {"409": "the corpus exists or is busy", "501": "faiss-cpu or bm25s is not installed"},
    "/v1/gists": {"409": "a gist is being trained"},
}


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for `app`, with request bodies and error responses; built once, then cached."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    error_ref = _add_schema(components, ErrorResponse)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            model = REQUEST_BODIES.get((path, method))
            if model is not None:
                operation["requestBody"] = _json_body(components, model, path)
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's validation shape: our 4xx all use the error body
            errors = {**COMMON_ERRORS, **_extra_errors(path)}
            for status, description in errors.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": error_ref}}},
                )
    app.openapi_schema = document
    return document


def _json_body(components: dict[str, Any], model: type[BaseModel], path: str) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _add_schema(components, model)}}
    if path.endswith("/documents"):  # text files as a form: id and source are the file names
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            }
        }
    return {"required": True, "content": content}


def _add_schema(components: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    """Put `model` (and the models it uses) in the components; a reference to it."""
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _extra_errors(path: str) -> dict[str, str]:
    for prefix, errors in EXTRA_ERRORS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return errors
    return {}
