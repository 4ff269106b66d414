"""A writer killed with SIGKILL in the middle of an add leaves the previous index whole and usable.

A real subprocess opens the corpus and adds a document; a small wrapper inside it stops at one point of
the publish (the new FAISS file half written, the chunk metadata half written, or everything written but
the CURRENT pointer not yet switched) and says so; the test then SIGKILLs it and reopens the corpus.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from middleware.retrieval.catalog import Corpora
from middleware.retrieval.corpus import Corpus, DocumentInput

ROOT = Path(__file__).resolve().parents[2]
OLD = [
    DocumentInput("tides", "Tides are caused by the gravity of the Moon and the Sun."),
    DocumentInput("bread", "Bread rises because yeast produces carbon dioxide."),
]
NEW = DocumentInput("volcano", "Volcanoes in Iceland erupt where two tectonic plates pull apart.")

CHILD = r"""
import sys, time
from pathlib import Path
from middleware.retrieval import store
from middleware.retrieval.corpus import Corpus, DocumentInput
from middleware.tokens import default_token_counter

path, point = Path(sys.argv[1]), sys.argv[2]

def stop_here():
    print("PAUSED", flush=True)
    time.sleep(600)

if point == "index-file":
    save = store.VectorIndex.save
    def half_saved(self, target):
        save(self, target)
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
        stop_here()
    store.VectorIndex.save = half_saved
elif point == "chunk-metadata":
    write_lines = store._write_lines
    def half_written(target, lines):
        lines = list(lines)
        if target.name == store.CHUNKS:
            target.write_text("\n".join(lines[: len(lines) // 2]))
            stop_here()
        write_lines(target, lines)
    store._write_lines = half_written
elif point == "pointer-switch":
    store._replace_text = lambda target, text: stop_here()

corpus = Corpus.open(path, "kb")
corpus.add([DocumentInput(sys.argv[3], sys.argv[4])], default_token_counter())
print("FINISHED", flush=True)
"""


def kill_mid_add(path: Path, point: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), point, NEW.id, NEW.text],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip() == "PAUSED", (
            f"the writer did not reach {point}: {line!r} {child.stderr.read() if child.stderr else ''}"
        )
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("point", ["index-file", "chunk-metadata", "pointer-switch"])
def test_sigkill_during_an_add_leaves_the_previous_index_and_a_re_add_then_lands(
    point: str, corpora: Corpora, count
) -> None:
    corpus = corpora.create("kb")
    corpus.add(OLD, count)
    path = corpus.directory.path
    before = sorted(d["id"] for d in corpus.documents())

    kill_mid_add(path, point)

    reopened = Corpus.open(path, "kb")
    assert sorted(d["id"] for d in reopened.documents()) == before == ["bread", "tides"]
    assert reopened.search("what makes bread rise", k=1)[0].document_id == "bread"
    assert all(p.document_id != NEW.id for p in reopened.search("volcano eruption Iceland", k=3))

    reopened.add([NEW], count)  # the writer's leftovers do not get in the way
    again = Corpus.open(path, "kb")
    assert sorted(d["id"] for d in again.documents()) == ["bread", "tides", "volcano"]
    assert again.search("volcano eruption Iceland", k=1)[0].document_id == NEW.id
    assert not [p for p in path.iterdir() if p.name.endswith(".partial")]
