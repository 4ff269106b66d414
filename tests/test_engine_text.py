"""Text deltas and stop strings: what a streaming client sees is final and never overshoots a stop."""

from __future__ import annotations

import torch

from backend.base import SamplingParams
from backend.engine.detokenize import TextStream
from backend.engine.sampling import make_generator, sample_rows


def _feed(tokenizer, text: str, stop: list[str]) -> tuple[list[str], TextStream]:
    stream = TextStream(tokenizer, stop)
    deltas = []
    for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
        deltas.append(stream.add(token))
        if stream.stopped:
            break
    deltas.append(stream.finish())
    return [d for d in deltas if d], stream


def test_deltas_add_up_to_the_text(local_backend) -> None:
    text = "Héllo wörld — ünïcode ✓ and emoji 🙂 done."
    deltas, stream = _feed(local_backend.loaded.tokenizer, text, [])
    assert "".join(deltas) == text == stream.text
    assert all("\ufffd" not in d for d in deltas)  # a split multi-byte character is never released


def test_a_stop_string_spanning_tokens_cuts_the_text_before_it(local_backend) -> None:
    deltas, stream = _feed(local_backend.loaded.tokenizer, "one two three STOPWORD four", ["STOPWORD"])
    assert stream.stopped
    assert "".join(deltas) == stream.text == "one two three "


def test_text_that_may_start_a_stop_string_is_held_back(local_backend) -> None:
    tokenizer = local_backend.loaded.tokenizer
    stream = TextStream(tokenizer, ["\n\nQ:"])
    released = "".join(stream.add(t) for t in tokenizer("Answer.\n\n", add_special_tokens=False)["input_ids"])
    assert released == "Answer."  # "\n\n" could begin "\n\nQ:"
    assert stream.finish() == "\n\n"


def test_top_p_keeps_the_most_likely_token_and_seeds_repeat() -> None:
    logits = torch.tensor([[5.0, 1.0, 0.5, 0.1]])
    tiny_p = SamplingParams(temperature=1.0, top_p=0.01)
    assert sample_rows(logits, [tiny_p], [make_generator(None)]) == [0]
    warm = SamplingParams(temperature=2.0)
    draws_a = [sample_rows(logits, [warm], [g])[0] for g in [make_generator(9)] * 20]
    draws_b = [sample_rows(logits, [warm], [g])[0] for g in [make_generator(9)] * 20]
    assert draws_a == draws_b
