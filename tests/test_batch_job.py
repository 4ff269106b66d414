"""The batch job's bookkeeping: order, every row exactly once, failures kept, resume after a crash.

The rewriter here is the package's fake (FakeRewriter: every other word, words as tokens) so that these
properties are checked fast and exactly; tests/test_batch_compress.py runs the same job with the real
compression scorer, tests/test_batch_formats.py covers formats and encodings, tests/faults/ real SIGKILLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from middleware.batch import JobError, JobSpec, RowInput, RowOutput, run_job
from middleware.batch.checkpoint import Checkpoint
from middleware.batch.fake_rewriter import FakeRewriter
from middleware.batch.formats import read_rows
from middleware.batch.job import CRASHED

from .batch_support.files import dataset, write_rows


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_every_row_is_written_once_in_order_with_its_columns_and_stats(tmp_path: Path, fmt: str) -> None:
    source, target = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    rows = dataset(11)
    if fmt == "parquet":
        rows[5]["prompt"] = "5"  # parquet columns have one type; keep the mixed-type case to jsonl
    write_rows(source, rows)
    double = FakeRewriter()
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
    run_job(JobSpec(source, target), FakeRewriter())
    again = run_job(JobSpec(source, target), FakeRewriter())
    assert again.resumed_from == 6 and len(list(read_rows(target))) == 6
    with pytest.raises(JobError, match="another input or other options"):
        run_job(JobSpec(source, target, question_field="q"), FakeRewriter())
    (tmp_path / "foreign.jsonl").write_text('{"a": 1}\n')
    with pytest.raises(JobError, match="--overwrite"):
        run_job(JobSpec(source, tmp_path / "foreign.jsonl"), FakeRewriter())


def test_a_torn_batch_after_the_last_checkpoint_is_dropped_on_resume(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_rows(source, dataset(12))
    run_job(JobSpec(source, target, batch_size=4), FakeRewriter())
    point = Checkpoint.load(target)
    assert point is not None
    # Simulate a kill after 8 rows were checkpointed and half a batch more reached the file.
    lines = target.read_text().splitlines(keepends=True)
    point.rows_done, point.position, point.complete = 8, len("".join(lines[:8]).encode()), False
    point.save(target)
    target.write_text("".join(lines[:10]) + '{"half": ')
    run_job(JobSpec(source, target, batch_size=4), FakeRewriter())
    assert [r["promptfold_row"] for r in read_rows(target)] == list(range(12))


class ProcessDied(BaseException):
    """Stands for a crash nothing in Python survives (native code, out of memory): it escapes the job."""


class CrashingRewriter(FakeRewriter):
    """The fake rewriter, but a row containing `poison` "crashes the process"; `crashes_left` limits how
    often (None: every time, as a row that really crashes the process would)."""

    def __init__(self, poison: str, crashes_left: int | None = None) -> None:
        super().__init__()
        self.poison, self.crashes_left = poison, crashes_left

    def rewrite(self, rows: list[RowInput]) -> list[RowOutput]:
        if any(self.poison in (row.text or "") for row in rows) and self.crashes_left != 0:
            self.crashes_left = None if self.crashes_left is None else self.crashes_left - 1
            raise ProcessDied
        return super().rewrite(rows)


def test_a_row_that_crashes_the_process_is_isolated_then_written_with_its_error(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = dataset(12)
    rows[6]["prompt"] = "POISON row six"
    write_rows(source, rows)
    spec = JobSpec(source, target, batch_size=4)
    with pytest.raises(ProcessDied):  # first run: dies with the batch of rows 4-7 in flight
        run_job(spec, CrashingRewriter("POISON"))
    first = Checkpoint.load(target)
    assert first is not None and (first.rows_done, first.in_flight, first.isolating) == (4, 4, False)
    second_rewriter = CrashingRewriter("POISON")
    with pytest.raises(ProcessDied):  # second run: rows 4-7 one at a time, dies on row 6 alone
        run_job(spec, second_rewriter)
    second = Checkpoint.load(target)
    assert second is not None and (second.rows_done, second.in_flight, second.isolating) == (6, 1, True)
    assert second_rewriter.batches == [1]  # row 4 alone; row 5 is not text (never rewritten); row 6 died
    run_job(spec, CrashingRewriter("POISON"))  # third run: row 6 is written with its error, the rest go on
    out = list(read_rows(target))
    assert [r["promptfold_row"] for r in out] == list(range(12)) and [r["id"] for r in out] == list(range(12))
    assert out[6]["promptfold_error"] == CRASHED and out[6]["prompt"] == "POISON row six"
    assert all(not out[i]["promptfold_error"] for i in (0, 1, 2, 4, 7, 8, 9, 10, 11))
    final = Checkpoint.load(target)
    assert final is not None and final.complete and final.runs == 3 and final.failed == 3


def test_after_an_innocent_crash_mid_batch_the_batch_is_rewritten_row_by_row_and_no_row_fails(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"id": i, "prompt": f"row {i} one two three"} for i in range(12)]
    rows[5]["prompt"] = "row 5 KILLED here once"
    write_rows(source, rows)
    spec = JobSpec(source, target, batch_size=4)
    with pytest.raises(ProcessDied):
        run_job(spec, CrashingRewriter("KILLED", crashes_left=1))
    resumed = CrashingRewriter("KILLED", crashes_left=0)
    run_job(spec, resumed)
    assert resumed.batches == [1, 1, 1, 1, 4]  # the batch in flight alone, row by row, then batches again
    out = list(read_rows(target))
    assert [r["promptfold_row"] for r in out] == list(range(12))
    assert not any(r["promptfold_error"] for r in out)


def test_a_batch_the_rewriter_fails_is_retried_row_by_row_so_only_its_bad_row_fails(tmp_path: Path) -> None:
    class FailsBatchesWithBad(FakeRewriter):
        def rewrite(self, rows: list[RowInput]) -> list[RowOutput]:
            if any("BAD" in (row.text or "") for row in rows):
                raise RuntimeError("the model choked")
            return super().rewrite(rows)

    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_rows(source, [{"prompt": f"row {i} BAD" if i == 2 else f"row {i} fine"} for i in range(4)])
    result = run_job(JobSpec(source, target, batch_size=4), FailsBatchesWithBad())
    errors = [r["promptfold_error"] for r in read_rows(target)]
    assert errors == [None, None, "RuntimeError: the model choked", None]
    assert result.checkpoint.errors == {"RuntimeError: the model choked": 1}


def test_a_row_the_output_cannot_hold_is_written_with_its_values_as_json_in_its_error(tmp_path: Path) -> None:
    class RewritesToANumber(FakeRewriter):  # a buggy rewriter: promptfold_prompt is a string column
        def rewrite(self, rows: list[RowInput]) -> list[RowOutput]:
            outputs = super().rewrite(rows)
            outputs[1].rewritten = 123  # type: ignore[assignment]
            return outputs

    source, target = tmp_path / "in.jsonl", tmp_path / "out.parquet"
    write_rows(source, [{"id": i, "prompt": f"row {i} one two"} for i in range(3)])
    result = run_job(JobSpec(source, target, batch_size=3), RewritesToANumber())
    out = list(read_rows(target))
    assert [r["promptfold_row"] for r in out] == [0, 1, 2]
    assert out[0]["promptfold_prompt"] == "row one" and out[2]["promptfold_error"] is None
    error: Any = out[1]["promptfold_error"]
    assert error.startswith("the output cannot hold this row's values")
    assert '"id": 1' in error and '"prompt": "row 1 one two"' in error and '"promptfold_prompt": 123' in error
    assert result.checkpoint.ok == 2 and result.checkpoint.failed == 1
