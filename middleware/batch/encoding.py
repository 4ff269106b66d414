"""Which text encoding a JSONL or CSV input is in.

UTF-8 (with or without a BOM) is checked exactly, over the whole file. Anything else is charset-normalizer's
best guess: it is maintained, already installed (requests depends on it), recognises BOMs (UTF-16/32) and the
legacy code pages (cp1252, latin-1, cp1251, Shift-JIS...) from the text's statistics, and is MIT-licensed
(chardet, the older choice, is LGPL and slower). A guess can be wrong on a short file, so the job reports the
encoding it used and `--encoding` overrides it.

charset-normalizer ranks candidates by how garbled and how coherent the decoded text is; on an exact tie it
keeps its own codec order, where cp1250 (Central European) comes before cp1252 (Western), so Western text
with only the letters both share (é, ç, ä) would be read as cp1250 and è, û garbled. Ties go to cp1252, the
most common legacy encoding of datasets (Windows and Excel exports).
"""

from __future__ import annotations

import codecs
from pathlib import Path

from backend.errors import InvalidRequest

UTF8 = "utf-8-sig"  # reads UTF-8 with or without a BOM, and drops the BOM
_CHUNK = 1 << 20


class EncodingError(InvalidRequest):
    """The input cannot be read as text; the message names the file and says what to do (one line)."""


def detect_encoding(path: Path) -> str:
    """The Python codec name to read `path` with (see the module docstring); raises EncodingError."""
    if _decodes_as_utf8(path):
        return UTF8
    from charset_normalizer import from_path

    matches = from_path(path)
    best = matches.best()
    if best is None:
        raise EncodingError(
            f"'{path}' is not text in any encoding promptfold recognises; "
            "if it is text, pass its encoding with --encoding (for example --encoding cp1252)"
        )
    tied = (m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence))
    chosen = next((m.encoding for m in tied if m.encoding == "cp1252"), best.encoding)
    return UTF8 if codecs.lookup(chosen).name == "utf-8" else chosen


def check_encoding(name: str) -> str:
    """The codec to read with for `--encoding NAME`; raises EncodingError if Python does not know it."""
    try:
        codec = codecs.lookup(name)
    except LookupError as error:
        raise EncodingError(
            f"--encoding: '{name}' is not an encoding Python knows (try utf-8, cp1252, latin-1)"
        ) from error
    return UTF8 if codec.name == "utf-8" else name  # a BOM is not part of the first column's name


def undecodable(path: Path, encoding: str, error: UnicodeDecodeError) -> EncodingError:
    """The one-line error for a file that stops decoding part-way (`error.start` is within a chunk)."""
    return EncodingError(
        f"'{path}' is not valid {encoding} ({error.reason}); "
        "pass the file's encoding with --encoding (for example --encoding cp1252)"
    )


def _decodes_as_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True
