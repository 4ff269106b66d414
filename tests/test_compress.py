"""Compression with the real SmolLM2 scorer: ratios, protected spans, question awareness, errors."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from middleware.compress import (
    BackendScorer,
    CompressInputError,
    CompressOptions,
    Compressor,
    LocalScorer,
    ScoreRequest,
)

REPORT = (
    "The quarterly report was prepared by the finance team of Northwind Traders in early spring. "
    "Revenue grew to $1,200,000 in the third quarter, up 36% from the previous quarter, driven mostly by "
    "strong sales in the northern region and by a new line of garden furniture.\n"
    "The full dataset is available at https://example.com/reports/q3?id=42 for anyone who wants to verify "
    "the figures. Order ABC-123 shipped on 2024-05-01 and weighed 3.5 kg, slightly heavier than usual.\n\n"
    "Meanwhile, the marketing department organised a long series of workshops about branding, storytelling "
    "and the general tone of voice that the company wants to use in its public communication over the "
    "coming years. Each of the 14 workshops lasted 2.5 hours and was attended by about 1,350 employees in "
    "total, which the organisers described as a remarkable success for a first attempt.\n\n"
    "Finally, the board approved a budget of 4,750 dollars for new laptops, to be bought before the end "
    "of June, and asked the team to report back at the next meeting with a detailed plan."
)
NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


@pytest.fixture(scope="module")
def scorer(local_backend) -> LocalScorer:
    return LocalScorer()  # the same cached model as the session's engine


@pytest.fixture(scope="module")
def compressor(scorer: LocalScorer) -> Compressor:
    return Compressor(scorer)


def run(coro):
    return asyncio.run(coro)


def test_local_scorer_gives_the_same_scores_alone_and_batched(scorer: LocalScorer) -> None:
    text = "The capital of France is Paris."
    [alone] = scorer.score_sync([ScoreRequest(text)])
    batched = scorer.score_sync([ScoreRequest("A much longer neighbour row " * 5), ScoreRequest(text)])[1]
    assert np.array_equal(alone.token_ids, batched.token_ids)
    assert np.allclose(alone.self_information, batched.self_information, atol=0.35)  # bf16 padding noise
    spans = [text[a:b] for a, b in alone.spans]
    assert "".join(spans) == text


def test_self_information_is_low_for_expected_tokens(scorer: LocalScorer) -> None:
    [scores] = scorer.score_sync([ScoreRequest(" Paris.", prefix="The capital of France is")])
    [odd] = scorer.score_sync([ScoreRequest(" Banana.", prefix="The capital of France is")])
    assert scores.self_information[0] < odd.self_information[0]


async def test_backend_scorer_agrees_with_the_local_scorer(local_backend, scorer: LocalScorer) -> None:
    text = "Revenue grew to 1,200 dollars in the third quarter, up from last year."
    [remote] = await BackendScorer(local_backend).score([ScoreRequest(text, prefix="Report:")])
    [local] = await scorer.score([ScoreRequest(text, prefix="Report:")])
    assert "".join(text[a:b] for a, b in remote.spans) == text
    assert np.array_equal(remote.token_ids, local.token_ids)
    assert np.corrcoef(remote.self_information, local.self_information)[0, 1] > 0.95


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_the_achieved_ratio_lands_within_ten_percent(compressor: Compressor, rate: float) -> None:
    result = run(compressor.compress_text(REPORT, CompressOptions(rate=rate)))
    assert result.original_tokens >= 200
    assert abs(result.ratio - rate) <= 0.1 * rate
    assert result.compressed_tokens == compressor.count_tokens(result.text)


def test_target_tokens_is_honoured(compressor: Compressor) -> None:
    result = run(compressor.compress_text(REPORT, CompressOptions(target_tokens=100)))
    assert abs(result.compressed_tokens - 100) <= 10


def test_every_number_left_is_intact_and_words_are_never_cut(compressor: Compressor) -> None:
    result = run(compressor.compress_text(REPORT, CompressOptions(rate=0.3)))
    original_numbers = set(NUMBER.findall(REPORT))
    assert set(NUMBER.findall(result.text)) <= original_numbers
    original_words = set(re.findall(r"\w+", REPORT))
    assert set(re.findall(r"\w+", result.text)) <= original_words
    for part, whole in (
        ("https://", "https://example.com/reports/q3?id=42"),
        ("ABC", "ABC-123"),
        ("3.5", "3.5 kg"),
    ):
        assert part not in result.text or whole in result.text


def test_code_json_and_keep_regions_survive_heavy_compression(compressor: Compressor) -> None:
    text = (
        REPORT
        + "\n<keep>Never change this sentence.</keep>\n```python\ndef total(xs):\n    return sum(xs)\n```\n"
        + 'The config is {"retries": 3, "name": "north wind"} and must stay valid.'
    )
    result = run(compressor.compress_text(text, CompressOptions(rate=0.3)))
    assert "Never change this sentence." in result.text
    assert "<keep>" not in result.text
    assert "```python\ndef total(xs):\n    return sum(xs)\n```" in result.text
    assert '{"retries": 3, "name": "' in result.text


def test_a_compress_region_gets_its_own_rate(compressor: Compressor) -> None:
    region = REPORT.split("\n\n")[1]
    text = REPORT.split("\n\n")[0] + f"\n\n<compress rate=0.9>{region}</compress>"
    result = run(compressor.compress_text(text, CompressOptions(rate=0.4)))
    kept_region_words = [w for w in region.split() if w in result.text.split()]
    assert len(kept_region_words) >= 0.75 * len(region.split())


PASSAGES = [
    "Document [1](Title: Volcano) A volcano is a rupture in the crust of a planet through which lava escapes.",
    "Document [2](Title: Eiffel Tower) The Eiffel Tower in Paris was designed by the engineer Gustave Eiffel "
    "and completed in 1889 for the World's Fair.",
    "Document [3](Title: Photosynthesis) Plants turn light, water and carbon dioxide into sugar and oxygen.",
    "Document [4](Title: Jazz) Jazz is a music genre that originated in New Orleans in the late 19th century.",
    "Document [5](Title: Glacier) A glacier is a persistent body of dense ice that moves under its own weight.",
]


def test_question_aware_mode_keeps_the_passage_with_the_answer(compressor: Compressor) -> None:
    question = "Who designed the Eiffel Tower?"
    options = CompressOptions(rate=0.4, question=question)
    result = run(
        compressor.compress_parts(PASSAGES, options, question=f"Question: {question}", context_separator="\n")
    )
    assert result.mode == "question_aware"
    assert result.passage_order[0] == 1  # the relevant passage comes first
    assert "Gustave Eiffel" in result.text
    assert result.dropped_passages  # whole passages went first
    assert result.text.endswith("Question: Who designed the Eiffel Tower?")


LIBRARY = (
    "The library on Elm Street opened in 1987 with 12,500 books and two reading rooms. Over the years the town "
    "council paid for a new wing, a children's corner and a small cafe, and by 2020 the collection had grown "
    "to 48,300 volumes, most of them donated by local families. Volunteers run a reading club every Tuesday "
    "evening, and the building is closed on Sundays and public holidays."
)


def test_a_lone_passage_is_ranked_sentence_by_sentence_for_the_question(compressor: Compressor) -> None:
    result = run(
        compressor.compress_text(LIBRARY, CompressOptions(rate=0.5, question="When did the library open?"))
    )
    assert "opened in 1987" in result.text  # the sentence that answers stays
    assert 0.4 <= result.ratio <= 0.6
    kept = [s for s in LIBRARY.split(". ") if s.rstrip(".") in result.text]
    assert kept and result.text.index(kept[0]) == 0  # sentences keep their original order
    assert any("cut into lines or sentences" in note for note in result.notes)


def test_chat_messages_keep_the_system_prompt_and_the_last_question(compressor: Compressor) -> None:
    messages = [
        {"role": "system", "content": "You are a careful analyst. Answer briefly."},
        {"role": "user", "content": REPORT + "\n\nHow much did revenue grow?"},
    ]
    result = run(compressor.compress_messages(messages, CompressOptions(rate=0.5)))
    assert result.messages is not None
    assert result.messages[0] == messages[0]
    assert result.messages[1]["role"] == "user"
    assert result.messages[1]["content"].endswith("How much did revenue grow?")
    assert result.compressed_tokens < result.original_tokens


def test_the_result_says_what_was_dropped_and_how_long_each_phase_took(compressor: Compressor) -> None:
    result = run(compressor.compress_text(REPORT, CompressOptions(rate=0.5)))
    annotated = result.annotated()
    assert "[-" in annotated
    assert re.sub(r"\[-|-\]", "", annotated) == REPORT
    assert len(result.kept_mask) == len(REPORT) and not all(result.kept_mask)
    assert {"segment", "score", "select", "count"} <= set(result.timings)
    assert result.as_dict()["ratio"] == round(result.ratio, 4)


def test_empty_input_and_a_missing_question_are_errors(compressor: Compressor) -> None:
    with pytest.raises(CompressInputError, match="empty"):
        run(compressor.compress_text("   \n", CompressOptions(rate=0.5)))
    with pytest.raises(CompressInputError, match="needs a question") as caught:
        run(compressor.compress_text(REPORT, CompressOptions(rate=0.5, mode="question_aware")))
    assert caught.value.param == "question"


@pytest.mark.parametrize("rate", [0, -0.1, 1.5])
def test_a_rate_outside_zero_one_is_rejected(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        CompressOptions(rate=rate)


def test_the_sdk_call_takes_text_or_messages(compressor: Compressor) -> None:
    from middleware.compress import compress

    result = compress(REPORT, rate=0.5, compressor=compressor)
    assert abs(result.ratio - 0.5) <= 0.05
    chat = compress([{"role": "user", "content": REPORT + "\n\nWhat grew?"}], rate=0.5, compressor=compressor)
    assert chat.messages is not None and chat.messages[0]["content"].endswith("What grew?")
