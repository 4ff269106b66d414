"""promptfold's SDK surface. Imports are lazy so that `promptfold --help` stays instant.

from middleware import Middleware
mw = Middleware()                      # embedded SmolLM2 on the CPU; or "sglang://HOST:PORT"
print(mw.chat("What is 2+2?", temperature=0).text)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sdk import ChatResult, InvalidChatRequest, Middleware

__all__ = ["ChatResult", "InvalidChatRequest", "Middleware"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'middleware' has no attribute {name!r}")
