"""Sampling values are checked in one place, with OpenAI/vLLM ranges, before any engine sees them."""

from __future__ import annotations

import pytest

from backend import Constraint, InvalidRequest, SamplingParams
from backend.sampling_params import lift_openai_fields

BAD_VALUES = [
    ({"seed": 2**64}, "seed"),
    ({"seed": 2**63}, "seed"),
    ({"seed": -(2**63) - 1}, "seed"),
    ({"temperature": 1e-40}, "temperature"),
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.01}, "top_p"),
    ({"top_k": -2}, "top_k"),
    ({"min_p": 1.5}, "min_p"),
    ({"frequency_penalty": 2.1}, "frequency_penalty"),
    ({"presence_penalty": -2.1}, "presence_penalty"),
    ({"repetition_penalty": 0}, "repetition_penalty"),
    ({"logit_bias": {5: 101}}, "logit_bias"),
    ({"logit_bias": {-1: 1}}, "logit_bias"),
    ({"logit_bias": {5: float("inf")}}, "logit_bias"),
    ({"min_tokens": 20, "max_tokens": 10}, "min_tokens"),
    ({"min_tokens": -1}, "min_tokens"),
    ({"stop_token_ids": [-3]}, "stop_token_ids"),
    ({"ignore_eos": "yes"}, "ignore_eos"),
    ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"constraint": Constraint.regex("")}, "guided_regex"),
    ({"constraint": Constraint.choice([])}, "guided_choice"),
]


@pytest.mark.parametrize(("fields", "param"), BAD_VALUES)
def test_a_value_out_of_range_is_refused_naming_its_openai_field(fields: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        SamplingParams(**fields).validate()
    assert caught.value.param == param
    assert caught.value.status == 400


def test_the_edges_of_every_range_are_accepted() -> None:
    SamplingParams(
        temperature=0.01,
        top_p=1.0,
        seed=2**63 - 1,
        top_k=-1,
        min_p=1.0,
        frequency_penalty=-2,
        presence_penalty=2,
        repetition_penalty=0.5,
        logit_bias={0: -100, 49151: 100},
        min_tokens=16,
        max_tokens=16,
        stop_token_ids=[0],
        ignore_eos=True,
        logprobs=True,
        top_logprobs=20,
        constraint=Constraint.json_object(),
    ).validate()
    SamplingParams(temperature=0, seed=-(2**63), top_k=1, top_p=0.001).validate()
    SamplingParams(temperature=2).validate()


def test_openai_names_in_extra_become_typed_fields_and_unknown_ones_stay() -> None:
    sampling = lift_openai_fields(
        SamplingParams(
            extra={
                "top_k": 5,
                "frequency_penalty": 0.5,
                "logit_bias": {"42": -100},
                "logprobs": True,
                "top_logprobs": 3,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": False},
                },
                "min_tokens": None,
                "my_own_field": 1,
            }
        )
    )
    assert sampling.top_k == 5 and sampling.frequency_penalty == 0.5
    assert sampling.logit_bias == {42: -100}
    assert sampling.logprobs and sampling.top_logprobs == 3
    assert sampling.constraint == Constraint.json_schema(
        {"type": "object"}, strict=False, param="response_format"
    )
    assert sampling.min_tokens == 0
    assert sampling.extra == {"my_own_field": 1}


def test_legacy_completions_logprobs_count_means_top_logprobs() -> None:
    sampling = lift_openai_fields(SamplingParams(extra={"logprobs": 4}))
    assert sampling.logprobs and sampling.top_logprobs == 4


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ({"response_format": {"type": "json_object"}}, "json_object"),
        ({"guided_json": '{"type": "object"}'}, "json_schema"),
        ({"guided_regex": "[a-z]+"}, "regex"),
        ({"guided_choice": ["yes", "no"]}, "choice"),
        ({"guided_grammar": 'start: "a"'}, "grammar"),
    ],
)
def test_structured_output_fields_become_a_constraint(extra: dict, kind: str) -> None:
    constraint = lift_openai_fields(SamplingParams(extra=extra)).constraint
    assert constraint is not None and constraint.kind == kind
    assert constraint.field_name == next(iter(extra))


def test_a_malformed_response_format_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        lift_openai_fields(SamplingParams(extra={"response_format": {"type": "yaml"}}))
    assert caught.value.param == "response_format"
    with pytest.raises(InvalidRequest) as caught:
        lift_openai_fields(SamplingParams(extra={"guided_json": "{not json"}))
    assert caught.value.param == "guided_json"
