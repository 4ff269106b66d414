"""Constrained decoding on the real SmolLM2: what comes out matches the constraint, every time."""

from __future__ import annotations

import json
import re

import pytest

from backend import Constraint, InvalidRequest, Prompt, SamplingParams

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "pets": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 2},
    },
    "required": ["name", "age"],
}


def ask(text: str) -> Prompt:
    return Prompt.from_messages([{"role": "user", "content": text}])


def conforms(value: object, schema: dict) -> bool:
    """Enough of JSON Schema for PERSON (jsonschema is not a dependency)."""
    if not isinstance(value, dict) or set(value) - set(schema["properties"]):
        return False
    if not set(schema["required"]) <= set(value):
        return False
    name, age, pets = value["name"], value["age"], value.get("pets", [])
    return (
        isinstance(name, str)
        and len(name) <= 24
        and isinstance(age, int)
        and 0 <= age <= 120
        and isinstance(pets, list)
        and len(pets) <= 2
        and all(isinstance(p, str) and len(p) <= 12 for p in pets)
    )


async def test_a_json_schema_answer_parses_and_validates_in_20_of_20_sampled_tries(local_backend) -> None:
    prompt = ask("Invent a person. Reply in JSON with name, age and pets.")
    sampling = SamplingParams(
        temperature=1.0, max_tokens=80, seed=100, constraint=Constraint.json_schema(PERSON)
    )
    results = await local_backend.generate([prompt] * 20, sampling)  # copy i samples with seed 100 + i
    parsed = [json.loads(r.text) for r in results]
    assert all(conforms(p, PERSON) for p in parsed), parsed
    assert all(r.finish_reason == "stop" for r in results)
    assert len({r.text for r in results}) > 1  # 20 different seeds, not one answer 20 times


async def test_a_regex_constraint_is_obeyed(local_backend) -> None:
    sampling = SamplingParams(
        temperature=1.0, max_tokens=20, seed=1, constraint=Constraint.regex(r"\d{3}-\d{4}")
    )
    results = await local_backend.generate([ask("Give me a phone number.")] * 3, sampling)
    for result in results:
        assert re.fullmatch(r"\d{3}-\d{4}", result.text), result.text
        assert result.finish_reason == "stop"


async def test_a_choice_constraint_answers_with_one_of_the_choices(local_backend) -> None:
    choices = ["sunny", "rainy", "snowy and cold"]
    sampling = SamplingParams(temperature=1.0, max_tokens=10, seed=5, constraint=Constraint.choice(choices))
    results = await local_backend.generate([ask("What is the weather like?")] * 4, sampling)
    assert all(r.text in choices for r in results), [r.text for r in results]


async def test_json_object_gives_a_json_object(local_backend) -> None:
    sampling = SamplingParams(temperature=0.7, max_tokens=60, seed=2, constraint=Constraint.json_object())
    [result] = await local_backend.generate([ask("Describe a cat as JSON.")], sampling)
    if result.finish_reason == "stop":
        assert isinstance(json.loads(result.text), dict)
    else:  # a small model may still be inside the object at max_tokens: it is a prefix of one
        assert result.text.startswith("{")


async def test_a_lark_grammar_constraint_is_obeyed_and_streams(local_backend) -> None:
    grammar = 'start: "The answer is " NUMBER "."\nNUMBER: /[0-9]{1,3}/'
    sampling = SamplingParams(temperature=0, max_tokens=12, constraint=Constraint.from_grammar(grammar))
    chunks = [c async for c in local_backend.stream(ask("What is 6 times 7?"), sampling)]
    text = "".join(c.text for c in chunks)
    assert re.fullmatch(r"The answer is [0-9]{1,3}\.", text), text
    assert chunks[-1].finish_reason == "stop"


@pytest.mark.parametrize(
    ("constraint", "param"),
    [
        (Constraint.regex("(unclosed"), "guided_regex"),
        (Constraint.json_schema({"type": "nonsense"}), "response_format"),
        (Constraint.from_grammar("start: undefined_rule", param="guided_grammar"), "guided_grammar"),
    ],
)
async def test_an_invalid_constraint_is_a_400_naming_its_field(local_backend, constraint, param) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await local_backend.generate(
            [Prompt.from_text("x")], SamplingParams(max_tokens=4, constraint=constraint)
        )
    assert caught.value.param == param


async def test_compiled_grammars_are_cached(local_backend) -> None:
    constraint = Constraint.regex(r"(yes|no)")
    sampling = SamplingParams(temperature=0, max_tokens=4, constraint=constraint)
    await local_backend.generate([Prompt.from_text("Is it?")], sampling)
    before = local_backend._grammars.compiled
    await local_backend.generate([Prompt.from_text("Is it?")] * 3, sampling)
    assert local_backend._grammars.compiled == before
