"""Reading documents from files for a corpus: plain UTF-8 text files (a folder: every file in it) or
JSON lines `{"id"|"_id", "text", "title"?, "source"?}`. Anything that is not UTF-8 text is refused."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .corpus import DocumentInput
from .errors import InvalidInput, NotText


def decode_text(data: bytes, name: str) -> str:
    """`data` as text if it is UTF-8 (a BOM is dropped) with no NUL byte; else NotText naming the file."""
    if b"\x00" in data:
        raise NotText(
            f"The file '{name}' is binary (it holds NUL bytes), not text; convert it to text first."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise NotText(
            f"The file '{name}' is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "convert it to UTF-8 text first."
        ) from error


def text_files(paths: Iterable[Path]) -> list[Path]:
    """The files named, with folders expanded to the files under them (hidden ones skipped), in order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInput(f"No such file or folder: '{path}'.")
    return files


def documents_from_file(
    path: Path, *, document_id: str | None = None, title: str | None = None
) -> DocumentInput:
    """One document per text file: id = `document_id` or the path as given, source = the path."""
    text = decode_text(path.read_bytes(), str(path))
    return DocumentInput(document_id or str(path), text, source=str(path), title=title)


def documents_from_jsonl(path: Path) -> list[DocumentInput]:
    documents: list[DocumentInput] = []
    text = decode_text(path.read_bytes(), str(path))
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            documents.append(
                DocumentInput(
                    str(row.get("id", row.get("_id"))),
                    str(row["text"]),
                    source=row.get("source"),
                    title=row.get("title"),
                )
            )
        except (ValueError, KeyError, AttributeError) as error:
            raise InvalidInput(
                f"{path}:{number}: expected a JSON object with 'id' (or '_id') and 'text' ({error})."
            ) from error
    return documents
