"""Fixtures for retrieval tests: a fresh data folder, the SmolLM2 token counter, a tiny corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from middleware.retrieval.catalog import Corpora
from middleware.retrieval.corpus import DocumentInput
from middleware.tokens import TokenCounter, default_token_counter

ROOT = Path(__file__).resolve().parents[2]


def _eval_dir() -> Path:
    """The shared evaluation sets: PROMPTFOLD_EVAL_DIR, else shared/eval beside the clone."""
    explicit = os.environ.get("PROMPTFOLD_EVAL_DIR")
    candidates = [Path(explicit)] if explicit else []
    candidates += [ROOT.parent / "shared" / "eval", Path("/work/shared/eval")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


EVAL = _eval_dir()
HANDBOOK = DocumentInput(
    "handbook",
    "Employees get 25 days of paid leave per year. Leave must be booked two weeks ahead.\n\n"
    "The office opens at 8 am and closes at 6 pm.",
    source="handbook.txt",
)
CAFETERIA = DocumentInput("cafeteria", "The cafeteria serves lunch from noon to 2 pm.", source="cafe.md")
PARKING = DocumentInput("parking", "Staff parking is in garage B, level 3. Visitors park in garage A.")


@pytest.fixture(scope="session")
def count() -> TokenCounter:
    return default_token_counter()


@pytest.fixture
def corpora(tmp_path: Path) -> Corpora:
    return Corpora(tmp_path / "corpora")


@pytest.fixture
def office(corpora: Corpora, count: TokenCounter):
    corpus = corpora.create("office")
    corpus.add([HANDBOOK, CAFETERIA, PARKING], count)
    return corpus


def multidoc_rows(split: str = "dev", n: int = 3) -> list[dict]:
    path = EVAL / "nq_multidoc20_synth" / f"{split}.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is not on this machine")
    with path.open() as lines:
        return [json.loads(next(lines)) for _ in range(n)]


def litm_prompt(row: dict) -> str:
    """lost-in-the-middle's qa prompt for one nq_multidoc20_synth row."""
    documents = "\n".join(
        f"Document [{i}](Title: {ctx['title']}) {ctx['text']}" for i, ctx in enumerate(row["ctxs"], start=1)
    )
    return (
        "Write a high-quality answer for the given question using only the provided search results "
        f"(some of which might be irrelevant).\n\n{documents}\n\nQuestion: {row['question']}\nAnswer:"
    )
