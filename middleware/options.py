"""Per-request promptfold options, typed at the edge: the `promptfold` object of a request body, the SDK's
keyword arguments, or the batch CLI's `--compress` flags.

    {"promptfold": {"compress": {"rate": 0.4}, "retrieval": {"corpus": "docs"}, "organize": "auto"}}

`request_options(raw, defaults)` validates a request's options merged over the server's `stage_defaults`,
once, before any stage runs: every stage receives its own pydantic model (never a dict), and a bad value
anywhere is an `InvalidRequest` naming its path (`promptfold.organize.max_points`). Shorthands: `compress`
and `gist` take `true`/`false`, `organize` takes a mode name, and `{"enabled": false}` turns a server
default off for one request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .compress.gist.options import GistOptions
from .compress.options import CompressOptions
from .organize.options import OrganizeOptions
from .retrieval.options import RetrievalOptions
from .user_errors import InvalidRequest, validation_error

STAGES = ("compress", "retrieval", "gist", "organize")


class RequestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    compress: CompressOptions | None = Field(None, description="token pruning; None: off")
    retrieval: RetrievalOptions | None = Field(None, description="retrieve passages; None: off")
    gist: GistOptions = Field(default_factory=GistOptions, description="trained gists for a known prefix")
    organize: OrganizeOptions = Field(default_factory=OrganizeOptions, description="skeleton-of-thought")
    bypass: bool = Field(False, description="skip every stage; the request goes to the backend as sent")

    @field_validator("compress", mode="before")
    @classmethod
    def _compress_switch(cls, value: Any) -> Any:
        """`false` or `{"enabled": false}` is off; `true` is on with the defaults."""
        value = normalized("compress", value)
        if isinstance(value, dict) and value.pop("enabled", True) is False:
            return None
        return value

    @field_validator("retrieval", mode="before")
    @classmethod
    def _retrieval_switch(cls, value: Any) -> Any:
        return normalized("retrieval", value)

    @field_validator("gist", "organize", mode="before")
    @classmethod
    def _never_none(cls, value: Any, info: Any) -> Any:
        value = normalized(info.field_name, value)
        return {} if value is None else value

    def plan(self) -> str:
        """The executor this request asks for ('plain' unless an organize mode is set)."""
        mode = self.organize.mode
        return "plain" if mode in ("off", "plain") else mode


def request_options(
    raw: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None = None,
    *,
    where: str | None = "promptfold",
) -> RequestOptions:
    """A request's options over the server defaults, validated once. `raw` is the `promptfold` object as
    sent (or SDK keywords); a problem is an InvalidRequest whose param starts with `where`."""
    if raw is not None and not isinstance(raw, Mapping):
        raise InvalidRequest(f"Invalid '{where}': expected an object.", param=where)
    merged = merge(defaults or {}, raw or {})
    try:
        return RequestOptions.model_validate(merged)
    except ValidationError as error:
        raise validation_error(error, prefix=where) from error


def merge(defaults: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """Request values win; a stage given as an object in both is merged field by field, so a request that
    sets only `rate` keeps the server's other compress defaults."""
    merged: dict[str, Any] = dict(defaults)
    for key, value in request.items():
        if value is None:
            continue
        if key in STAGES and key in merged:
            base, own = normalized(key, merged[key]), normalized(key, value)
            if isinstance(base, dict) and isinstance(own, dict):
                value = {**base, **own}
        merged[key] = value
    return merged


def bypassed() -> RequestOptions:
    return RequestOptions(bypass=True)


def normalized(stage: str, value: Any) -> Any:
    """A stage's option as an object where a shorthand was sent: `true`/`false` -> {"enabled": ...}, an
    organize mode name -> {"mode": ...}; an object asks for its stage unless it says `enabled: false`.
    Anything else is returned as is, for the stage's model to name the wrong type."""
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_unset=True)
    if stage == "organize":
        return (
            {"mode": value}
            if isinstance(value, str)
            else dict(value)
            if isinstance(value, Mapping)
            else value
        )
    if isinstance(value, bool):
        return {"enabled": value}
    if isinstance(value, Mapping):
        return {"enabled": True, **value} if stage != "retrieval" else dict(value)
    return value
