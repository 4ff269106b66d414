"""A stored corpus: add, search (dense + BM25 fused), replace, delete, reopen, and one writer at a time."""

from __future__ import annotations

import threading

import pytest

from middleware.embeddings import shared_embedder
from middleware.retrieval.catalog import Corpora
from middleware.retrieval.corpus import Corpus, DocumentInput, SearchConfig
from middleware.retrieval.errors import CorpusBusy, CorpusExists, InvalidInput, UnknownCorpus, UnknownDocument

from .conftest import HANDBOOK


def test_search_finds_the_passage_with_the_answer_and_says_where_it_is(office: Corpus) -> None:
    [best, *_] = office.search("How many days of paid leave do employees get?", k=2)
    assert best.document_id == "handbook" and best.source == "handbook.txt"
    assert HANDBOOK.text[best.start : best.end] == best.text and "25 days" in best.text
    assert best.dense_rank == 1 and best.lexical_rank == 1 and best.tokens > 0


def test_bm25_catches_an_exact_term_and_dense_a_paraphrase(office: Corpus) -> None:
    [lexical] = office.search("garage B", k=1, config=SearchConfig(mode="lexical"))
    assert lexical.document_id == "parking"
    [dense] = office.search("where do I eat at midday", k=1, config=SearchConfig(mode="dense"))
    assert dense.document_id == "cafeteria"


def test_re_adding_a_document_replaces_it_and_reopening_keeps_everything(
    office: Corpus, corpora: Corpora, count
) -> None:
    result = office.add([DocumentInput("handbook", "Employees get 30 days of paid leave.")], count)
    assert result.replaced == ["handbook"] and result.added == []
    reopened = Corpus.open(office.directory.path, "office")
    texts = [p.text for p in reopened.search("days of paid leave", k=3)]
    assert "Employees get 30 days of paid leave." in texts
    assert not any("25 days" in t for t in texts)
    assert sorted(d["id"] for d in reopened.documents()) == ["cafeteria", "handbook", "parking"]


def test_deleting_a_document_removes_its_passages_and_an_unknown_one_is_an_error(office: Corpus) -> None:
    office.delete(["parking"])
    assert all(p.document_id != "parking" for p in office.search("garage parking", k=5))
    with pytest.raises(UnknownDocument):
        office.delete(["nope"])


def test_a_second_reader_sees_what_another_writer_published(office: Corpus, corpora: Corpora, count) -> None:
    reader = Corpus.open(office.directory.path, "office")  # as a serving process would hold it
    office.add([DocumentInput("gym", "The gym on floor 2 is open all night.")], count)
    assert reader.search("gym open at night", k=1)[0].document_id == "gym"


def test_one_writer_at_a_time_a_second_one_waits_then_gives_up_with_corpus_busy(
    office: Corpus, count
) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with office.directory.writer_lock():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        with pytest.raises(CorpusBusy):
            office.add([DocumentInput("x", "Some text.")], count, timeout_s=0.3)
    finally:
        release.set()
        holder.join()
    assert office.add([DocumentInput("x", "Some text.")], count).added == ["x"]


def test_embeddings_are_cached_by_text(office: Corpus, count) -> None:
    embedder = shared_embedder()
    before = embedder.encoded
    office.add([DocumentInput("again", HANDBOOK.text)], count)  # same text as handbook, another id
    assert embedder.encoded == before


def test_bad_input_gets_a_clear_error(office: Corpus, corpora: Corpora, count) -> None:
    with pytest.raises(InvalidInput, match="query is empty"):
        office.search("   ")
    with pytest.raises(InvalidInput, match="appears twice"):
        office.add([DocumentInput("a", "x."), DocumentInput("a", "y.")], count)
    with pytest.raises(InvalidInput, match="no text"):
        office.add([DocumentInput("a", "  ")], count)
    with pytest.raises(InvalidInput, match="Invalid corpus name"):
        corpora.create("../escape")
    with pytest.raises(CorpusExists):
        corpora.create("office")
    with pytest.raises(UnknownCorpus, match="corpora: office"):
        corpora.get("nope")
    corpora.drop("office")
    assert corpora.names() == []
