"""promptfold as a library: `Middleware` runs the proxy's pipeline in-process."""

from .client import ChatResult, Middleware
from .wrap import InvalidChatRequest

__all__ = ["ChatResult", "InvalidChatRequest", "Middleware"]
