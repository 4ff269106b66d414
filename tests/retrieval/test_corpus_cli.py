"""`promptfold corpus add|search|list|drop`, run in-process through the CLI's own `main`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from middleware.cli import main


@pytest.fixture
def cli(tmp_path: Path, capsys):
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--data-dir", str(tmp_path / "data")])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_add_search_list_and_drop_from_the_command_line(cli, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "leave.txt").write_text("Employees get 25 days of paid leave per year.")
    (notes / "lunch.md").write_text("The cafeteria serves lunch from noon to 2 pm.")
    rows = tmp_path / "more.jsonl"
    rows.write_text(json.dumps({"_id": "p1", "title": "Parking", "text": "Staff park in garage B."}) + "\n")

    code, out, _ = cli("corpus", "add", "kb", str(notes))
    assert code == 0 and "created corpus 'kb'" in out and "2 added" in out
    assert cli("corpus", "add", "kb", "--jsonl", str(rows))[0] == 0
    code, out, _ = cli("corpus", "add", "kb", str(notes / "leave.txt"))
    assert "0 added, 1 replaced" in out

    code, out, _ = cli("corpus", "search", "kb", "where do staff park", "-k", "1", "--json")
    [hit] = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and hit["document_id"] == "p1" and hit["title"] == "Parking"

    code, out, _ = cli("corpus", "list")
    assert out.startswith("kb\t3 documents")
    code, out, _ = cli("corpus", "drop", "kb", "--document", "p1")
    assert "removed p1" in out
    assert cli("corpus", "drop", "kb")[0] == 0
    assert "no corpora" in cli("corpus", "list")[1]


def test_user_errors_are_one_line_without_a_traceback(cli, tmp_path: Path) -> None:
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    code, _, err = cli("corpus", "add", "kb", str(binary))
    assert code == 2 and "image.png' is binary" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("corpus", "search", "missing", "anything")
    assert code == 2 and "The corpus 'missing' does not exist" in err
    (tmp_path / "a.txt").write_text("Some text.")
    cli("corpus", "add", "kb", str(tmp_path / "a.txt"))
    code, _, err = cli("corpus", "search", "kb", "   ")
    assert code == 2 and "query is empty" in err
    code, _, err = cli("corpus", "add", "no/slash", str(tmp_path / "a.txt"))
    assert code == 2 and "Invalid corpus name" in err
    code, _, err = cli("corpus", "add", "kb", str(tmp_path / "missing.txt"))
    assert code == 2 and "No such file" in err
