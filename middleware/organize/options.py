"""The `organize` request option: a mode name, or an object with the mode and its knobs.

{"promptfold": {"organize": "auto"}}
{"promptfold": {"organize": {"mode": "pipelined", "max_points": 6, "point_tokens": 48}}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["auto", "sot", "pipelined", "off", "plain"]


class OrganizeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = "off"
    max_points: int = Field(8, ge=2, le=10, description="most points the skeleton may have")
    skeleton_tokens: int = Field(80, ge=8, le=512, description="token limit of the skeleton call")
    point_tokens: int | None = Field(
        None, ge=1, description="token limit per point; default: the request's max_tokens / points"
    )
    min_point_tokens: int = Field(
        16, ge=1, description="floor of the per-point limit when max_tokens is split between points"
    )
    expected_points: int = Field(
        4, ge=2, le=10, description="pipelined: points assumed while the skeleton is still being written"
    )
    prefer: Literal["sot", "pipelined"] | None = Field(
        None, description="auto: which organized plan to run when the router says yes"
    )

    @classmethod
    def from_request(cls, value: str | dict[str, Any] | None) -> OrganizeOptions:
        """Validate the request's `organize` value (raises pydantic's ValidationError -> HTTP 400)."""
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls.model_validate({"mode": value})
        return cls.model_validate(value)

    def point_budget(self, max_tokens: int, points: int) -> int:
        """Tokens one point may use: the answer budget split between the points (never below the floor)."""
        share = max(max_tokens // max(points, 1), min(self.min_point_tokens, max_tokens))
        return min(share, self.point_tokens) if self.point_tokens is not None else share
