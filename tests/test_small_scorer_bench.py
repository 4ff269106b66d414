"""The pure helpers of bench/small_scorer.py: which words a compression kept, agreement with the SmolLM2
side, and the UUID / JSON checks of the key-value set."""

from __future__ import annotations

from bench.small_scorer import (
    agreement,
    context_words,
    drop_agreement,
    kept_aligned,
    kv_check,
    original_of,
    summarize,
)

TASK = {
    "context": ["alpha beta gamma", "delta epsilon"],
    "instruction": "Read.",
    "question": "Q?",
    "context_separator": "\n",
    "rate": 0.5,
    "mode": "plain",
}


def test_only_context_words_are_compared() -> None:
    original = original_of(TASK)
    assert original == "Read.\n\nalpha beta gamma\ndelta epsilon\n\nQ?"
    assert [original[s:e] for s, e in context_words(TASK, original)] == [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
    ]


def test_words_of_a_compressed_text_are_aligned_to_the_original() -> None:
    original = original_of(TASK)
    words = context_words(TASK, original)
    assert kept_aligned("Read. alpha gamma epsilon Q?", original, words) == [True, False, True, False, True]


def test_agreement_counts_the_reference_words_the_other_side_keeps() -> None:
    assert agreement([True, True, False, True], [True, False, True, True]) == (2, 3)
    assert agreement(None, [True]) == (0, 0)


def test_dropped_words_count_only_inside_passages_the_reference_kept() -> None:
    passages = [0, 0, 0, 1, 1]  # the reference drops passage 1 whole: its words are the passage choice's
    reference = [True, False, False, False, False]
    assert drop_agreement(reference, [True, False, True, False, True], passages) == (1, 2)
    assert drop_agreement(reference, None, passages) == (0, 0)


def test_the_key_value_check_finds_the_gold_value_cut_uuids_and_broken_json() -> None:
    key, value, other = (
        "2a8d601d-1d69-4e64-9f90-8ad825a74195",
        "bb3ba2a5-7de8-434b-a86e-a88bb9fa7289",
        "d1ff29be-4e2a-4208-a182-0cea716be3d4",
    )
    rows = [{"key": key, "value": value}]
    check = kv_check(rows)
    whole = check({"row": 0}, f'Extract.\n{{"{key}": "{value}"}}\nKey: "{key}"')
    assert whole == {"gold UUID kept": (1, 1), "UUIDs whole": (2, 2), "JSON parses": (1, 1)}
    cut = check({"row": 0}, f'Extract.\n{{"{other[:13]}": "{value}"\nKey: "{key}"')
    assert cut["UUIDs whole"] == (2, 3) and cut["JSON parses"] == (0, 1)  # key, value whole; other cut


def test_the_summary_adds_rows_per_set_rate_and_side() -> None:
    entries = [
        {
            "set": "s",
            "rate": 0.5,
            "row": i,
            "tokens": 10,
            "smollm2": {"text": "a", "tokens": 5, "agreement": (4, 4), "fine_agreement": (4, 4)},
            "classifier": {"text": "b", "tokens": 6, "agreement": (3, 4), "fine_agreement": (3, 4)},
        }
        for i in range(2)
    ]
    cells = summarize(entries, lambda entry, text: {"has a": (int("a" in text), 1)})
    by_side = {c["side"]: c for c in cells}
    assert by_side["classifier"]["both"] == 6 and by_side["classifier"]["ref"] == 8
    assert by_side["smollm2"]["checks"] == {"has a": (2, 2)} and by_side["classifier"]["out"] == 12
