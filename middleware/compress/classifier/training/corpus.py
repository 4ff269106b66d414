"""Training prompts for the classifier, from text nobody here wrote and that we may use:

- the dev splits of the evaluation sets (never a holdout file): nq_multidoc20_synth (20 Wikipedia
  passages and a question, plain and question-aware), gsm8k (dev solutions as 8-shot CoT prompts, plain),
  litm_kv_retrieval75 (JSON of UUID pairs, plain and question-aware);
- documentation of the installed packages: each distribution's README (its METADATA description), and
  the source of a few widely installed packages and the standard library (docstrings and code); plain,
  and question-aware with a sentence of one passage as the question (synthetic multi-passage prompts).

Every source gets a share of a character budget; what is taken is chosen with a seeded generator from a
sorted list, so the same machine and seed give the same corpus. The files the fidelity benchmark
compresses and promptfold's own text are left out.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

NQ_INSTRUCTION = (
    "Write a high-quality answer for the given question using only the provided search results "
    "(some of which might be irrelevant)."
)
GSM8K_INSTRUCTION = "Please reference the following examples to answer the math question,"
KV_INSTRUCTION = "Extract the value corresponding to the specified key in the JSON object below."
SHARES = {"nq": 0.3, "gsm8k": 0.08, "kv": 0.04, "readme": 0.38, "source": 0.2}
SOURCE_PACKAGES = (
    "json",
    "email",
    "asyncio",
    "logging",
    "http",
    "urllib",
    "numpy",
    "transformers",
    "torch",
    "pydantic",
    "requests",
    "setuptools",
    "pip",
    "jinja2",
    "tqdm",
)
# what the fidelity benchmark compresses (bench/compress_fidelity.py), and our own text
EXCLUDED_DISTRIBUTIONS = {"httpx", "charset-normalizer", "yandex-music", "pypinyin", "promptfold"}
EXCLUDED_PATHS = ("setuptools/config/", "fontTools/misc/plistlib")
DOC_CHARS = 6000  # a document is cut into prompts of at most this many characters, at blank lines


@dataclass
class TrainingPrompt:
    """One prompt to compress: what the compressor would be given, and which split it belongs to."""

    source: str  # nq | gsm8k | kv | readme | source
    group: str  # the document it came from: the train/eval split never separates a group
    mode: Literal["plain", "question_aware"]
    context: str | list[str]
    instruction: str = ""
    question: str = ""
    context_separator: str | None = None

    @property
    def chars(self) -> int:
        body = self.context if isinstance(self.context, str) else "\n".join(self.context)
        return len(body)

    def in_eval(self, percent: int) -> bool:
        return zlib.crc32(self.group.encode()) % 100 < percent


@dataclass
class Corpus:
    prompts: list[TrainingPrompt] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # source -> where it was read from

    def sizes(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for prompt in self.prompts:
            entry = out.setdefault(prompt.source, {"prompts": 0, "chars": 0})
            entry["prompts"] += 1
            entry["chars"] += prompt.chars
        return out


def build_corpus(eval_dir: Path | None, budget_chars: int, seed: int) -> Corpus:
    """About `budget_chars` characters of context in prompts, shared between the sources by SHARES (a
    source that runs out leaves its share unused)."""
    rng = random.Random(seed)
    corpus = Corpus()
    makers = {
        "nq": lambda: _nq(eval_dir),
        "gsm8k": lambda: _gsm8k(eval_dir),
        "kv": lambda: _kv(eval_dir),
        "readme": _readmes,
        "source": _sources,
    }
    for source, make in makers.items():
        candidates = list(make())
        if not candidates:
            continue
        rng.shuffle(candidates)
        budget = SHARES[source] * budget_chars
        for prompt in (p for group in candidates for p in group):
            if budget <= 0:
                break
            corpus.prompts.append(prompt)
            budget -= prompt.chars
    if eval_dir is not None:
        corpus.files["eval"] = str(eval_dir)
    return corpus


# --- the evaluation sets' dev splits ---------------------------------------------------------------


def _dev_rows(eval_dir: Path | None, name: str) -> list[dict]:
    if eval_dir is None:
        return []
    path = eval_dir / name / "dev.jsonl"  # dev only: holdout files are never opened here
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _nq(eval_dir: Path | None) -> Iterator[list[TrainingPrompt]]:
    for row in _dev_rows(eval_dir, "nq_multidoc20_synth"):
        docs = [f"Document [{i + 1}](Title: {c['title']}) {c['text']}" for i, c in enumerate(row["ctxs"])]
        question = f"Question: {row['question']}\nAnswer:"
        yield [
            TrainingPrompt("nq", row["id"], mode, docs, NQ_INSTRUCTION, question, "\n")
            for mode in ("plain", "question_aware")
        ]


_CALCULATOR = re.compile(r"<<[^>]*>>")


def _gsm8k(eval_dir: Path | None) -> Iterator[list[TrainingPrompt]]:
    rows = _dev_rows(eval_dir, "gsm8k")
    for start in range(0, len(rows) - 7, 8):
        shots = []
        for row in rows[start : start + 8]:
            steps = _CALCULATOR.sub("", row["answer"]).split("####")[0].strip()
            shots.append(
                f"Question: {row['question']}\nLet's think step by step\n{steps}\n"
                f"The answer is {row['final_answer']}"
            )
        yield [TrainingPrompt("gsm8k", rows[start]["id"], "plain", shots, GSM8K_INSTRUCTION, "", "\n\n")]


def _kv(eval_dir: Path | None) -> Iterator[list[TrainingPrompt]]:
    for row in _dev_rows(eval_dir, "litm_kv_retrieval75"):
        records = "{" + ",\n ".join(f'"{k}": "{v}"' for k, v in row["ordered_kv_records"]) + "}"
        question = f'Key: "{row["key"]}"\nCorresponding value:'
        yield [
            TrainingPrompt("kv", row["id"], mode, records, KV_INSTRUCTION, question)
            for mode in ("plain", "question_aware")
        ]


# --- installed packages ------------------------------------------------------------------------------


def _readmes() -> Iterator[list[TrainingPrompt]]:
    """Each distribution's long description (the README pypi shows), cut into prompts."""
    seen: set[str] = set()
    # .get, not []: the importlib_metadata backport (which some packages install) raises on a missing field
    for dist in sorted(metadata.distributions(), key=lambda d: _name(d.metadata)):
        name = _name(dist.metadata)
        if not name or name in seen or name in EXCLUDED_DISTRIBUTIONS:
            continue
        seen.add(name)
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""  # type: ignore[attr-defined]
        if isinstance(body, str) and len(body) > 400:
            yield list(_document_prompts("readme", f"readme:{name}", body))


def _name(fields: Any) -> str:
    return str(fields.get("Name") or "").lower()


def _sources() -> Iterator[list[TrainingPrompt]]:
    """Python files of a few packages and of the standard library (prose docstrings and code)."""
    roots = []
    for package in SOURCE_PACKAGES:
        try:  # where the package is on this machine's path, without importing it
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.submodule_search_locations:
            roots.append(Path(next(iter(spec.submodule_search_locations))))
    for root in roots:
        for path in sorted(root.rglob("*.py"))[:400]:
            text = _read(path)
            if text is None or any(part in str(path) for part in EXCLUDED_PATHS) or "test" in path.name:
                continue
            yield list(_document_prompts("source", f"source:{path.relative_to(root.parent)}", text))


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if 800 <= len(text) <= 200_000 else None


def _document_prompts(source: str, group: str, text: str) -> Iterator[TrainingPrompt]:
    """A document as plain prompts of at most DOC_CHARS, and, where a piece has several paragraphs, a
    question-aware prompt whose question is a sentence of one of them (seeded by the document's name)."""
    rng = random.Random(zlib.crc32(group.encode()))
    for piece in _pieces(text):
        yield TrainingPrompt(source, group, "plain", piece)
        paragraphs = [p for p in re.split(r"\n[ \t]*\n", piece) if p.strip()]
        sentences = [
            s.strip()
            for p in paragraphs
            for s in re.split(r"(?<=[.!?])\s+", p)
            if 40 <= len(s.strip()) <= 200 and not s.lstrip().startswith(("#", ">>>", "..", "```"))
        ]
        if len(paragraphs) >= 3 and sentences:
            question = f"Question: {rng.choice(sentences)}"
            yield TrainingPrompt(source, group, "question_aware", paragraphs, "", question, "\n\n")


def _pieces(text: str) -> Iterator[str]:
    text = text.replace("\r\n", "\n")
    at = 0
    while at < len(text):
        end = min(len(text), at + DOC_CHARS)
        if end < len(text):
            cut = text.rfind("\n\n", at + DOC_CHARS // 2, end)
            end = cut if cut > at else end
        piece = text[at:end].strip("\n")
        if len(piece) >= 200:
            yield piece
        at = end
