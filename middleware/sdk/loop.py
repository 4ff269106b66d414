"""A private event loop in a daemon thread: the SDK's sync and async faces both run the pipeline here,
so that a backend's HTTP client always lives on the one loop that created it."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="promptfold-sdk", daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and block until it is done (from any thread but the loop's)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from its own loop; await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    async def run_async(self, work: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine that runs on the loop, from another event loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    def iterate(self, stream: AsyncIterator[T]) -> Iterator[T]:
        """Consume an async iterator living on the loop as a plain iterator (items as they arrive)."""
        items: queue.Queue[Any] = queue.Queue()
        future = asyncio.run_coroutine_threadsafe(_drain(stream, items.put), self.loop)
        try:
            while True:
                item = items.get()
                if item is _DONE:
                    future.result()  # re-raise what ended the stream, if anything
                    return
                yield item
        finally:
            if not future.done():
                future.cancel()

    async def iterate_async(self, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """The same for an async consumer on another loop."""
        caller = asyncio.get_running_loop()
        items: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            caller.call_soon_threadsafe(items.put_nowait, item)

        future = asyncio.run_coroutine_threadsafe(_drain(stream, put), self.loop)
        try:
            while True:
                item = await items.get()
                if item is _DONE:
                    await asyncio.wrap_future(future)
                    return
                yield item
        finally:
            if not future.done():
                future.cancel()

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


async def _drain(stream: AsyncIterator[Any], put: Any) -> None:
    try:
        async for item in stream:
            put(item)
    finally:
        put(_DONE)
