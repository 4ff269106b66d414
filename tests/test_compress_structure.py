"""Structure found before cutting: JSON compressed as JSON, markup pairs, equations and answer lines,
grapheme clusters and scripts without spaces, and the task (instruction, question) of a whole prompt.

Model-free tests first; the ones at the end run the real SmolLM2 scorer on small inputs."""

from __future__ import annotations

import asyncio
import json
import unicodedata

import pytest
import regex

from middleware.compress import CompressOptions, Compressor, LocalScorer
from middleware.compress.document import from_prompt, from_text
from middleware.compress.fine import adjust, select
from middleware.compress.task import find_task
from middleware.compress.units import Unit, holds_required, render, split_units


@pytest.fixture(scope="module")
def compressor(local_backend) -> Compressor:  # type: ignore[no-untyped-def]
    return Compressor(LocalScorer())  # the same cached model as the session's engine


def kv_text(pairs: int) -> str:
    records = [(f"key-{i:02d}-{'abcdef'[i % 6]}x", f"value-{i:02d}-{'uvwxyz'[i % 6]}y") for i in range(pairs)]
    return "{" + ",\n ".join(f'"{k}": "{v}"' for k, v in records) + "}"


def keep_all_but(units: list[Unit], text: str, dropped: set[str]) -> list[bool]:
    return [u.always or text[u.start : u.end].strip(' ,\n"') not in dropped for u in units]


# --- JSON ------------------------------------------------------------------------------------------


def test_a_json_object_is_one_passage_and_never_cut_into_lines() -> None:
    text = "JSON data:\n" + kv_text(12)
    document = from_text(text)
    assert [s.text for s in document.segments][-1] == kv_text(12)  # one piece, not 12 lines


def test_dropping_json_members_leaves_valid_json_with_whole_pairs() -> None:
    text = kv_text(12)
    units = split_units(text)
    members = [u for u in units if u.group is not None]
    assert len(members) == 12 and all(u.block is not None for u in members)
    kept = [u.always or (u.group is not None and u.group % 3 == 0) for u in units]
    out = json.loads(render(text, units, kept))
    assert out == {k: v for i, (k, v) in enumerate(json.loads(text).items()) if i % 3 == 0}
    first_dropped = [u.always for u in units]  # only the root brackets
    assert json.loads(render(text, units, first_dropped)) == {}


def test_a_nested_member_keeps_the_members_it_sits_in_and_long_strings_are_pruned_inside() -> None:
    schema = {
        "title": "a schema",
        "properties": {
            "name": {"type": "string", "description": "the name of the package as it is published"},
            "version": {"type": "string"},
        },
        "tags": ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"],
    }
    text = json.dumps(schema, indent=2)
    units = split_units(text)
    for unit in units:
        unit.tokens = 1
        unit.score = 9.0 if '"version"' in text[unit.start : unit.end] else 1.0
    [mask] = select([units], budget=sum(u.always for u in units) + 4)  # version + properties
    out = json.loads(render(text, units, mask))
    assert out == {"properties": {"version": {}}}  # the member pulled in its parents, valid JSON
    words = [text[u.start : u.end].strip() for u in units if u.kind == "word"]
    assert "published" in words  # a long string is pruned word by word
    assert "string" not in words  # a short one is kept or dropped with its member
    kept = [u.always or u.block is not None for u in units]
    kept = [k and text[u.start : u.end].strip() != "published" for u, k in zip(units, kept, strict=True)]
    pruned = json.loads(render(text, units, kept))
    assert pruned["properties"]["name"]["description"] == "the name of the package as it is"
    adjust([units], [mask], -100)
    assert json.loads(render(text, units, mask)) == {}  # dropping a member drops what it holds


def test_escapes_inside_a_pruned_string_are_never_cut() -> None:
    text = json.dumps(
        {"note": 'say \\"hello\\" to the \\n new line and the \u00e9 accent \\\\ here'} | {"n": 1, "m": 2}
    )
    text = text.replace('"n"', '"k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "n"')
    units = split_units(text)
    for step in range(len(units)):
        kept = [u.always or (i + step) % 2 == 0 for i, u in enumerate(units)]
        json.loads(render(text, units, kept))  # never raises


def test_json_in_a_code_fence_or_in_prose_is_found() -> None:
    fenced = "Config:\n```json\n" + kv_text(10) + "\n```\nEnd."
    units = split_units(fenced)
    assert any(u.block is not None for u in units)
    kept = [u.always for u in units]
    out = render(fenced, units, kept)
    assert "```json\n{}\n```" in out
    prose = "The answer is in " + kv_text(9) + " and nowhere else."
    assert sum(u.group is not None for u in split_units(prose)) == 9


# --- markup ----------------------------------------------------------------------------------------


def test_a_url_keeps_its_delimiters_and_never_runs_into_the_next_words() -> None:
    text = '<p><a href="https://example.com/a-trAp/"><small>(ref)</small></a> and https://x.org/p then text'
    units = split_units(text)
    kinds = [(u.kind, text[u.start : u.end].strip()) for u in units]
    assert ("tag", '<a href="https://example.com/a-trAp/">') in kinds  # one unit, quotes and all
    dropped = {"then"}
    out = render(text, units, keep_all_but(units, text, dropped))
    assert "https://x.org/p text" in out
    img = "<img src=\"butterfly.png\" alt='HTTPX'> logo"
    assert split_units(img)[0].kind == "tag"


def test_paired_markup_is_kept_or_dropped_as_a_pair() -> None:
    text = 'Use ``skipkeys`` (or "sort keys") with **bold words** and <b>tags</b>.'
    units = split_units(text)
    assert ("code", " ``skipkeys``") in [(u.kind, text[u.start : u.end]) for u in units]
    groups: dict[int, list[str]] = {}
    for unit in units:
        if unit.group is not None:
            groups.setdefault(unit.group, []).append(text[unit.start : unit.end].strip())
    assert sorted(map(tuple, groups.values())) == sorted(
        [("(", ")"), ("**", "**"), ('"', '"'), ("<b>", "</b>")]
    )
    # keep the opening halves only: every pair is dropped whole, and an empty pair is not written
    opening = {"(", '"', "**", "<b>"}
    kept = [u.kind not in ("pair", "tag") or text[u.start : u.end].strip() in opening for u in units]
    out = render(text, units, kept)
    assert out.count("(") == out.count(")") and out.count('"') % 2 == 0 and out.count("**") % 2 == 0
    only_inside = [u.group is not None or text[u.start : u.end].strip() == "tags" for u in units]
    assert render(text, units, only_inside).strip() == "<b>tags</b>"


def test_unfenced_source_code_is_kept_or_dropped_line_by_line() -> None:
    code = (
        "Here is the helper:\n\n"
        "import json\nfrom pathlib import Path\n\n"
        "def load(path):\n    # read it once\n    text = Path(path).read_text()\n    return json.loads(text)\n"
    )
    units = split_units(code)
    lines = {code[u.start : u.end].strip() for u in units if u.kind == "line"}
    assert lines == {
        "import json",
        "from pathlib import Path",
        "def load(path):",
        "# read it once",
        "text = Path(path).read_text()",
        "return json.loads(text)",
    }
    assert len(from_text(code).segments) == 2  # the prose paragraph, and the code never cut apart


# --- reasoning -------------------------------------------------------------------------------------

DEMO = (
    "Question: Mark's team scores 25 2 pointers and 8 3 pointers. How many points?\n"
    "Let's think step by step\n"
    "They scored 25*2= 50 points in 2 pointers and 8*3= 24 points in 3 pointers.\n"
    "All together 50+24= 74 points, or 3 hours x 2 chapters = 6 hours.\n"
    "The answer is 74"
)


def test_an_equation_is_one_unit_and_the_answer_line_is_kept() -> None:
    units = split_units(DEMO)
    pieces = {(u.kind, DEMO[u.start : u.end].strip()) for u in units}
    for equation in ("25*2= 50", "8*3= 24", "50+24= 74", "3 hours x 2 chapters = 6"):
        assert ("equation", equation) in pieces
    [answer] = [u for u in units if u.kind == "answer"]
    assert DEMO[answer.start : answer.end].strip() == "The answer is 74" and answer.always
    assert not holds_required(units)  # the answer line does not force its demonstration to stay


# --- graphemes and scripts -------------------------------------------------------------------------

SCRIPTS = {
    "hindi": "हिन्दी भारत की राजभाषा है और करोड़ों लोग इसे बोलते हैं",
    "thai": "ภาษาไทย เป็นภาษาราชการ ของประเทศไทย",
    "nfd": unicodedata.normalize("NFD", "Le café était déjà fermé à côté de l'église"),
    "emoji": "Steps 1️⃣ mix 2️⃣ bake 👨‍👩‍👧 family 🇫🇷 flag 👍🏽 ok",
    "chinese": "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "arabic": "اللغة العربية هي لغة رسمية في أكثر من عشرين دولة",
    "hebrew": "עברית היא שפה רשמית במדינת ישראל",
    "bidi": "name \u202eevil.exe\u202c here and \u2067isolated\u2069 there",
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_units_never_cut_a_grapheme_cluster(script: str) -> None:
    text = SCRIPTS[script]
    clusters = {m.start() for m in regex.finditer(r"\X", text)} | {len(text)}
    units = split_units(text)
    assert all(u.start in clusters and u.end in clusters for u in units)
    for step in (2, 3):  # drop every other (third) unit: what is left is whole clusters
        kept = [i % step != 0 for i in range(len(units))]
        out = render(text, units, kept)
        assert set(regex.findall(r"\X", out)) <= set(regex.findall(r"\X", text)) | {" "}


def test_chinese_is_cut_per_ideograph_and_never_spaced() -> None:
    text = SCRIPTS["chinese"]
    units = split_units(text)
    assert len(units) >= 20
    out = render(text, units, [i % 3 != 1 for i in range(len(units))])
    assert " " not in out


def test_a_bidi_override_is_kept_only_with_its_closing_mark() -> None:
    text = SCRIPTS["bidi"]
    units = split_units(text)
    [override] = [u for u in units if "\u202e" in text[u.start : u.end]]
    closing = [u for u in units if "\u202c" in text[u.start : u.end]]
    assert override.group is not None and closing[0].group == override.group
    out = render(text, units, [u is not closing[0] for u in units])
    assert "\u202e" not in out and "\u202c" not in out


# --- the task --------------------------------------------------------------------------------------

NQ_PROMPT = (
    "Write a high-quality answer for the given question using only the provided search results.\n\n"
    + "\n".join(f"Document [{i}](Title: T{i}) Text of document {i} about topic {i}." for i in range(1, 9))
    + "\n\nQuestion: who wrote document 3\nAnswer:"
)


def test_the_instruction_and_question_of_a_whole_prompt_are_found() -> None:
    task = find_task(NQ_PROMPT, "who wrote document 3")
    assert task.instruction.startswith("Write a high-quality") and task.question.startswith("Question:")
    assert (
        task.instruction + task.instruction_separator + task.context + task.question_separator + task.question
        == NQ_PROMPT
    )
    plain = find_task(NQ_PROMPT)  # without the question: the last paragraph reads like one
    assert plain.question == task.question and plain.instruction == task.instruction
    gsm = "Please reference the examples,\n" + DEMO + "\n\n" + DEMO + "\n\nQuestion: How many is 2+2?"
    shots = find_task(gsm)
    assert (
        shots.instruction == "Please reference the examples,"
        and shots.question == "Question: How many is 2+2?"
    )
    prose = "First paragraph of a report.\n\nSecond paragraph, longer than the first one.\n\nThird and last."
    assert find_task(prose).instruction == "" and find_task(prose).question == ""
    document = from_prompt(NQ_PROMPT, question="who wrote document 3")
    assert document.render() == NQ_PROMPT
    assert [s.role for s in document.segments if s.rate == 1.0] == ["instruction", "question"]


# --- with the real scorer --------------------------------------------------------------------------


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_json_document_compressed_plainly_stays_json_and_lands_on_the_rate(compressor: Compressor) -> None:
    document = {
        "name": "northwind",
        "description": "A small service that tracks orders, shipments and invoices for a trading company",
        "dependencies": {f"package-{i}": f">={i}.0" for i in range(12)},
        "scripts": {"test": "pytest -q", "lint": "ruff check .", "build": "python -m build"},
        "keywords": ["orders", "shipments", "invoices", "trading", "ledger", "customers"],
    }
    text = json.dumps(document, indent=2)
    result = run(compressor.compress_text(text, CompressOptions(rate=0.5)))
    assert isinstance(json.loads(result.text), dict)
    assert abs(result.ratio - 0.5) <= 0.1


def test_question_aware_key_value_retrieval_keeps_the_gold_pair_as_valid_json(compressor: Compressor) -> None:
    import uuid

    rng = __import__("random").Random(7)
    pairs = [
        (str(uuid.UUID(int=rng.getrandbits(128))), str(uuid.UUID(int=rng.getrandbits(128))))
        for _ in range(12)
    ]
    data = "{" + ",\n ".join(f'"{k}": "{v}"' for k, v in pairs) + "}"
    key, value = pairs[9]
    result = run(
        compressor.compress_parts(
            "JSON data:\n" + data,
            CompressOptions(rate=0.25, question=key),
            instruction="Extract the value corresponding to the specified key in the JSON object below.",
            question=f'Key: "{key}"\nCorresponding value:',
        )
    )
    body = result.text[result.text.index("{") : result.text.rindex("}") + 1]
    kept = json.loads(body)
    assert kept.get(key) == value and len(kept) < len(pairs) / 2
    assert result.text.endswith(f'Key: "{key}"\nCorresponding value:')


def test_chain_of_thought_keeps_whole_equations_and_every_answer_line(compressor: Compressor) -> None:
    demos = [
        DEMO.replace("74", str(74 + i)).replace("Mark", name) for i, name in enumerate(["Ann", "Bo", "Cy"])
    ]
    result = run(compressor.compress_parts(demos, CompressOptions(rate=0.4, coarse=False)))
    assert result.text.count("The answer is") == 3
    for fragment in ("25*", "8*", "50+24", "x 2 chapters"):
        if fragment in result.text:
            assert any(
                eq in result.text for eq in ("25*2= 50", "8*3= 24", "50+24= 7", "3 hours x 2 chapters = 6")
            )
    assert "+= " not in result.text and "*= " not in result.text


def test_the_sdk_keeps_the_instruction_and_question_of_a_whole_prompt(compressor: Compressor) -> None:
    from middleware.compress import compress

    question = "who wrote document 3"
    for options in ({"rate": 0.3, "question": question}, {"rate": 0.3}):
        result = compress(NQ_PROMPT, compressor=compressor, **options)  # type: ignore[arg-type]
        assert result.text.startswith(
            "Write a high-quality answer for the given question using only the provided search results."
        )
        assert result.text.endswith("\n\nQuestion: who wrote document 3\nAnswer:")


def test_multilingual_text_is_compressed_without_cutting_a_cluster_or_spacing_chinese(
    compressor: Compressor,
) -> None:
    text = "\n\n".join(SCRIPTS[s] * 3 for s in ("hindi", "nfd", "chinese", "emoji", "thai"))
    result = run(compressor.compress_text(text, CompressOptions(rate=0.5)))
    assert set(regex.findall(r"\X", result.text)) <= set(regex.findall(r"\X", text))
    for line in result.text.splitlines():
        if regex.search(r"\p{Han}", line):
            assert not regex.search(r"\p{Han} +\p{Han}", line)
