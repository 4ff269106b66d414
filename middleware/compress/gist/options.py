"""The `gist` request option: `false` turns gists off for a request, `{"id": "g-..."}` asks for one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GistOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="false: send the prompt as it is, even if a gist matches")
    id: str | None = Field(None, description="the gist to use (404 if unknown, 422 if it does not apply)")

    @property
    def asked(self) -> bool:
        """The request names a gist (or turns gists off): the report says what happened either way."""
        return self.id is not None
