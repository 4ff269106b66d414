"""Organized answers through the proxy, with the real `openai` client (app in a thread, embedded SmolLM2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from middleware.config import Settings
from middleware.server import create_app

from .conftest import serve_app_in_thread

QUESTION = [{"role": "user", "content": "What are some ways to save money on groceries?"}]
SMALL = {"skeleton_tokens": 20, "max_points": 2}


@pytest.fixture(scope="module")
def client(local_backend: Any) -> Iterator[openai.OpenAI]:
    with serve_app_in_thread(create_app(Settings(), backend=local_backend)) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize(("mode", "plan"), [("sot", "sot"), ("auto", "pipelined")])
def test_a_streamed_organized_answer_arrives_point_by_point_with_the_plan_in_the_last_chunk(
    client: openai.OpenAI, mode: str, plan: str
) -> None:
    stream = client.chat.completions.create(
        model="default",
        messages=QUESTION,
        max_tokens=24,
        temperature=0,
        stream=True,
        extra_body={"promptfold": {"organize": {"mode": mode, **SMALL}}},
    )
    arrivals = [(time.perf_counter(), chunk) for chunk in stream]
    pieces = [c.choices[0].delta.content for _, c in arrivals if c.choices and c.choices[0].delta.content]
    answer = "".join(pieces)
    last = arrivals[-1][1]
    report = last.model_extra["promptfold"]
    points = report["details"]["organize"]["skeleton"]["points"]
    assert report["plan"] == plan and len(points) >= 2
    if mode == "auto":
        assert report["details"]["organize"]["router"]["use_sot"] is True
    assert last.choices[0].finish_reason in ("stop", "length")
    positions = [answer.index(f"{i}. **{p}**") for i, p in enumerate(points, 1)]
    assert positions == sorted(positions) and positions[0] == 0
    assert len(pieces) > len(points)  # point 1 streamed live, not one chunk per point
    branches = report["details"]["organize"]["branches"]
    assert [b["title"] for b in branches] == points
    assert all(b["cached_tokens"] >= b["shared_prefix_tokens"] > 0 for b in branches)


def test_auto_sends_a_coding_question_to_plain_decoding_and_says_why(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Write a Python function that adds two numbers."}],
        max_tokens=4,
        temperature=0,
        extra_body={"promptfold": {"organize": "auto"}},
    )
    report = response.model_extra["promptfold"]
    assert report["plan"] == "plain"
    assert report["details"]["organize"]["router"]["rule"] == "code"


def test_an_unknown_organize_mode_is_a_400_naming_the_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="default", messages=QUESTION, max_tokens=4, extra_body={"promptfold": {"organize": "fast"}}
        )
    assert "organize" in str(caught.value)


def test_a_completions_prompt_asking_for_sot_is_answered_plainly_with_a_note(client: openai.OpenAI) -> None:
    response = client.completions.create(
        model="default",
        prompt="Ways to save money:",
        max_tokens=4,
        extra_body={"promptfold": {"organize": "sot"}},
    )
    report = response.model_extra["promptfold"]
    assert report["plan"] == "plain"
    assert any("organize needs chat messages" in note for note in report["notes"])
