"""SoT and pipelined plans on the real embedded SmolLM2 (tiny budgets), and what happens when parts fail."""

from __future__ import annotations

from typing import Any

import pytest

from backend import SamplingParams
from middleware.config import Settings
from middleware.options import RequestOptions
from middleware.organize.options import OrganizeOptions
from middleware.organize.prompts import branch_prompts
from middleware.pipeline import Completion, Request
from middleware.stages import build_pipeline

from .fakes.organize_doubles import BranchFailureDouble, RecordingDouble, ScriptedSkeletonDouble

QUESTION = "What are some ways to save money on groceries?"
SMALL = {"skeleton_tokens": 20, "max_points": 2}


async def ask(backend: Any, mode: str, *, max_tokens: int = 24, messages: Any = None) -> Completion:
    pipeline = build_pipeline(backend, Settings())
    request = Request(
        sampling=SamplingParams(temperature=0, max_tokens=max_tokens),
        messages=messages or [{"role": "user", "content": QUESTION}],
        options=RequestOptions(organize={"mode": mode, **SMALL}),
    )
    return await pipeline.complete(request)


def test_branch_prompts_share_their_prefix_token_for_token(local_backend: Any) -> None:
    prompts = branch_prompts(local_backend, QUESTION, None)
    ids = [local_backend.tokenize(prompts.text_for(p)) for p in ("Buy in bulk", "Plan meals", "Use coupons")]
    assert prompts.shared_tokens > 30
    assert prompts.shared.token_ids is not None
    assert all(branch[: prompts.shared_tokens] == prompts.shared.token_ids for branch in ids)
    assert len({branch[prompts.shared_tokens] for branch in ids}) == 3  # they part right after it


async def test_sot_expands_every_point_in_one_batch_over_a_warmed_shared_prefix(local_backend: Any) -> None:
    backend = RecordingDouble(local_backend)
    completion = await ask(backend, "sot")
    report = completion.report
    plan = report.details["organize"]
    assert report.plan == "sot" and plan["mode"] == "sot"
    points = plan["skeleton"]["points"]
    assert len(points) == 2
    [batch] = [c for c in backend.branch_calls()]
    assert batch.kind == "generate" and len(batch.prompts) == len(points)
    assert plan["warm"]["tokens"] == plan["branches"][0]["shared_prefix_tokens"]
    budget = OrganizeOptions(**SMALL).point_budget(24, len(points))
    for branch in plan["branches"]:
        assert branch["cached_share_of_shared_prefix"] >= 0.9
        assert branch["completion_tokens"] <= branch["max_tokens"] == budget
    answer = completion.choices[0].text
    assert answer.startswith(f"1. **{points[0]}**")
    positions = [answer.index(f"{i}. **{p}**") for i, p in enumerate(points, 1)]
    assert positions == sorted(positions)
    spent = plan["skeleton"]["completion_tokens"] + sum(b["completion_tokens"] for b in plan["branches"])
    assert report.completion_tokens == spent
    assert plan["timings"]["skeleton_s"] <= plan["timings"]["total_s"]


async def test_pipelined_starts_point_one_while_the_skeleton_is_still_being_written(
    local_backend: Any,
) -> None:
    backend = RecordingDouble(local_backend)
    completion = await ask(backend, "pipelined")
    plan = completion.report.details["organize"]
    assert completion.report.plan == "pipelined"
    assert len(plan["branches"]) >= 2
    assert plan["branches"][0]["start_s"] < plan["timings"]["skeleton_s"]
    assert all(c.kind == "stream" for c in backend.branch_calls())
    assert all(b["cached_tokens"] >= b["shared_prefix_tokens"] for b in plan["branches"])
    assert completion.choices[0].text.startswith("1. **")


async def test_a_skeleton_that_does_not_parse_falls_back_to_plain_decoding_and_says_so(
    local_backend: Any,
) -> None:
    completion = await ask(ScriptedSkeletonDouble(local_backend), "sot", max_tokens=12)
    plan = completion.report.details["organize"]
    assert completion.report.plan == "plain" and plan["mode"] == "plain"
    assert "1 usable point (2 needed)" in plan["fallback"]
    assert plan["skeleton"]["dropped"][0]["why"] == "not a list item"
    assert completion.choices[0].text.strip()  # a real answer from plain decoding
    assert any("answered with plain decoding" in note for note in completion.report.notes)


@pytest.mark.parametrize("mode", ["sot", "pipelined"])
async def test_a_branch_that_fails_once_is_retried_and_the_answer_keeps_every_point(
    local_backend: Any, mode: str
) -> None:
    backend = BranchFailureDouble(local_backend, nth=2, times=1)
    completion = await ask(backend, mode)
    plan = completion.report.details["organize"]
    assert backend.failures == 1
    assert completion.report.plan == mode
    assert plan["branches"][1]["retries"] == 1
    assert any("retr" in event for event in plan["events"])
    assert all(f"**{p}**" in completion.choices[0].text for p in plan["skeleton"]["points"])


@pytest.mark.parametrize("mode", ["sot", "pipelined"])
async def test_a_branch_that_keeps_failing_falls_back_to_plain_decoding(
    local_backend: Any, mode: str
) -> None:
    backend = BranchFailureDouble(local_backend, nth=2, times=None)
    completion = await ask(backend, mode, max_tokens=12)
    plan = completion.report.details["organize"]
    assert backend.failures == 2  # the first try and its one retry
    assert completion.report.plan == "plain"
    assert "failed" in plan["fallback"]
    assert completion.choices[0].text.strip() and not completion.choices[0].text.startswith("1. **")


async def test_a_conversation_is_answered_plainly_with_the_reason(local_backend: Any) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": QUESTION},
    ]
    completion = await ask(local_backend, "sot", max_tokens=4, messages=messages)
    assert completion.report.plan == "plain"
    assert "single user question" in completion.report.details["organize"]["fallback"]
