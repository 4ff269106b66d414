"""Compression building blocks that need no model: protected spans, units, budgets, passage choice."""

from __future__ import annotations

import pytest

from middleware.compress.coarse import choose_passages, dynamic_budgets
from middleware.compress.document import finer_passages, from_parts, from_text
from middleware.compress.fine import select
from middleware.compress.spans import MarkupError, protected_spans, split_markup
from middleware.compress.units import Unit, render, split_units


def spans_of(text: str) -> list[tuple[str, str]]:
    return [(s.kind, text[s.start : s.end]) for s in protected_spans(text)]


def test_numbers_keep_their_separators_decimals_currency_and_units() -> None:
    text = "He paid $1,200 for 36 pencils, ran 3.5 km at 10:30 and saved 20% (1.5GB)."
    found = spans_of(text)
    assert ("number", "$1,200") in found
    assert ("number", "36") in found
    assert ("number", "3.5 km") in found
    assert ("number", "10:30") in found
    assert ("number", "20%") in found
    assert ("number", "1.5GB") in found


def test_urls_emails_and_ids_are_protected_whole() -> None:
    text = "See https://example.com/a?b=1. Mail ops@example.org about order ABC-123 and run gsm8k."
    found = spans_of(text)
    assert ("url", "https://example.com/a?b=1") in found
    assert ("email", "ops@example.org") in found
    assert ("id", "ABC-123") in found
    assert ("id", "gsm8k") in found


def test_json_structure_is_kept_but_string_values_are_prunable() -> None:
    text = 'config {"name": "north wind", "retries": 3}'
    units = split_units(text)
    kept_text = render(text, units, [u.always for u in units])
    assert kept_text.strip().startswith('{"name": ""')  # keys, colons, quotes survive; the words may go
    assert '"retries":' in kept_text
    words = [text[u.start : u.end].strip() for u in units if u.kind == "word"]
    assert "north" in words and "wind" in words


def test_code_blocks_and_chat_roles_are_kept_verbatim() -> None:
    text = "User: look at this\n```python\ndef f(x):\n    return x\n```\nAssistant: ok"
    kinds = {kind for kind, _ in spans_of(text)}
    assert {"code", "role"} <= kinds
    units = split_units(text)
    rendered = render(text, units, [u.always for u in units])
    assert "```python\ndef f(x):\n    return x\n```" in rendered
    assert "User:" in rendered and "Assistant:" in rendered


def test_free_text_is_never_split_inside_a_code_block() -> None:
    document = from_text("intro line\n```\na = 1\nb = 2\n```\nlast line")
    assert any("a = 1\nb = 2" in s.text for s in document.segments)


def test_keep_and_compress_tags_become_regions_without_the_tags() -> None:
    regions = split_markup("a <keep>b 1</keep> c <compress rate=0.3>d e f</compress> g")
    assert [(r.text, r.rate) for r in regions] == [
        ("a ", None),
        ("b 1", 1.0),
        (" c ", None),
        ("d e f", 0.3),
        (" g", None),
    ]


@pytest.mark.parametrize(
    "bad", ["<compress rate=1.5>x</compress>", "<compress rate=abc>x</compress>", "<keep>x"]
)
def test_bad_markup_is_an_error(bad: str) -> None:
    with pytest.raises(MarkupError):
        split_markup(bad)


def test_dropped_punctuation_never_glues_two_words() -> None:
    text = "6 highlighters/box"
    units = split_units(text)
    kept = [text[u.start : u.end] != "/" for u in units]
    assert render(text, units, kept) == "6 highlighters box"


def test_selection_pays_for_kept_units_first_then_takes_the_best() -> None:
    units = [
        Unit(0, 1, "word", tokens=2, score=1.0),
        Unit(1, 2, "code", always=True, tokens=3),
        Unit(2, 3, "word", tokens=2, score=5.0),
        Unit(3, 4, "word", tokens=2, score=3.0),
    ]
    [mask] = select([units], budget=7)
    assert mask == [False, True, True, True]


def test_dynamic_budgets_favour_the_most_relevant_and_add_up() -> None:
    budgets = dynamic_budgets([100, 100, 100, 100], 200, spread=0.4)
    assert budgets[0] > budgets[1] > budgets[2] > budgets[3]
    assert abs(sum(budgets) - 200) <= 2
    capped = dynamic_budgets([10, 100], 100, spread=0.4)
    assert capped[0] == 10 and capped[1] == 90  # a passage never gets more than itself


def test_coarse_keeps_the_most_relevant_passages_until_the_budget() -> None:
    choice = choose_passages([50, 50, 50, 50], [0.1, 0.9, 0.5, 0.2], budget=60, factor=1.5, reorder=True)
    assert choice.kept == [1, 2]
    assert sorted(choice.dropped) == [0, 3]
    by_relevance = choose_passages([50, 50, 50], [0.1, 0.5, 0.9], budget=60, factor=1.5, reorder=True)
    assert by_relevance.kept == [2, 1]
    in_order = choose_passages([50, 50, 50], [0.1, 0.5, 0.9], budget=60, factor=1.5, reorder=False)
    assert in_order.kept == [1, 2]


def test_the_main_passage_is_cut_into_lines_or_sentences_that_render_back_exactly() -> None:
    text = "Smith arrived at 9.30 am. He left at noon!  Why? Nobody knows."
    document = from_parts(text, instruction="Read this.", question="When did he leave?")
    split = finer_passages(from_parts("One sentence only.", question="q"))
    assert split is None  # one sentence: nothing to rank
    several = finer_passages(from_text("First part. More of it.\n\nSecond part. Still second."))
    assert several is None  # several multi-sentence passages: they are ranked as they are
    titled = finer_passages(from_text("A title\nFirst sentence here. Second one there."))
    assert titled is not None and [s.text for s in titled.passages] == [
        "A title",
        "First sentence here.",
        "Second one there.",
    ]  # a one-line heading beside the passage stays whole
    documents = "Use the documents.\n\nDoc one says this. And more.\nDoc two says that.\nDoc three, last."
    lines = finer_passages(from_text(documents))
    assert lines is not None and lines.render() == documents
    assert [s.text for s in lines.passages] == [
        "Use the documents.",
        "Doc one says this. And more.",
        "Doc two says that.",
        "Doc three, last.",
    ]  # a block of lines (one document per line) is cut into its lines, not its sentences
    cut = finer_passages(document)
    assert cut is not None and cut.render() == document.render()
    assert [s.text for s in cut.passages] == [
        "Smith arrived at 9.30 am.",
        "He left at noon!",
        "Why?",
        "Nobody knows.",
    ]
