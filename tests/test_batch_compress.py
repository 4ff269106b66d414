"""Batch rewrite with the real compression scorer (SmolLM2): the CLI on all three formats, scoring
requests of a batch merged into one scorer call, per-row questions, and SIGKILL then resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from middleware.batch import RowInput
from middleware.batch.checkpoint import Checkpoint
from middleware.batch.compress_rewriter import compress_rewriter
from middleware.batch.formats import read_rows
from middleware.cli import main
from middleware.compress.batching import SharedScorer

from .batch_support.files import write_rows

ROOT = Path(__file__).resolve().parents[1]

STORY = (
    "The library on Elm Street opened in 1987 with 12,500 books and two reading rooms. "
    "Over the years the town council paid for a new wing, a children's corner and a small cafe, "
    "and by 2020 the collection had grown to 48,300 volumes, most of them donated by local families. "
    "Volunteers run a reading club every Tuesday evening at 7:30 pm, and the building is closed on Sundays."
)
PASSAGES = [
    "Mount Kilimanjaro is the highest mountain in Africa, rising 5,895 metres above sea level in Tanzania.",
    "The Danube flows through ten countries, more than any other river in the world, before the Black Sea.",
    "Honey never spoils: archaeologists have found edible honey in ancient Egyptian tombs.",
]


def rows_of(n: int) -> list[dict]:
    rows = [{"id": i, "prompt": f"Note {i}. {STORY}", "q": "When did the library open?"} for i in range(n)]
    rows[1]["prompt"] = "   "  # an empty prompt: written with its error, counted, never stops the run
    return rows


def numbers(text: str) -> list[str]:
    return re.findall(r"\d[\d,.:]*\d|\d", text)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_cli_rewrites_every_row_at_the_requested_rate_and_keeps_numbers_whole(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    write_rows(source, rows_of(4))
    code = main(["batch", "rewrite", str(source), "-o", str(target), "--compress", "rate=0.5"])
    assert code == 0
    out = list(read_rows(target))
    assert [int(r["id"]) for r in out] == [0, 1, 2, 3] and [int(r["promptfold_row"]) for r in out] == [
        0,
        1,
        2,
        3,
    ]
    assert out[1]["promptfold_error"] == "'prompt' is empty"
    for row in (out[0], out[2], out[3]):
        assert not row["promptfold_error"]
        assert 0.4 <= float(row["promptfold_ratio"]) <= 0.6
        assert int(row["promptfold_tokens"]) < int(row["promptfold_original_tokens"])
        kept = set(numbers(row["promptfold_prompt"]))
        assert kept <= set(numbers(row["prompt"]))  # a kept number is a whole original number
    summary = json.loads((tmp_path / f"out.{fmt}.summary.json").read_text())
    assert summary["rows_ok"] == 3 and summary["rows_failed"] == 1 and summary["tokens_saved"] > 0
    assert (tmp_path / f"out.{fmt}.ratios.png").stat().st_size > 1000
    assert '"rows_ok": 3' in capsys.readouterr().out


def test_the_rows_of_a_batch_are_scored_in_one_call(local_backend) -> None:
    rewriter = compress_rewriter({"rate": 0.5})
    inner = rewriter.compressor().scorer.inner  # the model behind the shared scorer
    calls: list[int] = []
    original = inner.score

    async def counting(requests):  # counts the scorer calls that reach the model
        calls.append(len(requests))
        return await original(requests)

    inner.score = counting
    try:
        one = rewriter.rewrite([RowInput(text=f"Note 0. {STORY}")])
        calls_for_one = len(calls)
        calls.clear()
        four = rewriter.rewrite([RowInput(text=f"Note {i}. {STORY}") for i in range(4)])
    finally:
        del inner.score
        rewriter.close()
    assert one[0].error is None and all(o.error is None for o in four)
    assert len(calls) == calls_for_one  # four rows, as many model calls as one row
    assert sum(calls) >= 4 * 1  # every row's requests went into those calls


async def test_a_failure_of_the_merged_call_reaches_every_caller() -> None:
    class Broken:
        name = "broken"

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        async def score(self, requests):
            raise RuntimeError("scorer down")

    scorer = SharedScorer(Broken())
    results = await scorer.gather([scorer.score([]) for _ in range(3)])
    assert [str(r) for r in results] == ["scorer down"] * 3 and scorer.calls == 1


def test_a_row_question_keeps_the_passage_that_answers_it(local_backend) -> None:
    rewriter = compress_rewriter({"rate": 0.4})
    context = "\n\n".join(PASSAGES)
    try:
        [out] = rewriter.rewrite([RowInput(text=context, question="How high is Mount Kilimanjaro?")])
    finally:
        rewriter.close()
    assert out.error is None and "5,895" in str(out.rewritten)


def test_sigkill_mid_run_with_real_compression_then_rerun_gives_every_row_exactly_once(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    total = 24
    write_rows(source, rows_of(total))
    command = [
        sys.executable, "-m", "middleware.cli", "batch", "rewrite", str(source), "-o", str(target),
        "--batch-size", "2", "--compress", "rate=0.5",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once some, but not all, rows are in
        point = Checkpoint.load(target) if Checkpoint.path_for(target).exists() else None
        if point and 4 <= point.rows_done < total:
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = Checkpoint.load(target)
    assert killed_at is not None and not killed_at.complete and 4 <= killed_at.rows_done < total
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    out = list(read_rows(target))
    assert [r["promptfold_row"] for r in out] == list(range(total))
    assert [r["id"] for r in out] == list(range(total))
    assert sum(1 for r in out if r["promptfold_error"]) == 1
    final = Checkpoint.load(target)
    assert final is not None and final.complete and final.runs == 2 and final.ok == total - 1


def test_an_unreachable_backend_is_a_one_line_cli_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    write_rows(source, rows_of(2))
    code = main(
        [
            "batch",
            "rewrite",
            str(source),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--backend",
            "sglang://127.0.0.1:1",
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("promptfold: error: --backend:") and "Traceback" not in error
    assert not (tmp_path / "out.jsonl").exists()  # nothing written
