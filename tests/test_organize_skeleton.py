"""The skeleton reader, the per-point budget and the ordered answer: pure logic, no model."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from middleware.options import RequestOptions
from middleware.organize.options import OrganizeOptions
from middleware.organize.ordered import Fallback, assemble, ordered_text
from middleware.organize.plan import BranchRecord, PlanRecord
from middleware.organize.run import BranchSlot
from middleware.organize.skeleton import SkeletonReader, parse_skeleton


def test_reader_accepts_every_numbering_style_and_strips_markup() -> None:
    text = "1. **Eat well**:\n2) Exercise daily.\n(3) Sleep enough\nStep 4: Drink water\n- Manage stress\n5 - Laugh"
    skeleton = parse_skeleton(text)
    assert skeleton.points == [
        "Eat well",
        "Exercise daily",
        "Sleep enough",
        "Drink water",
        "Manage stress",
        "Laugh",
    ]
    assert skeleton.dropped == []


def test_a_repeated_point_is_dropped_and_ends_the_outline() -> None:
    skeleton = parse_skeleton("1. Buy in bulk\n2. Shop local markets\n3. Buy in bulk\n4. Never reached")
    assert skeleton.points == ["Buy in bulk", "Shop local markets"]
    assert [(d.line, d.why) for d in skeleton.dropped] == [("3. Buy in bulk", "duplicate")]
    assert "repeated" in skeleton.stop_reason


def test_prose_after_the_list_ends_it_and_prose_lines_are_not_points() -> None:
    text = "Sure, here it is:\n1. Rest\n2. Hydrate\nThese will help you a lot.\n3. Ignored"
    skeleton = parse_skeleton(text)
    assert skeleton.points == ["Rest", "Hydrate"]
    assert [d.why for d in skeleton.dropped] == ["not a list item", "not a list item"]
    assert "not a list item" in skeleton.stop_reason


def test_numbering_that_starts_again_ends_the_outline() -> None:
    assert parse_skeleton("1. Rest\n2. Hydrate\n1. Rest again").points == ["Rest", "Hydrate"]


def test_overlong_lines_are_dropped_as_prose_and_the_point_limit_stops_reading() -> None:
    long_line = "2. " + " ".join(["word"] * 20)
    skeleton = parse_skeleton(f"1. Short one\n{long_line}\n3. Third\n4. Fourth\n5. Fifth", max_points=3)
    assert skeleton.points == ["Short one", "Third", "Fourth"]
    assert skeleton.dropped[0].why == "too long"
    assert "limit of 3" in skeleton.stop_reason


def test_a_point_is_given_only_once_its_line_is_complete() -> None:
    reader = SkeletonReader(max_points=8)  # the prefilled answer start "1." is already there
    assert reader.feed(" Bal") == []
    assert reader.feed("anced meals") == []
    assert reader.feed("\n2. Regular") == ["Balanced meals"]
    assert reader.feed(" exercise") == []
    assert reader.finish() == ["Regular exercise"]
    assert reader.skeleton.text == "1. Balanced meals\n2. Regular exercise"


def test_the_answer_budget_is_split_between_points_with_a_floor() -> None:
    options = OrganizeOptions()
    assert options.point_budget(256, 4) == 64
    assert options.point_budget(256, 32) == 16  # the floor
    assert options.point_budget(10, 4) == 10  # never more than the whole budget as a floor
    assert OrganizeOptions(point_tokens=40).point_budget(256, 2) == 40


def test_organize_options_reject_unknown_modes_and_knobs() -> None:
    with pytest.raises(ValidationError):
        RequestOptions(organize="fast")
    with pytest.raises(ValidationError):
        RequestOptions(organize={"mode": "fast"})
    with pytest.raises(ValidationError):
        OrganizeOptions.from_request({"mode": "sot", "max_pointz": 3})
    assert RequestOptions(organize={"mode": "pipelined", "max_points": 4}).plan() == "pipelined"
    assert OrganizeOptions.from_request("sot").mode == "sot"


def test_the_whole_answer_lists_points_in_outline_order() -> None:
    branches = [BranchRecord(1, "Rest", text=" Sleep eight hours.\n"), BranchRecord(2, "Hydrate", text="")]
    assert assemble(branches) == "1. **Rest**: Sleep eight hours.\n2. **Hydrate**"


async def test_streaming_sends_point_one_live_and_later_points_once_earlier_ones_are_done() -> None:
    record = PlanRecord(mode="sot", requested="sot")
    slots: asyncio.Queue[BranchSlot | Fallback | BaseException | None] = asyncio.Queue()
    first, second = BranchSlot(BranchRecord(1, "Rest"), ""), BranchSlot(BranchRecord(2, "Hydrate"), "")
    for slot in (first, second, None):
        await slots.put(slot)
    # point 2 is complete before point 1 has even started
    for item in (("delta", " Drink"), ("delta", " water. \n"), ("done", "")):
        await second.deltas.put(item)
    stream = ordered_text(slots, record)
    await first.deltas.put(("delta", " Sleep"))
    assert await anext(stream) == "1. **Rest**: Sleep"  # live, before point 1 is done
    await first.deltas.put(("delta", " well."))
    assert await anext(stream) == " well."
    await first.deltas.put(("done", ""))
    rest = [piece async for piece in stream]
    assert "".join(str(p) for p in rest) == "\n2. **Hydrate**: Drink water."


async def test_a_point_that_fails_before_anything_was_sent_turns_the_stream_into_a_fallback() -> None:
    record = PlanRecord(mode="sot", requested="sot")
    slots: asyncio.Queue[BranchSlot | Fallback | BaseException | None] = asyncio.Queue()
    slot = BranchSlot(BranchRecord(1, "Rest"), "")
    await slots.put(slot)
    await slot.deltas.put(("failed", "backend down"))
    pieces = [piece async for piece in ordered_text(slots, record)]
    assert len(pieces) == 1 and isinstance(pieces[0], Fallback)
    assert "point 1 failed" in pieces[0].reason


async def test_an_unexpected_error_of_the_planner_is_raised_instead_of_leaving_the_stream_waiting() -> None:
    slots: asyncio.Queue[BranchSlot | Fallback | BaseException | None] = asyncio.Queue()
    await slots.put(RuntimeError("planner bug"))
    with pytest.raises(RuntimeError, match="planner bug"):
        await anext(ordered_text(slots, PlanRecord(mode="sot", requested="sot")))
