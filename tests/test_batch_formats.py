"""What reaches the output of a batch job: a stable schema in every format, bad rows written with their
error, and inputs in any common text encoding (or a one-line error saying what to do)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from middleware.batch import JobSpec, run_job
from middleware.batch.fake_rewriter import FAKE_REWRITER_ENV, FakeRewriter
from middleware.batch.formats import read_rows
from middleware.batch.summary import summary_of
from middleware.cli import main

from .batch_support.files import write_rows

FRENCH = "Le café de la gare sert une crème brûlée délicieuse; les élèves étudient près du château."


def rewrite(source: Path, target: Path, **spec: Any) -> list[dict[str, Any]]:
    run_job(JobSpec(source, target, **({"batch_size": 4} | spec)), FakeRewriter())
    return list(read_rows(target))


def test_a_prompt_that_is_not_text_is_written_with_its_error_to_parquet_and_read_back_as_it_was(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.parquet"
    write_rows(source, [{"id": 0, "prompt": "one two three"}, {"id": 1, "prompt": 42}])
    out = rewrite(source, target)
    assert out[1]["promptfold_error"] == "'prompt' must be text, got int"
    assert [r["prompt"] for r in out] == ["one two three", 42]  # the column's JSON text, decoded back
    assert out[0]["promptfold_prompt"] == "one three"


def test_a_column_whose_type_changes_after_many_rows_is_kept_in_parquet_as_json_text(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.parquet"
    rows: list[dict[str, Any]] = [{"id": i, "score": i, "prompt": f"row {i} text"} for i in range(300)]
    rows[280]["id"] = "x-280"  # after the first 256 rows, once read to guess the types
    rows[290]["score"] = 2.5  # int then float: one float column, as pyarrow would infer for the whole column
    write_rows(source, rows)
    out = rewrite(source, target, batch_size=64)
    assert [r["id"] for r in out] == [*range(280), "x-280", *range(281, 300)]
    schema = pq.read_schema(target)
    assert str(schema.field("id").type) == "string" and schema.field("id").metadata == {
        b"promptfold.encoding": b"json"
    }
    assert str(schema.field("score").type) == "double" and out[290]["score"] == 2.5


def test_the_promptfold_columns_have_fixed_types_in_parquet(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.parquet"
    write_rows(source, [{"prompt": ""}, {"prompt": None}])  # every added column null in every row
    rewrite(source, target)
    types = {f.name: str(f.type) for f in pq.read_schema(target) if f.name.startswith("promptfold_")}
    assert types == {
        "promptfold_row": "int64",
        "promptfold_prompt": "string",
        "promptfold_original_tokens": "int64",
        "promptfold_tokens": "int64",
        "promptfold_ratio": "double",
        "promptfold_error": "string",
    }


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_column_first_seen_late_is_kept(tmp_path: Path, fmt: str) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / f"out.{fmt}"
    rows: list[dict[str, Any]] = [{"id": i, "prompt": f"row {i}"} for i in range(10)]
    rows[8]["source"] = "late"
    write_rows(source, rows)
    out = rewrite(source, target)
    assert [r.get("source") or None for r in out] == [None] * 8 + ["late", None]
    if fmt != "jsonl":  # a JSONL row keeps just its own keys; a table has every column in every row
        assert list(out[0])[:3] == ["id", "prompt", "source"]  # input columns in first-seen order, then ours


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_bad_rows_are_written_with_their_error_and_counted_in_every_format(tmp_path: Path, fmt: str) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / f"out.{fmt}"
    rows: list[dict[str, Any]] = [
        {"id": 0, "prompt": "a good prompt"},
        {"id": 1, "prompt": 42},
        {"id": 2},
        {"id": 3, "prompt": "   "},
        {"id": 4, "prompt": None},
        {"id": 5, "prompt": ["a", "list"]},
    ]
    write_rows(source, rows)
    spec = JobSpec(source, target, batch_size=4)
    result = run_job(spec, FakeRewriter())
    errors = [r["promptfold_error"] or None for r in read_rows(target)]
    assert errors == [
        None,
        "'prompt' must be text, got int",
        "the row has no field 'prompt'",
        "'prompt' is empty",
        "the row has no value in 'prompt'",
        "'prompt' must be text, got list",
    ]
    summary = summary_of(spec, result, {})
    assert summary["rows_ok"] == 1 and summary["rows_failed"] == 5
    assert summary["rows_failed_by_reason"]["'prompt' is empty"] == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_messages_that_are_not_a_list_of_messages_are_written_with_their_error(
    tmp_path: Path, fmt: str
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / f"out.{fmt}"
    chat = [{"role": "user", "content": "one two three four"}]
    rows = [{"chat": chat}, {"chat": "hello"}, {"chat": {"role": "user"}}, {"chat": []}, {"chat": ["hi"]}]
    write_rows(source, rows)
    out = rewrite(source, target, field=None, messages_field="chat")
    errors = [r["promptfold_error"] or None for r in out]
    assert errors == [
        None,
        "'chat' is not a JSON list of messages",
        "'chat' must be a list of messages, got dict",
        "'chat' is an empty list",
        "'chat' item 0 must be a message object, got str",
    ]
    rewritten = out[0]["promptfold_prompt"]  # JSON text in a CSV cell; Parquet's JSON text is decoded back
    assert (json.loads(rewritten) if fmt == "csv" else rewritten) == [
        {"role": "user", "content": "one three"}
    ]


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_legacy_encoded_csv_is_read_with_its_detected_encoding(tmp_path: Path, encoding: str) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.jsonl"
    write_rows(source, [{"id": i, "prompt": f"{FRENCH} ({i})"} for i in range(5)], encoding=encoding)
    run_job(JobSpec(source, target), FakeRewriter())
    assert [r["prompt"] for r in read_rows(target)] == [f"{FRENCH} ({i})" for i in range(5)]


@pytest.mark.parametrize(
    ("fmt", "encoding"), [("jsonl", "utf-8-sig"), ("csv", "utf-8-sig"), ("jsonl", "utf-16")]
)
def test_an_input_with_a_bom_is_read(tmp_path: Path, fmt: str, encoding: str) -> None:
    source, target = tmp_path / f"in.{fmt}", tmp_path / "out.jsonl"
    write_rows(source, [{"prompt": FRENCH}], encoding=encoding)
    assert source.read_bytes()[:2] in (b"\xef\xbb", b"\xff\xfe")
    out = rewrite(source, target)
    assert out[0]["prompt"] == FRENCH and out[0]["promptfold_error"] is None


def test_an_explicit_encoding_overrides_detection(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.jsonl"
    source.write_bytes("prompt\ncaf\u00e9 cr\u00e8me\n".encode("latin-1"))  # too short to guess well
    out = rewrite(source, target, encoding="latin-1")
    assert out[0]["prompt"] == "café crème"


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAKE_REWRITER_ENV, "")


@pytest.mark.usefixtures("fake_cli")
def test_the_cli_says_which_encoding_it_detected_on_stderr_and_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.parquet"
    write_rows(source, [{"prompt": FRENCH}, {"prompt": ""}], encoding="cp1252")
    assert main(["batch", "rewrite", str(source), "-o", str(target)]) == 0
    assert f"reading {source} as cp1252 (detected; --encoding sets it)" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out.parquet.summary.json").read_text())
    assert summary["input_encoding"] == "cp1252" and summary["rows_failed_by_reason"] == {
        "'prompt' is empty": 1
    }


@pytest.mark.usefixtures("fake_cli")
def test_an_input_in_another_encoding_than_asked_is_a_one_line_cli_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    write_rows(source, [{"prompt": FRENCH}], encoding="latin-1")
    code = main(["batch", "rewrite", str(source), "-o", str(tmp_path / "out.jsonl"), "--encoding", "utf-8"])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "Traceback" not in "".join(error)
    assert error[-1].startswith(f"promptfold: error: '{source}' is not valid utf-8-sig")
    assert "--encoding" in error[-1] and not (tmp_path / "out.jsonl").exists()


@pytest.mark.usefixtures("fake_cli")
def test_an_input_that_is_not_text_is_a_one_line_cli_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(bytes(range(256)) * 8)
    code = main(["batch", "rewrite", str(source), "-o", str(tmp_path / "out.jsonl")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1  # the input is checked before a rewriter is even made
    assert error[-1].startswith(f"promptfold: error: '{source}' is not text") and "--encoding" in error[-1]


def test_a_line_that_is_not_json_fails_the_job_before_anything_is_written(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"prompt": "fine"}\n{"prompt": \n')
    from middleware.batch import JobError

    with pytest.raises(JobError, match=r"line 2 is not JSON .*; fix or remove the line"):
        run_job(JobSpec(source, target), FakeRewriter())
    assert not target.exists()


def test_cells_beyond_a_csv_header_are_kept(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("id,prompt\n1,one two\n2,three four,surplus\n")
    out = rewrite(source, target)
    assert [r["_extra_cells"] for r in out] == ["", '["surplus"]']


def test_the_help_of_batch_rewrite_says_what_happens_to_bad_rows_encodings_and_resume(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["batch", "rewrite", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("bad rows:", "promptfold_error", "encodings:", "--encoding", "resume:", "exactly once"):
        assert words in text
