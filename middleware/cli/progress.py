"""A rich progress bar for long CLI work: rows done, rows/s, tokens saved and the time left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def batch_progress() -> Iterator[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..batch import Progress as JobProgress

    columns = (
        TextColumn("[bold]rewriting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} rows/s"),
        TextColumn("{task.fields[saved]:,} tokens saved"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as bar:
        task = bar.add_task("rows", total=None, rate="-", saved=0)
        state = {"saved": 0, "rows": 0, "began": time.perf_counter()}

        def start(total: int, done: int) -> None:
            bar.update(task, total=total, completed=done)

        def advance(rows: int, saved: int) -> None:
            # rows/s of this run (a resumed job's earlier rows are not in it), over its whole time
            state["saved"] += saved
            state["rows"] += rows
            speed = state["rows"] / max(time.perf_counter() - state["began"], 1e-9)
            bar.update(task, advance=rows, saved=state["saved"], rate=f"{speed:.2f}")

        yield JobProgress(start=start, advance=advance)
