"""SIGKILL a real `python -m middleware.cli batch rewrite` mid-run, in every format, then resume it: every
input row comes out exactly once, in order, and the bad row carries its error. Also a row that kills the
process itself (as a crash in native code or an out-of-memory kill would): found, then written with its
error, instead of crashing every resume. The rewriter is the package's fake (PROMPTFOLD_BATCH_FAKE_REWRITER,
every other word), slowed down so that the kill lands mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from middleware.batch.checkpoint import Checkpoint
from middleware.batch.fake_rewriter import FAKE_REWRITER_ENV
from middleware.batch.formats import read_rows
from middleware.batch.job import CRASHED

from ..batch_support.files import write_rows

ROOT = Path(__file__).resolve().parents[2]
ROWS = 40
BAD_ROW = 7
# The bad row of each format, as that format can hold it, and the error it must carry.
BAD = {
    "jsonl": (42, "'prompt' must be text, got int"),
    "csv": ("", "'prompt' is empty"),
    "parquet": (None, "the row has no value in 'prompt'"),
}


def dataset(fmt: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{"id": i, "prompt": f"row {i} one two three four"} for i in range(ROWS)]
    rows[BAD_ROW]["prompt"] = BAD[fmt][0]
    if fmt == "jsonl":
        rows[30]["note"] = "a column first seen late"
    return rows


def command(source: Path, target: Path) -> list[str]:
    cli = [sys.executable, "-m", "middleware.cli", "batch", "rewrite"]
    return [*cli, str(source), "-o", str(target), "--batch-size", "4"]


def fake(options: str) -> dict[str, str]:
    return {**os.environ, FAKE_REWRITER_ENV: options}


def kill_mid_run(argv: list[str], target: Path) -> Checkpoint:
    """Start the CLI, SIGKILL it once some but not all rows are in; the checkpoint it left."""
    process = subprocess.Popen(
        argv, cwd=ROOT, env=fake("delay_s=0.1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        point = Checkpoint.load(target) if Checkpoint.path_for(target).exists() else None
        if point and 8 <= point.rows_done < ROWS:
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    killed_at = Checkpoint.load(target)
    assert killed_at is not None
    return killed_at


def finish(argv: list[str], options: str = "") -> None:
    done = subprocess.run(argv, cwd=ROOT, env=fake(options), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def assert_every_row_once(target: Path, errors: dict[int, str]) -> None:
    out = list(read_rows(target))
    assert [int(r["promptfold_row"]) for r in out] == list(range(ROWS))
    assert [int(r["id"]) for r in out] == list(range(ROWS))
    assert {i: r["promptfold_error"] for i, r in enumerate(out) if r["promptfold_error"]} == errors
    assert out[0]["promptfold_prompt"] == "row one three"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_sigkill_mid_run_then_resume_writes_every_row_once_and_the_bad_row_with_its_error(
    tmp_path: Path, fmt: str
) -> None:
    source, target = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    write_rows(source, dataset(fmt))
    argv = command(source, target)
    killed_at = kill_mid_run(argv, target)
    assert not killed_at.complete and 8 <= killed_at.rows_done < ROWS
    finish(argv)
    assert_every_row_once(target, {BAD_ROW: BAD[fmt][1]})
    if fmt == "jsonl":
        assert next(r for r in read_rows(target) if r["id"] == 30)["note"] == "a column first seen late"
    summary = json.loads(target.with_name(target.name + ".summary.json").read_text())
    assert summary["runs"] == 2 and summary["rows_ok"] == ROWS - 1 and summary["rows_failed"] == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_row_that_kills_the_process_is_found_then_written_with_its_error_and_the_job_finishes(
    tmp_path: Path, fmt: str
) -> None:
    source, target = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    rows = dataset(fmt)
    rows[13]["prompt"] = "row 13 POISON"
    write_rows(source, rows)
    argv = command(source, target)
    for run in (1, 2):  # dies with its batch in flight, then with it alone in flight
        died = subprocess.run(argv, cwd=ROOT, env=fake("crash_on=POISON"), capture_output=True)
        assert died.returncode == -signal.SIGKILL, f"run {run}: {died.stderr.decode()}"
    point = Checkpoint.load(target)
    assert point is not None and (point.rows_done, point.in_flight, point.isolating) == (13, 1, True)
    finish(argv, "crash_on=POISON")
    assert_every_row_once(target, {BAD_ROW: BAD[fmt][1], 13: CRASHED})
