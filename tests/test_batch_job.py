"""The batch job's bookkeeping: order, every row exactly once, failures kept, formats, resume after SIGKILL.

The rewriter here is a named test double (EveryOtherWordRewriter) so that these properties are checked
fast and exactly; tests/test_batch_compress.py runs the same job with the real compression scorer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from middleware.batch import JobError, JobSpec, run_job
from middleware.batch.checkpoint import Checkpoint
from middleware.batch.formats import read_rows

from .batch_support.doubles import EveryOtherWordRewriter

ROOT = Path(__file__).resolve().parents[1]


def write_rows(path: Path, rows: list[dict]) -> None:
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".csv":
        import csv

        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)


def dataset(n: int) -> list[dict]:
    rows = [
        {"id": i, "prompt": f"row {i} says one two three four five six", "q": "which row?"} for i in range(n)
    ]
    rows[3]["prompt"] = ""  # an empty prompt: written with its error, counted
    rows[5]["prompt"] = 42  # the wrong type
    return rows


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_every_row_is_written_once_in_order_with_its_columns_and_stats(tmp_path: Path, fmt: str) -> None:
    source, target = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    rows = dataset(11)
    if fmt == "parquet":
        rows[5]["prompt"] = "5"  # parquet columns have one type; keep the mixed-type case to jsonl
    write_rows(source, rows)
    double = EveryOtherWordRewriter()
    result = run_job(JobSpec(source, target, field="prompt", question_field="q", batch_size=4), double)
    out = list(read_rows(target))
    assert [int(r["promptfold_row"]) for r in out] == list(range(11))
    assert [str(r["id"]) for r in out] == [str(i) for i in range(11)]
    assert out[0]["promptfold_prompt"] == "row says two four six"
    assert float(out[0]["promptfold_ratio"]) == pytest.approx(5 / 9, abs=1e-3)
    assert "empty" in out[3]["promptfold_error"]
    failed = 2 if fmt == "jsonl" else 1  # CSV cells are all text: 42 is a valid prompt there
    assert result.checkpoint.failed == failed and result.checkpoint.ok == 11 - failed
    assert double.batches[0] == 3  # batch of 4 minus the empty row: rows reach the rewriter together


def test_a_finished_job_is_not_redone_and_another_job_is_refused(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_rows(source, dataset(6))
    run_job(JobSpec(source, target), EveryOtherWordRewriter())
    again = run_job(JobSpec(source, target), EveryOtherWordRewriter())
    assert again.resumed_from == 6 and len(list(read_rows(target))) == 6
    with pytest.raises(JobError, match="another input or other options"):
        run_job(JobSpec(source, target, question_field="q"), EveryOtherWordRewriter())
    (tmp_path / "foreign.jsonl").write_text('{"a": 1}\n')
    with pytest.raises(JobError, match="--overwrite"):
        run_job(JobSpec(source, tmp_path / "foreign.jsonl"), EveryOtherWordRewriter())


def test_sigkill_mid_run_then_rerun_gives_every_row_exactly_once(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_rows(source, dataset(40))
    command = [sys.executable, "-m", "tests.batch_support.run_job", str(source), str(target), "0.15"]
    process = subprocess.Popen(command, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once some, but not all, rows are in
        point = Checkpoint.load(target) if Checkpoint.path_for(target).exists() else None
        if point and 8 <= point.rows_done < 40:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = Checkpoint.load(target)
    assert killed_at is not None and not killed_at.complete and killed_at.rows_done < 40
    subprocess.run([*command[:-1], "0"], cwd=ROOT, check=True)
    out = list(read_rows(target))
    assert [r["promptfold_row"] for r in out] == list(range(40))
    assert [r["id"] for r in out] == list(range(40))
    final = Checkpoint.load(target)
    assert final is not None and final.complete and final.runs == 2 and final.ok + final.failed == 40


def test_a_torn_batch_after_the_last_checkpoint_is_dropped_on_resume(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_rows(source, dataset(12))
    run_job(JobSpec(source, target, batch_size=4), EveryOtherWordRewriter())
    point = Checkpoint.load(target)
    assert point is not None
    # Simulate a kill after 8 rows were checkpointed and half a batch more reached the file.
    lines = target.read_text().splitlines(keepends=True)
    point.rows_done, point.position, point.complete = 8, len("".join(lines[:8]).encode()), False
    point.save(target)
    target.write_text("".join(lines[:10]) + '{"half": ')
    run_job(JobSpec(source, target, batch_size=4), EveryOtherWordRewriter())
    assert [r["promptfold_row"] for r in read_rows(target)] == list(range(12))
