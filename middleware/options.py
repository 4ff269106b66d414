"""Per-request promptfold options: the `promptfold` object of a request body (or SDK keyword arguments).

    {"promptfold": {"compress": {"rate": 0.4}, "retrieval": {"corpus": "docs"}, "organize": "auto"}}

Each stage validates its own sub-object; here only the envelope is checked, so a misspelt stage name
is a clear 400 instead of being ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

ORGANIZE_MODES = ("auto", "sot", "pipelined", "off", "plain")


class RequestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    compress: dict[str, Any] | bool | None = Field(None, description="token pruning options, or false")
    retrieval: dict[str, Any] | None = Field(None, description="retrieve passages from a corpus")
    gist: dict[str, Any] | bool | None = Field(None, description="use a trained gist for a known prefix")
    organize: str | dict[str, Any] | None = Field(None, description="auto | sot | pipelined | off")
    bypass: bool = Field(False, description="skip every stage; the request goes to the backend as sent")

    @field_validator("organize")
    @classmethod
    def _known_organize_mode(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        mode = value.get("mode") if isinstance(value, dict) else value
        if mode is not None and mode not in ORGANIZE_MODES:
            raise ValueError(f"unknown organize mode '{mode}': use one of {', '.join(ORGANIZE_MODES[:4])}")
        return value

    def plan(self) -> str:
        """The executor this request asks for ('plain' unless an organize mode is set)."""
        mode = self.organize.get("mode") if isinstance(self.organize, dict) else self.organize
        if mode in (None, "off", "plain"):
            return "plain"
        return str(mode)

    def merged_over(self, defaults: dict[str, Any]) -> RequestOptions:
        """These options with server defaults filled in where the request is silent."""
        data = self.model_dump(exclude_none=True)
        merged = {**defaults, **data}
        for key, value in defaults.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                merged[key] = {**value, **data[key]}
        return RequestOptions.model_validate(merged)
