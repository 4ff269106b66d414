"""Several streams of chunks as one, in the order the pieces arrive (n choices, or a list of prompts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar, cast

T = TypeVar("T")
_END = object()


async def merged(streams: Sequence[AsyncIterator[T]]) -> AsyncIterator[T]:
    """Every item of every stream as it comes; the first failure stops the others and is raised here.
    Leaving early (the client went away) cancels them all."""
    if len(streams) == 1:
        async for item in streams[0]:
            yield item
        return
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()

    async def pump(stream: AsyncIterator[T]) -> None:
        try:
            async for item in stream:
                await queue.put((item, None))
        except Exception as error:
            await queue.put((_END, error))
            return
        await queue.put((_END, None))

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    try:
        running = len(tasks)
        while running:
            got, error = await queue.get()
            if error is not None:
                raise error
            if got is _END:
                running -= 1
            else:
                yield cast(T, got)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
