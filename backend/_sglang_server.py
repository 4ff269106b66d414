"""What one SGLang server says about itself, and where its tokenizer is on this machine (no I/O state:
the backend in `sglang.py` keeps what it learns)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ._remote import http_error, timeout, transport_error
from .base import BackendError

INFO_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SGLangServerInfo:
    """What the server says about itself; None where it did not say."""

    model_path: str
    context_len: int | None  # tokens
    radix_cache: bool | None  # False when launched with --disable-radix-cache
    version: str | None
    # SGLang honours `sampling_seed` only when launched with --enable-deterministic-inference
    # (seen on 0.5.17: the same seed gave different samples without it).
    deterministic: bool = False


async def read_server_info(client: httpx.AsyncClient, base_url: str) -> SGLangServerInfo:
    """What the server says about itself (model path, context length, cache mode, version)."""
    model = await _get_json_first(client, base_url, "/model_info", "/get_model_info") or {}
    server = await _get_json_first(client, base_url, "/server_info", "/get_server_info") or {}
    context = server.get("context_length")
    if not isinstance(context, int):  # usually unset: the model's own length is on /v1/models
        listing = await _get_json_first(client, base_url, "/v1/models") or {}
        context = next((m.get("max_model_len") for m in listing.get("data") or []), None)
    radix_off = server.get("disable_radix_cache")
    return SGLangServerInfo(
        model_path=str(model.get("model_path") or server.get("model_path") or ""),
        context_len=context if isinstance(context, int) else None,
        radix_cache=not radix_off if isinstance(radix_off, bool) else None,
        version=server.get("version"),
        deterministic=server.get("enable_deterministic_inference") is True,
    )


async def _get_json_first(client: httpx.AsyncClient, base_url: str, *paths: str) -> dict[str, Any] | None:
    """GET the first of `paths` the server has (SGLang renamed /get_server_info to /server_info)."""
    for path in paths:
        url = base_url + path
        try:
            response = await client.get(url, timeout=timeout(INFO_TIMEOUT_S))
        except httpx.HTTPError as exc:
            raise transport_error(exc, url, "sglang", INFO_TIMEOUT_S) from exc
        if response.status_code == 404:
            continue
        if response.status_code >= 400:
            raise http_error(response, "sglang")
        try:
            body = response.json()
        except ValueError as exc:
            raise BackendError(f"SGLang at {url} answered with something that is not JSON") from exc
        return body if isinstance(body, dict) else None
    return None


def model_path_sync(base_url: str, headers: Any) -> str | None:
    """The server's model path for the sync methods before `connect()` ran (a blocking GET of at most
    5 s); "" if the server does not say, None if it cannot be reached."""
    for path in ("/model_info", "/get_model_info"):
        try:
            response = httpx.get(base_url + path, headers=headers, timeout=5.0)
        except httpx.HTTPError:
            return None
        if response.status_code == 200:
            try:
                return str(response.json().get("model_path") or "")
            except (ValueError, AttributeError):
                return ""
    return ""


def has_tokenizer(folder: str) -> bool:
    """Whether `folder` is a folder on this machine that holds a tokenizer."""
    if not folder:
        return False
    return any((Path(folder) / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json"))
