"""In-prompt selection: a message carrying many documents keeps the ones relevant to its question."""

from __future__ import annotations

import pytest

from backend import SamplingParams
from middleware.config import Settings
from middleware.options import RequestOptions
from middleware.pipeline import Context, Request
from middleware.report import RequestReport
from middleware.retrieval.documents import parse_document_prompt
from middleware.retrieval.ranker import HybridRanker
from middleware.retrieval.stage import RetrievalStage

from .conftest import litm_prompt, multidoc_rows


def test_lost_in_the_middle_prompts_parse_into_documents_and_a_question() -> None:
    [row] = multidoc_rows("dev", 1)
    prompt = parse_document_prompt(litm_prompt(row))
    assert prompt is not None and len(prompt.documents) == 20
    assert prompt.question == row["question"]
    assert [d.title for d in prompt.documents] == [c["title"] for c in row["ctxs"]]
    assert prompt.documents[5].text == row["ctxs"][5]["text"]
    assert prompt.with_documents(prompt.documents) == litm_prompt(row)  # nothing lost in the round trip


def test_a_title_with_parentheses_and_a_missing_question_line() -> None:
    text = "Document [1](Title: Queen (band)) Queen is a rock band.\nDocument [2](Title: Bees) Bees make honey.\n\nWho sang Bohemian Rhapsody?"
    prompt = parse_document_prompt(text)
    assert prompt is not None
    assert [d.title for d in prompt.documents] == ["Queen (band)", "Bees"]
    assert prompt.question == "Who sang Bohemian Rhapsody?"


def test_the_ranker_puts_the_gold_document_first_on_dev_rows() -> None:
    ranker = HybridRanker()
    for row in multidoc_rows("dev", 4):
        passages = [f"{c['title']}\n{c['text']}" for c in row["ctxs"]]
        scores = ranker.rank(row["question"], passages)
        assert len(scores) == 20
        assert sorted(range(20), key=lambda i: -scores[i])[:3].count(row["gold_index"]) == 1
    assert ranker.rank("", ["a", "b"]) == [0.0, 0.0] and ranker.rank("q", []) == []


async def run_stage(local_backend, content: str, retrieval: dict) -> tuple[Request, object]:
    stage = RetrievalStage(local_backend, Settings())
    request = Request(
        sampling=SamplingParams(max_tokens=1),
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}],
        options=RequestOptions(retrieval=retrieval),
    )
    context = Context(local_backend, Settings(), RequestReport("local", "m"))
    return await stage(request, context)


async def test_the_stage_keeps_top_k_documents_most_relevant_first_and_reports_what_it_dropped(
    local_backend,
) -> None:
    [row] = multidoc_rows("dev", 1)
    request, report = await run_stage(local_backend, litm_prompt(row), {"top_k": 2})
    kept = parse_document_prompt(request.messages[1]["content"])
    assert kept is not None and len(kept.documents) == 2
    assert kept.documents[0].title == row["ctxs"][row["gold_index"]]["title"]  # most relevant first
    assert [d.number for d in kept.documents] == [1, 2]  # renumbered
    assert request.messages[1]["content"].endswith(f"Question: {row['question']}\nAnswer:")
    assert request.messages[0]["content"] == "Be brief."
    assert report.applied and len(report.details["dropped"]) == 18
    assert report.tokens_out < report.tokens_in / 5


async def test_a_token_budget_limits_the_kept_documents_and_original_order_is_kept_on_request(
    local_backend,
) -> None:
    [row] = multidoc_rows("dev", 1)
    _request, report = await run_stage(
        local_backend, litm_prompt(row), {"top_k": 20, "token_budget": 400, "order": "original"}
    )
    kept = report.details["kept"]
    assert sum(d["tokens"] for d in kept) <= 400 and 1 <= len(kept) < 20
    assert [d["number"] for d in kept] == sorted(d["number"] for d in kept)


async def test_explicit_documents_become_numbered_passages_with_sources(local_backend) -> None:
    documents = [
        {"text": "Mount Everest is 8,849 metres tall.", "source": "everest.txt"},
        "Bananas are rich in potassium.",
    ]
    request, report = await run_stage(
        local_backend, "How tall is Mount Everest?", {"documents": documents, "top_k": 1}
    )
    content = request.messages[1]["content"]
    assert content.startswith("Answer using these passages")
    assert "[1] (source: everest.txt) Mount Everest is 8,849 metres tall." in content
    assert content.endswith("How tall is Mount Everest?") and "Bananas" not in content
    assert report.details["passages"][0]["source"] == "everest.txt"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("What is 2+2?", "0 'Document [i](Title: ...)' blocks"),
        ("Document [1](Title: A) only one.\n\nQuestion: a?", "1 'Document"),
    ],
)
async def test_without_enough_documents_the_stage_says_why_it_skipped(
    local_backend, content: str, why: str
) -> None:
    request, report = await run_stage(local_backend, content, {"top_k": 3})
    assert not report.applied and why in report.skipped_reason
    assert request.messages[1]["content"] == content


async def test_documents_in_the_system_message_are_selected_for_the_users_question(local_backend) -> None:
    [row] = multidoc_rows("dev", 1)
    documents = "\n".join(
        f"Document [{i}](Title: {c['title']}) {c['text']}" for i, c in enumerate(row["ctxs"], 1)
    )
    stage = RetrievalStage(local_backend, Settings())
    request = Request(
        sampling=SamplingParams(max_tokens=1),
        messages=[
            {"role": "system", "content": f"Answer from these documents.\n\n{documents}"},
            {"role": "user", "content": row["question"]},
        ],
        options=RequestOptions(retrieval={"top_k": 2}),
    )
    request, report = await stage(request, Context(local_backend, Settings(), RequestReport("local", "m")))
    kept = parse_document_prompt(request.messages[0]["content"])
    assert kept is not None and len(kept.documents) == 2
    assert row["ctxs"][row["gold_index"]]["title"] in [d.title for d in kept.documents]
    assert report.details["message"] == 0 and request.messages[1]["content"] == row["question"]
