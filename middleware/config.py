"""One settings object for the proxy, the SDK and the CLI.

Sources, strongest first: CLI flags (passed as init arguments), environment variables `PROMPTFOLD_*`,
a TOML config file (`--config FILE` or `PROMPTFOLD_CONFIG`), then the defaults below. Example file:

    backend = "sglang://127.0.0.1:30000"
    port = 8000
    api_key = "change-me"
    max_body_bytes = 8_388_608
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMPTFOLD_", extra="ignore", validate_default=True)

    backend: str = Field(
        "local", description="local | local:/path | sglang://HOST:PORT | openai://HOST:PORT/v1"
    )
    model: str | None = Field(None, description="local engine: a model alias or HF folder (default SmolLM2)")
    device: str = Field(
        "cpu",
        description="torch device of the local engine, the compression scorer and its ranker (cpu, cuda)",
    )
    backend_api_key: SecretStr | None = Field(None, description="key sent to an OpenAI-compatible backend")
    tokenizer: str | None = Field(None, description="remote backends: local tokenizer folder for templates")
    backend_timeout_s: float = Field(
        120,
        gt=0,
        description="remote backends: the longest silence while a backend answers, in seconds (a streamed "
        "answer sends tokens as it goes, a whole one only at its end: raise it for long unstreamed answers)",
    )
    backend_connect_timeout_s: float = Field(
        5, gt=0, description="remote backends: seconds to open a connection before the backend counts as down"
    )
    served_model_name: str | None = Field(None, description="extra model name clients may ask for")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key: SecretStr | None = Field(None, description="clients must send `Authorization: Bearer KEY`")
    metrics_need_key: bool = Field(
        True, description="with api_key set, /metrics (traffic and token volumes) asks for the key too"
    )
    docs_need_key: bool = Field(
        True, description="with api_key set, /openapi.json, /docs and /redoc ask for the key too"
    )
    max_body_bytes: int = Field(8 * 2**20, gt=0, description="larger request bodies get 413")
    body_timeout_s: float = Field(
        10,
        gt=0,
        description="a request body must arrive within this many seconds, plus one per 128 KiB received "
        "(a slow-drip client gets 408 and the connection closed)",
    )
    default_max_tokens: int = Field(256, gt=0, description="chat max_tokens when the client sends none")
    max_prompt_tokens: int = Field(
        32768,
        gt=0,
        description="largest prompt (tokens of the request's text) chat, completions and gists take",
    )
    max_compress_tokens: int = Field(
        16384,
        gt=0,
        description="largest text /v1/compress (and a chat request that compresses) takes, tokens",
    )
    max_ingest_tokens: int = Field(
        262144, gt=0, description="largest text one POST /v1/corpora/NAME/documents (JSON) adds, tokens"
    )
    edge_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="threads for the proxy's own CPU steps (reading big bodies, counting tokens)",
    )
    max_n: int = Field(8, ge=1, description="largest `n` (choices per request) accepted")
    log_level: str = "info"
    data_dir: Path = Field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "promptfold"
        ),
        description="where corpora, gists and other state live (PROMPTFOLD_DATA_DIR)",
    )

    compress_workers: int = Field(
        2, ge=1, le=64, description="threads for compression's CPU steps (off the event loop)"
    )
    compress_cache_mb: int = Field(
        64, ge=0, description="memory for cached compressions (MB of text; 0 turns the cache off)"
    )
    compress_scorer: Literal["auto", "local", "backend", "classifier"] = Field(
        "auto",
        description="scorer of requests that name none (auto: the classifier on a CPU once benchmarked "
        "as the default, else local)",
    )

    # Per-stage server defaults, merged under each request's own `promptfold` options.
    stage_defaults: dict[str, Any] = Field(default_factory=dict)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from backend import parse_backend_spec

        parse_backend_spec(value)  # raises ValueError with a sentence naming the accepted forms
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("PROMPTFOLD_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    def backend_options(self) -> dict[str, Any]:
        """Constructor options for `backend.open_backend` that fit the configured backend kind."""
        from backend import parse_backend_spec

        kind, _ = parse_backend_spec(self.backend)
        if kind == "local":
            return {"model": self.model, "device": self.device}
        options: dict[str, Any] = {
            "tokenizer": self.tokenizer,
            "timeout_s": self.backend_timeout_s,
            "connect_timeout_s": self.backend_connect_timeout_s,
        }
        if kind == "openai" and self.backend_api_key is not None:
            options["api_key"] = self.backend_api_key.get_secret_value()
        return options


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Settings from all sources; `overrides` (e.g. CLI flags) win. None-valued overrides are ignored."""
    if config_file is not None:
        path = Path(config_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"config file '{path}' does not exist")
        os.environ["PROMPTFOLD_CONFIG"] = str(path)
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
