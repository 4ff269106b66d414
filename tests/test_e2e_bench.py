"""The pure helpers of the end-to-end bench (bench/e2e_sglang.py): prompts fitted to a token target and
the markdown report."""

from __future__ import annotations

from bench.e2e_report import PathResult, Sample, fit_documents, numbered, render


def words(text: str) -> int:
    return len(text.split())


def test_documents_are_trimmed_to_the_target_and_the_gold_one_stays_in_place() -> None:
    own = [f"Document [{i + 1}](Title: t{i}) " + "w " * 10 for i in range(6)]
    docs = fit_documents(own, gold=2, spare=["spare " * 10], count=words, target=40)
    assert sum(words(d) for d in docs) <= 40
    assert docs[2] == own[2] and docs == own[:3]  # distractors dropped from the end, gold kept


def test_the_gold_document_survives_even_when_it_is_last() -> None:
    own = ["a " * 10, "b " * 10, "gold " * 10]
    assert fit_documents(own, gold=2, spare=[], count=words, target=15) == ["gold " * 10]


def test_spare_documents_fill_a_prompt_up_to_the_target() -> None:
    own = ["a " * 10, "gold " * 10]
    spare = ["s1 " * 10, "s2 " * 10, "s3 " * 10]
    docs = fit_documents(own, gold=1, spare=spare, count=words, target=45)
    assert docs == [*own, spare[0], spare[1]]


def test_documents_are_renumbered_in_their_new_order() -> None:
    assert numbered(["Document [7](Title: x) one", "Document [2](Title: y) two"]) == [
        "Document [1](Title: x) one",
        "Document [2](Title: y) two",
    ]


def test_the_report_lists_every_path_and_every_failure() -> None:
    good = PathResult("plain chat", headline={"requests ok": "2/2", "check": "same answer 1/1"})
    good.table = [{"p50 ms": "12.0", "note": "a|b"}]
    bad = PathResult("gist", headline={"check": "FAILED"})
    bad.record(Sample("gist", "promptfold gist", ok=False, error="APIConnectionError: refused"))
    text = render([good, bad], {"title": "e2e", "proxy": "http://x"})
    assert "| plain chat | 2/2 |" in text and "| gist |" in text
    assert "a\\|b" in text  # a cell cannot break the table
    assert "- gist: promptfold gist: APIConnectionError: refused" in text
