"""Chunks: whole sentences under a token budget, overlapping, each with its document and offsets."""

from __future__ import annotations

import itertools

import pytest

from middleware.retrieval.chunking import ChunkingConfig, chunk_text, sentence_spans


def words(text: str) -> int:
    return len(text.split())


def test_sentences_split_at_full_stops_but_not_after_abbreviations_or_initials() -> None:
    text = 'Dr. Smith met J. K. Rowling at 5 p.m. on Monday! Was it fun? "Yes," he said.\n\nA new paragraph'
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Dr. Smith met J. K. Rowling at 5 p.m. on Monday!",
        "Was it fun?",
        '"Yes," he said.',
        "A new paragraph",
    ]


def test_every_chunk_is_its_documents_text_at_its_offsets_and_fits_the_budget(count) -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60))
    config = ChunkingConfig(max_tokens=40, overlap_tokens=16)  # a sentence is 14 tokens
    chunks = chunk_text(text, document_id="doc-1", source="a.txt", count=count, config=config)
    assert len(chunks) > 5
    for i, chunk in enumerate(chunks):
        assert chunk.text == text[chunk.start : chunk.end]
        assert (chunk.document_id, chunk.source, chunk.index) == ("doc-1", "a.txt", i)
        assert chunk.tokens == count(chunk.text) <= 40
        assert chunk.text.startswith("Sentence") and chunk.text.endswith(".")  # whole sentences
    # Consecutive chunks overlap by whole sentences, and together they cover the whole text.
    assert all(b.start < a.end for a, b in itertools.pairwise(chunks))
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert all(b.start > a.start for a, b in itertools.pairwise(chunks))


def test_without_overlap_chunks_tile_the_text() -> None:
    text = "One two three. Four five six. Seven eight nine. Ten eleven twelve."
    chunks = chunk_text(text, document_id="d", source="d", count=words, config=ChunkingConfig(8, 0))
    assert [c.text for c in chunks] == [
        "One two three. Four five six.",
        "Seven eight nine. Ten eleven twelve.",
    ]


def test_a_sentence_longer_than_the_budget_is_cut_between_words_and_nothing_is_lost() -> None:
    text = "Short one. " + " ".join(f"w{i}" for i in range(50)) + ". Tail sentence."
    chunks = chunk_text(text, document_id="d", source="d", count=words, config=ChunkingConfig(10, 0))
    assert all(c.tokens <= 10 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_a_word_longer_than_the_budget_is_cut_between_characters(count) -> None:
    blob = "QmFzZTY0" * 80
    chunks = chunk_text(blob, document_id="d", source="d", count=count, config=ChunkingConfig(16, 0))
    assert len(chunks) > 1 and "".join(c.text for c in chunks) == blob
    assert all(c.tokens <= 16 for c in chunks)


def test_empty_text_has_no_chunks_and_bad_budgets_are_refused() -> None:
    assert chunk_text("  \n ", document_id="d", source="d", count=words) == []
    with pytest.raises(ValueError, match="overlap"):
        ChunkingConfig(max_tokens=20, overlap_tokens=20)
