"""The typed sampling fields reach remote servers under their own names, and their per-token logprobs
come back as the same typed entries (against the FAKE servers in tests/fakes)."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio

from backend import Constraint, InvalidRequest, Prompt, SamplingParams
from backend._sglang_wire import logprob_fields, sglang_sampling
from backend.openai_compat import OpenAICompatBackend, openai_sampling
from backend.sglang import SGLangBackend
from tests.fakes import serve_in_thread
from tests.fakes.fake_openai import FakeOpenAIServer
from tests.fakes.fake_sglang import FakeSGLangServer

RULES = SamplingParams(
    max_tokens=9,
    top_k=20,
    min_p=0.05,
    frequency_penalty=0.5,
    presence_penalty=-0.5,
    repetition_penalty=1.2,
    logit_bias={42: -100},
    min_tokens=2,
    stop_token_ids=[7],
    ignore_eos=True,
)
CONSTRAINTS = [
    Constraint.json_schema({"type": "object", "properties": {"a": {"type": "integer"}}}),
    Constraint.json_object(),
    Constraint.regex(r"\d+"),
    Constraint.choice(["a.b", "c"]),
    Constraint.from_grammar('root ::= "x"'),
]


def test_sglang_gets_its_native_sampling_names() -> None:
    fields = sglang_sampling(RULES)
    assert fields == {
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": 9,
        "top_k": 20,
        "min_p": 0.05,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "repetition_penalty": 1.2,
        "min_new_tokens": 2,
        "stop_token_ids": [7],
        "ignore_eos": True,
        "logit_bias": {"42": -100},
    }
    assert logprob_fields(SamplingParams(logprobs=True, top_logprobs=3)) == {
        "return_logprob": True,
        "top_logprobs_num": 3,
        "return_text_in_logprobs": True,
    }
    assert logprob_fields(SamplingParams()) == {}


def test_openai_gets_openai_names_and_the_vllm_extensions() -> None:
    fields = openai_sampling(RULES)
    assert fields["min_tokens"] == 2 and fields["logit_bias"] == {"42": -100} and fields["top_k"] == 20
    chat = openai_sampling(SamplingParams(logprobs=True, top_logprobs=2))
    assert chat["logprobs"] is True and chat["top_logprobs"] == 2
    assert openai_sampling(SamplingParams(logprobs=True, top_logprobs=2), chat=False)["logprobs"] == 2
    assert "top_k" not in openai_sampling(SamplingParams())  # fields at their default stay out


@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=lambda c: c.kind)
def test_every_constraint_kind_has_a_wire_form_on_both_servers(constraint: Constraint) -> None:
    native = sglang_sampling(SamplingParams(constraint=constraint))
    openai = openai_sampling(SamplingParams(constraint=constraint))
    expected_native = {
        "json_schema": "json_schema",
        "json_object": "json_schema",
        "regex": "regex",
        "choice": "regex",
        "grammar": "ebnf",
    }[constraint.kind]
    assert expected_native in native
    if constraint.kind == "json_schema":
        assert json.loads(native["json_schema"]) == constraint.schema
        assert openai["response_format"]["json_schema"]["schema"] == constraint.schema
    if constraint.kind == "choice":
        assert native["regex"] == r"(a\.b|c)"
        assert openai["guided_choice"] == ["a.b", "c"]


def test_remote_backends_refuse_the_same_bad_values() -> None:
    with pytest.raises(InvalidRequest) as caught:
        sglang_sampling(SamplingParams(seed=2**64))
    assert caught.value.param == "seed"
    with pytest.raises(InvalidRequest):
        openai_sampling(SamplingParams(extra={"top_k": -5}))


@pytest.fixture(scope="module")
def sglang_server():
    server = FakeSGLangServer()
    with serve_in_thread(server.app) as url:
        server.url = url
        yield server


@pytest.fixture(scope="module")
def openai_server():
    server = FakeOpenAIServer()
    with serve_in_thread(server.app) as url:
        server.url = url
        yield server


@pytest_asyncio.fixture
async def sglang(sglang_server):
    sglang_server.reset()
    backend = SGLangBackend(sglang_server.url)
    yield backend
    await backend.close()


@pytest_asyncio.fixture
async def openai(openai_server):
    openai_server.reset()
    backend = OpenAICompatBackend(openai_server.url + "/v1")
    yield backend
    await backend.close()


async def test_sglang_answer_logprobs_arrive_as_typed_entries(sglang) -> None:
    [result] = await sglang.generate(
        [Prompt.from_text("say hello")], SamplingParams(max_tokens=8, logprobs=True, top_logprobs=2)
    )
    assert result.logprobs is not None and len(result.logprobs) == len(result.token_ids)
    first = result.logprobs[0]
    assert (first.token_id, first.token, first.logprob) == (result.token_ids[0], " ", -0.1)
    assert [t.logprob for t in first.top_logprobs] == [-0.1, -3.0]
    [plain] = await sglang.generate([Prompt.from_text("say hello")], SamplingParams(max_tokens=8))
    assert plain.logprobs is None


@pytest.mark.parametrize("route", ["chat", "completions"])
async def test_openai_answer_logprobs_arrive_as_typed_entries(openai, openai_server, route: str) -> None:
    prompt = (
        Prompt.from_messages([{"role": "user", "content": "hi"}])
        if route == "chat"
        else Prompt.from_text("hi")
    )
    [result] = await openai.generate([prompt], SamplingParams(max_tokens=8, logprobs=True, top_logprobs=1))
    assert result.logprobs is not None and len(result.logprobs) == result.usage.completion_tokens
    assert "".join(e.token for e in result.logprobs).startswith(result.text)  # then the EOS token
    assert all(e.logprob == -0.1 and e.token_id == -1 and len(e.top_logprobs) == 1 for e in result.logprobs)
    [(_, body)] = openai_server.requests
    assert body["logprobs"] == (True if route == "chat" else 1)
