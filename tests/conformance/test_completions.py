"""Legacy completions: lists of prompts, echo, logprobs, best_of, streaming, and what is refused."""

from __future__ import annotations

import httpx
import openai
import pytest

PROMPT = "The capital of France is"


def test_a_completion_continues_the_prompt(client: openai.OpenAI, model: str) -> None:
    r = client.completions.create(model=model, prompt=PROMPT, max_tokens=4, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 4


def test_a_list_of_prompts_gets_one_choice_each_and_usage_adds_up(client: openai.OpenAI, model: str) -> None:
    one = client.completions.create(model=model, prompt=PROMPT, max_tokens=2, temperature=0)
    two = client.completions.create(model=model, prompt=[PROMPT, PROMPT], max_tokens=2, temperature=0, n=2)
    assert [c.index for c in two.choices] == [0, 1, 2, 3]
    assert two.usage.prompt_tokens == 2 * one.usage.prompt_tokens


def test_token_id_prompts_are_taken(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    ids = http.post("/tokenize", json={"model": model, "prompt": PROMPT}).json()["tokens"]
    by_ids = client.completions.create(model=model, prompt=ids, max_tokens=3, temperature=0)
    by_text = client.completions.create(model=model, prompt=PROMPT, max_tokens=3, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text


def test_a_list_of_prompts_streams_with_choice_indexes(client: openai.OpenAI, model: str) -> None:
    chunks = list(
        client.completions.create(
            model=model, prompt=[PROMPT, "Two plus two is"], max_tokens=3, temperature=0, stream=True
        )
    )
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    whole = client.completions.create(
        model=model, prompt=[PROMPT, "Two plus two is"], max_tokens=3, temperature=0
    )
    assert texts == {c.index: c.text for c in whole.choices}


def test_echo_returns_the_prompt_before_the_answer(client: openai.OpenAI, model: str) -> None:
    r = client.completions.create(model=model, prompt=PROMPT, max_tokens=2, temperature=0, echo=True)
    assert r.choices[0].text.startswith(PROMPT) and len(r.choices[0].text) > len(PROMPT)


def test_logprobs_name_each_token_with_alternatives(client: openai.OpenAI, model: str) -> None:
    r = client.completions.create(model=model, prompt=PROMPT, max_tokens=3, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == r.usage.completion_tokens
    assert "".join(lp.tokens) == r.choices[0].text
    assert all(len(top) == 2 for top in lp.top_logprobs)
    assert lp.text_offset == sorted(lp.text_offset)


def test_echo_with_logprobs_scores_the_prompt_too(client: openai.OpenAI, model: str) -> None:
    r = client.completions.create(
        model=model, prompt=PROMPT, max_tokens=2, temperature=0, echo=True, logprobs=1
    )
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == r.usage.prompt_tokens + r.usage.completion_tokens
    assert lp.token_logprobs[0] is None and all(v is not None for v in lp.token_logprobs[1:])
    assert "".join(lp.tokens) == r.choices[0].text


def test_best_of_returns_n_of_the_samples(client: openai.OpenAI, model: str) -> None:
    r = client.completions.create(
        model=model, prompt=PROMPT, max_tokens=3, temperature=1.0, n=1, best_of=3, seed=3
    )
    assert len(r.choices) == 1 and r.choices[0].index == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": PROMPT, "best_of": 1, "n": 2}, "best_of"),
        ({"prompt": PROMPT, "logprobs": 21}, "logprobs"),
        ({"prompt": PROMPT, "max_tokens": "4"}, "max_tokens"),
        ({"prompt": PROMPT, "echo": "no"}, "echo"),
    ],
)
def test_bad_completion_requests_are_400s_naming_the_field(
    http: httpx.Client, model: str, body: dict, param: str
) -> None:
    response = http.post("/completions", json={"model": model, "max_tokens": 2, **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_suffix_is_refused_unless_lenient_where_it_cannot_be_honoured(http: httpx.Client, model: str) -> None:
    body = {"model": model, "prompt": PROMPT, "suffix": " and that is all.", "max_tokens": 2}
    strict = http.post("/completions", json=body)
    if strict.status_code == 200:
        pytest.skip("this backend takes suffix")
    assert strict.status_code == 400 and strict.json()["error"]["param"] == "suffix"
    lenient = http.post("/completions", json=body, headers={"x-promptfold-lenient": "1"})
    assert lenient.status_code == 200
    assert any("suffix" in note for note in lenient.json()["promptfold"]["notes"])
