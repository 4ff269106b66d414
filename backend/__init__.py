"""Everything that runs or reaches a model. `open_backend(spec)` picks one from a short spec string:

    local                       the embedded engine with the packaged SmolLM2 (CPU)
    local:/path/to/hf-folder    the embedded engine with another causal LM
    sglang://HOST:PORT          a running SGLang server (native /generate, prefix cache, input_embeds)
    openai://HOST:PORT/v1       any OpenAI-compatible server over http (vLLM, `transformers serve`)
    openai+https://HOST/v1      the same over https (hosted APIs; key from OPENAI_API_KEY or api_key=)

Engines are imported only when opened, so importing this package costs nothing.
"""

from __future__ import annotations

from typing import Any

from .base import (
    Backend,
    BackendError,
    BackendUnavailable,
    Capabilities,
    ChatMessage,
    Constraint,
    Generation,
    Health,
    Prompt,
    SamplingParams,
    StreamChunk,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    TopLogprob,
    UnsupportedRequest,
    Usage,
)
from .errors import InvalidRequest, MissingDependency, NotFound, UserError

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "Capabilities",
    "ChatMessage",
    "Constraint",
    "Generation",
    "Health",
    "InvalidRequest",
    "MissingDependency",
    "NotFound",
    "Prompt",
    "SamplingParams",
    "StreamChunk",
    "TokenLogprob",
    "ToolCall",
    "ToolCallDelta",
    "TopLogprob",
    "UnsupportedRequest",
    "Usage",
    "UserError",
    "open_backend",
    "parse_backend_spec",
]


def parse_backend_spec(spec: str) -> tuple[str, str]:
    """Split a spec into (kind, target): ('local', path or ''), ('sglang', base URL), ('openai', base URL)."""
    spec = spec.strip()
    if spec == "local" or spec.startswith("local:"):
        return "local", spec[len("local:") :] if spec.startswith("local:") else ""
    for scheme, kind in (("sglang://", "sglang"), ("sglang+https://", "sglang"), ("openai://", "openai")):
        if spec.startswith(scheme):
            transport = "https" if "+https" in scheme else "http"
            return kind, f"{transport}://{spec[len(scheme) :].rstrip('/')}"
    if spec.startswith("openai+https://"):
        return "openai", "https://" + spec[len("openai+https://") :].rstrip("/")
    raise ValueError(
        f"unknown backend '{spec}': use local, local:/path/to/model, sglang://HOST:PORT or openai://HOST:PORT/v1"
    )


def open_backend(spec: str = "local", **options: Any) -> Backend:
    """Open the backend a spec names (see the module docstring); `options` go to its constructor."""
    kind, target = parse_backend_spec(spec)
    if kind == "local":
        from .local import LocalBackend

        return LocalBackend(target or options.pop("model", None), **options)
    if kind == "sglang":
        from .sglang import SGLangBackend

        return SGLangBackend(target, **options)
    from .openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(target, **options)
