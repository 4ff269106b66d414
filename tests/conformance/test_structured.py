"""Structured output: response_format json_object / json_schema, the client's parse() helper, and vLLM's
guided_* fields. A constrained answer always parses and validates, whatever the model."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import openai
import pydantic
import pytest

ASK = [{"role": "user", "content": "Describe a city as JSON."}]
CITY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "population": {"type": "integer", "minimum": 0, "maximum": 99999999},
        "coastal": {"type": "boolean"},
    },
    "required": ["name", "population", "coastal"],
    "additionalProperties": False,
}

jsonschema = pytest.importorskip("jsonschema")  # the answers are validated with it


def test_json_schema_answers_validate_twenty_times_out_of_twenty(client: openai.OpenAI, model: str) -> None:
    def five(seed: int) -> list:
        return client.chat.completions.create(
            model=model,
            messages=ASK,
            n=5,
            temperature=1.0,
            seed=seed,
            max_tokens=60,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": CITY, "strict": True},
            },
        ).choices

    with ThreadPoolExecutor(4) as pool:  # in flight together: the server decodes the 20 side by side
        answers = [choice for batch in pool.map(five, range(4)) for choice in batch]
    assert len(answers) == 20
    for choice in answers:
        assert choice.finish_reason == "stop", choice.message.content
        jsonschema.validate(json.loads(choice.message.content or ""), CITY)


def test_json_object_answers_are_objects(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model, messages=ASK, max_tokens=40, temperature=0, response_format={"type": "json_object"}
    )
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content or ""), dict)
    else:  # cut by max_tokens: still the start of an object
        assert (r.choices[0].message.content or "").startswith("{")


class City(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=20)
    coastal: bool


def test_the_clients_parse_helper_returns_the_model(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.parse(
        model=model, messages=ASK, response_format=City, max_tokens=40, temperature=0
    )
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, City)


def test_guided_choice_answers_one_of_the_choices(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Is the sky blue? Answer yes or no."}],
        max_tokens=5,
        extra_body={"guided_choice": ["yes", "no"]},
    )
    assert r.choices[0].message.content in ("yes", "no")


def test_guided_regex_answers_match(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Give me a year."}],
        max_tokens=8,
        temperature=0,
        extra_body={"guided_regex": "(19|20)[0-9]{2}"},
    )
    content = r.choices[0].message.content or ""
    assert len(content) == 4 and content[:2] in ("19", "20") and content.isdigit()


def test_guided_json_is_response_format_in_vllms_words(client: openai.OpenAI, model: str) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    r = client.chat.completions.create(
        model=model, messages=ASK, max_tokens=20, temperature=0, extra_body={"guided_json": schema}
    )
    jsonschema.validate(json.loads(r.choices[0].message.content or ""), schema)


def test_a_schema_that_is_not_an_object_is_a_400(client: openai.OpenAI, model: str) -> None:
    try:
        client.chat.completions.create(
            model=model,
            messages=ASK,
            max_tokens=4,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": "not json"}},  # type: ignore[typeddict-item]
        )
    except openai.BadRequestError as error:
        assert error.body["param"] == "response_format"  # type: ignore[index]
    else:
        raise AssertionError("expected a 400")
