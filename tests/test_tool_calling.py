"""The tool layer alone (middleware/tools): checking a request's tools, writing them into the prompt, and
the steps of one answer against a scripted FAKE backend (no model: each step's output is given)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from backend import Capabilities, Generation, InvalidRequest, Prompt, SamplingParams, StreamChunk, Usage
from middleware.tools import complete_choice, prompt_messages, stream_choice, tool_spec
from middleware.tools.run import _TextCut

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time"}},
]
ASK = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.mark.parametrize(
    ("tools", "choice", "param"),
    [
        (None, "required", "tool_choice"),
        (TOOLS, {"type": "function", "function": {"name": "nope"}}, "tool_choice"),
        (TOOLS, "sometimes", "tool_choice"),
        ([{"type": "function", "function": {"name": "bad name!"}}], None, "tools.0.function.name"),
        ([{"type": "web_search"}], None, "tools.0.type"),
    ],
)
def test_a_bad_tool_request_names_its_field(tools: Any, choice: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        tool_spec(tools, choice, None)
    assert caught.value.param == param


def test_a_named_choice_allows_only_that_function() -> None:
    spec = tool_spec(TOOLS, {"type": "function", "function": {"name": "get_time"}}, False)
    assert spec is not None and spec.forced and not spec.parallel
    assert [f["name"] for f in spec.functions()] == ["get_time"]
    assert tool_spec(None, "none", None) is None


def test_history_is_written_as_text_with_tagged_calls_and_results() -> None:
    spec = tool_spec(TOOLS, "auto", None)
    history = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Weather"}, {"type": "text", "text": "in Paris?"}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "sunny"},
    ]
    out = prompt_messages(history, spec)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("Be brief.") and '"name": "get_weather"' in out[0]["content"]
    assert out[1]["content"] == "Weather\nin Paris?"
    assert (
        out[2]["content"]
        == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    )
    assert (
        out[3]["content"] == '<tool_response>\n{"name": "get_weather", "content": "sunny"}\n</tool_response>'
    )
    assert prompt_messages(history[:2], None)[0] == {"role": "system", "content": "Be brief."}


def test_an_image_part_is_refused_by_a_text_backend() -> None:
    with pytest.raises(InvalidRequest) as caught:
        prompt_messages(
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], None
        )
    assert caught.value.param == "messages.0.content"


def test_text_that_may_open_a_call_is_held_back_until_it_is_known() -> None:
    cut = _TextCut()
    assert cut.feed("Let me check <to") == ("Let me check ", False)
    assert cut.feed("ol") == ("", False)
    assert cut.feed("_call>\n{") == ("", True)
    assert cut.before == "Let me check "
    other = _TextCut()
    assert other.feed("a <b") == ("a <b", False)  # "<b" cannot start the tag
    assert other.feed("<tool") == ("", False) and other.flush() == "<tool"


class ScriptedBackend:
    """Renders messages as JSON, streams `free` for the free step, and answers each constrained step
    with the next of `steps`."""

    name = "scripted"
    capabilities = Capabilities(chat_template=True, token_ids=True, constrained_decoding=True)

    def __init__(self, free: list[str], steps: list[str]) -> None:
        self.free, self.steps, self.samplings = free, list(steps), []  # type: list[str], list[str], list[SamplingParams]

    def apply_chat_template(self, messages: Sequence[dict[str, Any]], **_: Any) -> str:
        return json.dumps(list(messages))

    def tokenizer(self) -> Any:
        return None

    def tokenize(self, text: str) -> list[int]:
        return [ord(c) % 100 for c in text]

    async def stream(self, prompt: Prompt, sampling: SamplingParams) -> AsyncIterator[StreamChunk]:
        for piece in self.free:
            yield StreamChunk(text=piece, token_ids=[1])
        yield StreamChunk(text="", finish_reason="stop", usage=Usage(10, len(self.free)))

    async def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingParams, **_: Any
    ) -> list[Generation]:
        self.samplings.append(sampling)
        text = self.steps.pop(0)
        return [Generation(text=text, finish_reason="stop", usage=Usage(10, 3))]


CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


async def test_auto_without_a_tag_is_a_plain_answer() -> None:
    backend = ScriptedBackend(["It is ", "sunny."], [])
    answer = await complete_choice(
        backend, ASK, tool_spec(TOOLS, "auto", None), SamplingParams(max_tokens=50)
    )  # type: ignore[arg-type]
    assert (answer.text, answer.tool_calls, answer.finish_reason) == ("It is sunny.", None, "stop")


async def test_auto_with_a_tag_decodes_constrained_calls_in_parallel() -> None:
    backend = ScriptedBackend(
        ["Checking. <tool_", "call>\n{bad"], [CALL, "\n<tool_call>", CALL.replace("Paris", "Rome"), ""]
    )
    answer = await complete_choice(
        backend, ASK, tool_spec(TOOLS, "auto", None), SamplingParams(max_tokens=50)
    )  # type: ignore[arg-type]
    assert answer.text == "Checking. " and answer.finish_reason == "tool_calls"
    assert [json.loads(c.arguments)["city"] for c in answer.tool_calls or []] == ["Paris", "Rome"]
    kinds = [s.constraint.kind for s in backend.samplings if s.constraint]
    assert kinds == ["json_schema", "regex", "json_schema", "regex"]


async def test_a_named_choice_makes_exactly_one_call_and_streams_it_as_deltas() -> None:
    backend = ScriptedBackend([], [CALL])
    spec = tool_spec(TOOLS, {"type": "function", "function": {"name": "get_weather"}}, None)
    chunks = [c async for c in stream_choice(backend, ASK, spec, SamplingParams(max_tokens=50), index=2)]  # type: ignore[arg-type]
    deltas = [d for c in chunks for d in c.tool_calls or []]
    assert deltas[0].id and deltas[0].name == "get_weather" and deltas[0].arguments == ""
    assert deltas[1].arguments == '{"city": "Paris"}' and deltas[1].id is None
    assert chunks[-1].finish_reason == "tool_calls" and all(c.index == 2 for c in chunks)
    assert chunks[-1].usage == Usage(10, 3)


async def test_a_call_cut_by_max_tokens_finishes_with_length() -> None:
    backend = ScriptedBackend([], ['{"name": "get_weather", "argu'])
    answer = await complete_choice(
        backend, ASK, tool_spec(TOOLS, "required", None), SamplingParams(max_tokens=3)
    )  # type: ignore[arg-type]
    assert answer.finish_reason == "length" and answer.tool_calls is None


class _ShorteningService:
    """A FAKE CompressionService: halves every message it is given and records what it saw."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def compress(
        self, options: Any, *, messages: list[dict[str, Any]] | None = None, text: str | None = None
    ) -> Any:
        from middleware.compress.result import CompressionResult

        assert messages is not None
        self.seen = messages
        short = [{**m, "content": m["content"][: len(m["content"]) // 2]} for m in messages]
        return CompressionResult(
            text="", original_tokens=100, compressed_tokens=50, target_tokens=50, messages=short
        )


async def test_compression_leaves_tool_calls_and_results_as_they_are() -> None:
    from middleware.compress.options import CompressOptions
    from middleware.compress.stage import CompressStage
    from middleware.options import RequestOptions
    from middleware.pipeline import Request

    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history = [
        {"role": "user", "content": "A long question about the weather in Paris"},
        {"role": "assistant", "content": "Let me look that up for you", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny and warm all day"},
        {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]},
    ]
    service = _ShorteningService()
    request = Request(SamplingParams(), messages=history, options=RequestOptions(compress=CompressOptions()))
    out, report = await CompressStage(service)(request, None)  # type: ignore[arg-type]
    assert report is not None and report.applied
    assert service.seen == [history[0]]
    assert out.messages is not None and out.messages[1:] == history[1:]
    assert out.messages[0]["content"] == history[0]["content"][: len(history[0]["content"]) // 2]


class _HermesTemplate:
    """A FAKE transformers tokenizer whose chat template has a Hermes-style tools section."""

    chat_template = "{% if tools %}<tools>{% endif %} ... <tool_call> ..."

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        self.calls.append({"messages": messages, **kwargs})
        return "rendered by the model's template"


async def test_a_template_with_a_hermes_tools_section_renders_the_tools_itself() -> None:
    from backend.tokenizer import HFTokenizer
    from middleware.tools.run import rendered_prompt

    hf = _HermesTemplate()
    backend = ScriptedBackend([], [])
    backend.tokenizer = lambda: HFTokenizer(hf, "hermes-model")  # type: ignore[method-assign]
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    spec = tool_spec(TOOLS, "auto", None)
    assert rendered_prompt(backend, history, spec) == "rendered by the model's template"  # type: ignore[arg-type]
    [used] = hf.calls
    assert used["tools"] == TOOLS
    assert used["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert used["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "user", "content": 42}, "messages.0.content"),
        ({"role": "user", "content": ["not a part"]}, "messages.0.content"),
        ({"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}, "messages.0.tool_calls"),
    ],
)
def test_malformed_history_is_a_400_naming_the_message(message: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        prompt_messages([message], None)
    assert caught.value.param == param


def test_responses_input_that_is_not_text_or_parts_is_a_400() -> None:
    from middleware.server.responses_api import ResponsesRequest, chat_messages

    with pytest.raises(InvalidRequest) as caught:
        chat_messages(ResponsesRequest(input=[{"role": "user", "content": 7}]), [])
    assert caught.value.param == "input.0.content"
    with pytest.raises(InvalidRequest):
        chat_messages(ResponsesRequest(input=[{"role": "user", "content": [3]}]), [])
