"""The classifier scorer vs the SmolLM2 scorer vs llmlingua, on the same inputs (holdout), one run.

    bash bench/setup_llmlingua_venv.sh                 # once: llmlingua 0.2.2 in /work/venvs/llmlingua
    python bench/small_scorer.py [--classifier DIR] [--nq-rows 100] [--kv-rows 20] [--llmlingua-rows 4]
    python bench/small_scorer.py --split dev --nq-rows 8 --parts nq,speed       # tuning, dev only

Sides: `smollm2` is promptfold with the SmolLM2 scorer (the teacher), `classifier` promptfold with the
classifier scorer (the installed one, or --classifier DIR), `llmlingua` the llmlingua package on the
first --llmlingua-rows rows (its own SmolLM2 in fp32, LongLLMLingua settings as bench/compress.py runs it).
Our two sides share everything but the scorer: segmentation, protected spans, the passage ranker,
budgets and selection. Parts (--parts):

- nq: nq_multidoc20_synth, question-aware at 0.5 / 0.25 / 0.1: gold answer kept, achieved ratio, and
  agreement with the SmolLM2 side: kept words agreed (of the context words SmolLM2 keeps, the share the
  side keeps too) and dropped words agreed (of the words SmolLM2 drops inside the passages it keeps, the
  share the side drops too: the word choice alone; a random choice scores about the share dropped);
  llmlingua's words are aligned to the original with difflib, in plain mode only (it reorders passages);
- fidelity: the gsm8k 8-shot CoT prefix, plain at 0.5 / 0.25: numbers intact (bench/compress.py's check)
  and agreement; litm_kv_retrieval75 rows, question-aware at 0.5 / 0.25: gold UUID kept whole, UUIDs cut,
  JSON that still parses;
- speed: the scorers alone on the same scoring requests (what the compressor sends for --speed-rows NQ
  rows, plain mode), in SmolLM2 tokens per second, on this machine's cores; and whole compressions
  (question-aware 0.25) per side, llmlingua's from the nq part;
- ttft: `promptfold serve` on the embedded engine, a ~3.3k-token multi-document NQ chat (holdout rows):
  direct (bypass) and plain 0.5 / plain 0.25 / question-aware 0.25 with each scorer, median of --reps.
Both promptfold sides score with a memo across rates in the nq and fidelity parts (a passage's scores do
not depend on the rate); timing is only taken in the speed and ttft parts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import difflib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.compress import (
    EVAL,
    GSM8K_INSTRUCTION,
    NQ_INSTRUCTION,
    Llmlingua,
    has_answer,
    nq_docs,
    nq_question,
    nq_task,
    numbers_check,
    read_jsonl,
)
from middleware.compress.classifier.training.corpus import KV_INSTRUCTION

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEXISH = re.compile(r"[0-9a-f][0-9a-f-]{5,}[0-9a-f]")
SIDES = ("smollm2", "classifier")


# --- the sides ----------------------------------------------------------------------------------------


class Memo:
    """A scorer that remembers (text, prefix) -> scores: rates after the first cost no model call."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.memo = inner, inner.name, {}

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def score(self, requests: Sequence[Any]) -> list[Any]:
        todo = [r for r in dict.fromkeys(requests) if (r.text, r.prefix) not in self.memo]
        if todo:
            for request, scores in zip(todo, await self.inner.score(todo), strict=True):
                self.memo[(request.text, request.prefix)] = scores
        return [self.memo[(r.text, r.prefix)] for r in requests]


def our_sides(classifier: Path | None) -> dict[str, Any]:
    from middleware.compress import Compressor, LocalScorer
    from middleware.compress.classifier import ClassifierScorer

    return {
        "smollm2": Compressor(Memo(LocalScorer())),
        "classifier": Compressor(Memo(ClassifierScorer(classifier))),
    }


async def compress(compressor: Any, task: dict) -> Any:
    from middleware.compress import CompressOptions

    options = CompressOptions(rate=task["rate"], mode=task["mode"])
    return await compressor.compress_parts(
        task["context"],
        options,
        instruction=task["instruction"],
        question=task["question"],
        context_separator=task.get("context_separator"),
    )


# --- kept words -----------------------------------------------------------------------------------


def original_of(task: dict) -> str:
    joiner = task.get("context_separator") or "\n\n"
    context = task["context"] if isinstance(task["context"], str) else joiner.join(task["context"])
    parts = [p for p in (task["instruction"], context, task["question"]) if p]
    return "\n\n".join(parts)


def context_words(task: dict, original: str) -> list[tuple[int, int]]:
    """Spans of the words of the context (not the instruction or question, which are always kept)."""
    start = len(task["instruction"]) + 2 if task["instruction"] else 0
    end = len(original) - (len(task["question"]) + 2 if task["question"] else 0)
    return [m.span() for m in re.finditer(r"\S+", original) if start <= m.start() < end]


def kept_ours(result: Any, original: str, words: list[tuple[int, int]]) -> list[bool] | None:
    mask = result.kept_mask
    if "".join(p.text for p in result.pieces) != original:
        return None
    return [mask[s] for s, _ in words]


def kept_aligned(compressed: str, original: str, words: list[tuple[int, int]]) -> list[bool]:
    """Which original words survive in a compressed text, by difflib alignment of the word sequences."""
    before = [original[s:e] for s, e in words]
    after = compressed.split()
    kept = [False] * len(before)
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            kept[block.a + k] = True
    return kept


def agreement(reference: list[bool] | None, other: list[bool] | None) -> tuple[int, int]:
    """(words kept by both, words kept by the reference)."""
    if reference is None or other is None:
        return 0, 0
    return sum(a and b for a, b in zip(reference, other, strict=True)), sum(reference)


def drop_agreement(
    reference: list[bool] | None, other: list[bool] | None, passages: list[int]
) -> tuple[int, int]:
    """(words dropped by both, words dropped by the reference), counting only the passages the reference
    kept something of: how alike the word choice is, leaving out the passage choice (which our two sides
    share: the same ranker) and the words both keep because a kept passage is pruned lightly."""
    if reference is None or other is None:
        return 0, 0
    kept = {p for p, keep in zip(passages, reference, strict=True) if keep}
    inside = [(a, b) for a, b, p in zip(reference, other, passages, strict=True) if p in kept]
    return sum(not a and not b for a, b in inside), sum(not a for a, _ in inside)


def passage_of_words(original: str, words: list[tuple[int, int]]) -> list[int]:
    """The passage (line, or paragraph when the context has no line breaks inside passages) of each word:
    how many line breaks come before it."""
    return [original.count("\n", 0, start) for start, _ in words]


# --- nq and fidelity ------------------------------------------------------------------------------------


def kv_task(row: dict, rate: float) -> dict:
    records = "{" + ",\n ".join(f'"{k}": "{v}"' for k, v in row["ordered_kv_records"]) + "}"
    question = f'Key: "{row["key"]}"\nCorresponding value:'
    return {
        "context": records,
        "instruction": KV_INSTRUCTION,
        "question": question,
        "rate": rate,
        "mode": "question_aware",
    }


def gsm8k_task(rate: float) -> dict:
    fewshot = (EVAL / "gsm8k" / "fewshot_8shot_cot.txt").read_text(encoding="utf-8")
    return {
        "context": fewshot.split("\n\n"),
        "instruction": GSM8K_INSTRUCTION,
        "question": "",
        "rate": rate,
        "mode": "plain",
        "context_separator": "\n\n",
    }


def run_tasks(
    name: str, tasks: list[dict], sides: dict[str, Any], llmlingua: Llmlingua | None, lingua_rows: int
) -> list[dict]:
    """Every task on every side: the texts, counts and kept words (by the task's row order)."""
    from backend.tokenizer import packaged_tokenizer

    count = packaged_tokenizer().count
    out = []
    for index, task in enumerate(tasks):
        original = original_of(task)
        words = context_words(task, original)
        row = task.get("row", index)
        entry: dict[str, Any] = {"set": name, "rate": task["rate"], "row": row, "tokens": count(original)}
        masks: dict[str, list[bool] | None] = {}
        for side, compressor in sides.items():
            result = asyncio.run(compress(compressor, task))
            entry[side] = {"text": result.text, "tokens": result.compressed_tokens}
            masks[side] = kept_ours(result, original, words)
        if llmlingua is not None and row < lingua_rows:
            text, seconds = llmlingua.compress(task)
            entry["llmlingua"] = {"text": text, "tokens": count(text), "seconds": seconds}
            # llmlingua reorders passages in question-aware mode: a word alignment only holds in plain mode
            masks["llmlingua"] = kept_aligned(text, original, words) if task["mode"] == "plain" else None
        passages = passage_of_words(original, words)
        for side, mask in masks.items():
            entry[side]["agreement"] = agreement(masks["smollm2"], mask)
            entry[side]["fine_agreement"] = drop_agreement(masks["smollm2"], mask, passages)
        out.append(entry)
        print(
            f"{name} rate {task['rate']} row {row}: "
            + ", ".join(f"{s} {entry[s]['tokens']}" for s in entry if isinstance(entry[s], dict)),
            flush=True,
        )
    return out


def summarize(entries: list[dict], check: Any) -> list[dict]:
    """Per (set, rate, side): rows, achieved ratio, agreement with SmolLM2, and `check`'s counts."""
    table: dict[tuple, dict] = {}
    for entry in entries:
        for side in ("smollm2", "classifier", "llmlingua"):
            if side not in entry:
                continue
            cell = table.setdefault(
                (entry["set"], entry["rate"], side),
                {"rows": 0, "tokens": 0, "out": 0, "both": 0, "ref": 0, "checks": {}},
            )
            cell["rows"] += 1
            cell["tokens"] += entry["tokens"]
            cell["out"] += entry[side]["tokens"]
            cell["both"] += entry[side]["agreement"][0]
            cell["ref"] += entry[side]["agreement"][1]
            cell["fine_both"] = cell.get("fine_both", 0) + entry[side]["fine_agreement"][0]
            cell["fine_ref"] = cell.get("fine_ref", 0) + entry[side]["fine_agreement"][1]
            for key, value in check(entry, entry[side]["text"]).items():
                have = cell["checks"].get(key, (0, 0))
                cell["checks"][key] = (have[0] + value[0], have[1] + value[1])
    return [{"set": k[0], "rate": k[1], "side": k[2], **v} for k, v in table.items()]


def nq_check(rows: list[dict]) -> Any:
    return lambda entry, text: {"gold answer kept": (int(has_answer(text, rows[entry["row"]]["answers"])), 1)}


def kv_check(rows: list[dict]) -> Any:
    def check(entry: dict, text: str) -> dict[str, tuple[int, int]]:
        row = rows[entry["row"]]
        uuids = set(UUID.findall(text))
        cut = [h for h in HEXISH.findall(text) if not UUID.fullmatch(h) and h not in row["key"]]
        body = text[text.find("{") : text.rfind("}") + 1]
        try:
            parses = int(isinstance(json.loads(body), dict))
        except ValueError:
            parses = 0
        return {
            "gold UUID kept": (int(row["value"] in uuids), 1),
            "UUIDs whole": (len(uuids), len(uuids) + len(cut)),
            "JSON parses": (parses, 1),
        }

    return check


def gsm8k_check(entry: dict, text: str) -> dict[str, tuple[int, int]]:
    prefix = original_of(gsm8k_task(entry["rate"]))
    return {"numbers intact": numbers_check(prefix, text)}


# --- speed ------------------------------------------------------------------------------------------


def speed(args: argparse.Namespace, rows: list[dict], classifier: Path | None) -> dict[str, Any]:
    """Tokens per second of the scorers alone (same requests) and of whole compressions (no memo)."""
    from backend.tokenizer import packaged_tokenizer
    from middleware.compress import Compressor, LocalScorer
    from middleware.compress.classifier import ClassifierScorer
    from middleware.compress.classifier.training.corpus import TrainingPrompt
    from middleware.compress.classifier.training.recording import record_requests

    prompts = [
        TrainingPrompt("nq", r["id"], "plain", nq_docs(r), NQ_INSTRUCTION, nq_question(r), "\n")
        for r in rows[: args.speed_rows]
    ]
    requests = [r for _, r in record_requests(prompts)]
    tokens = sum(packaged_tokenizer().count(r.text) for r in requests)
    scorers = {"smollm2": LocalScorer(), "classifier": ClassifierScorer(classifier)}
    seconds: dict[str, list[float]] = {name: [] for name in scorers}
    for scorer in scorers.values():
        scorer.score_sync(requests[:4])  # warm up
    for _ in range(args.speed_reps):  # alternating, so that both see the same load on a shared machine
        for name, scorer in scorers.items():
            started = time.perf_counter()
            scorer.score_sync(requests)
            seconds[name].append(time.perf_counter() - started)
    out: dict[str, Any] = {"requests": len(requests), "tokens": tokens, "cores": len(os.sched_getaffinity(0))}
    out["scorer_tokens_per_s"] = {n: round(tokens / statistics.median(s), 1) for n, s in seconds.items()}
    whole: dict[str, list[float]] = {name: [0.0, 0.0] for name in scorers}
    for row in rows[: args.speed_rows]:
        task = nq_task(row, 0.25)
        for name, scorer in scorers.items():
            started = time.perf_counter()
            asyncio.run(compress(Compressor(scorer), task))
            whole[name][0] += packaged_tokenizer().count(original_of(task))
            whole[name][1] += time.perf_counter() - started
    out["compression_tokens_per_s"] = {n: round(t / s, 1) for n, (t, s) in whole.items()}
    print("speed:", json.dumps(out), flush=True)
    return out


# --- ttft -------------------------------------------------------------------------------------------


def ttft(args: argparse.Namespace, classifier: Path | None) -> list[dict]:
    """TTFT through `promptfold serve` (embedded engine) with each scorer on a ~3.3k-token NQ chat."""
    import httpx

    from bench.compress_e2e import Prompts, stream_chat
    from middleware.server.background import free_port, wait_healthy

    port = free_port()
    env = {**os.environ, **({"PROMPTFOLD_CLASSIFIER": str(classifier)} if classifier else {})}
    log = open(f"/tmp/small_scorer_proxy_{port}.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "middleware.cli", "serve", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    configs: dict[str, dict | None] = {"direct": None}
    for scorer in ("local", "classifier"):
        configs[f"plain 0.5 ({scorer})"] = {"compress": {"rate": 0.5, "scorer": scorer}}
        configs[f"plain 0.25 ({scorer})"] = {"compress": {"rate": 0.25, "scorer": scorer}}
        configs[f"question-aware 0.25 ({scorer})"] = {
            "compress": {"rate": 0.25, "mode": "question_aware", "scorer": scorer}
        }
    try:
        wait_healthy(f"{base}/health", timeout_s=300, alive=lambda: server.poll() is None)
        prompts = Prompts(EVAL / "nq_multidoc20_synth" / f"{args.split}.jsonl")
        runs: dict[str, list[Any]] = {name: [] for name in configs}

        async def go() -> None:
            async with httpx.AsyncClient(timeout=600) as client:
                for rep in range(args.reps + 1):  # round 0 warms every path (models load on first use)
                    for name, options in configs.items():
                        messages = prompts.chat(args.ttft_tokens, seed=rep * 7 + 3)
                        timed = await stream_chat(client, base, messages, 4, options, bypass=options is None)
                        if rep:
                            runs[name].append(timed)
                        print(f"ttft {name} rep {rep}: {timed.ttft_s:.2f}s", flush=True)

        asyncio.run(go())
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    rows = []
    for name, timed in runs.items():
        compress_s = [t.compress_s for t in timed if t.compress_s is not None]
        rows.append(
            {
                "config": name,
                "ttft_s": statistics.median(t.ttft_s for t in timed),
                "compress_s": statistics.median(compress_s) if compress_s else None,
                "prompt_tokens": statistics.median(t.prompt_tokens for t in timed),
            }
        )
    return rows


# --- report -----------------------------------------------------------------------------------------


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# The classifier scorer vs the SmolLM2 scorer vs llmlingua",
        "",
        f"`{data['command']}` on "
        f"{data['date']}, {data['split']} split, one run on this {data['cores']}-core CPU machine (shared "
        "with other work: compare the sides, not the absolute numbers).",
        "",
        *data["about"],
        "",
    ]
    if data.get("tables"):
        lines += [
            "| set | rate | side | rows | achieved ratio | kept words agreed | dropped words agreed | checks |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for cell in data["tables"]:
            checks = ", ".join(f"{k} {a}/{b}" for k, (a, b) in cell["checks"].items())
            share = f"{cell['both'] / cell['ref']:.3f}" if cell["ref"] else "-"
            fine = f"{cell['fine_both'] / cell['fine_ref']:.3f}" if cell.get("fine_ref") else "-"
            lines.append(
                f"| {cell['set']} | {cell['rate']} | {cell['side']} | {cell['rows']} | "
                f"{cell['out'] / max(cell['tokens'], 1):.3f} | {share} | {fine} | {checks} |"
            )
    if data.get("speed"):
        s = data["speed"]
        lines += [
            "",
            f"Speed ({s['cores']} cores, {s['requests']} scoring requests, {s['tokens']} SmolLM2 tokens):",
            "",
            "| side | scorer alone, tokens/s | whole compression (question-aware 0.25), tokens/s |",
            "|---|---|---|",
        ]
        for side, value in s["scorer_tokens_per_s"].items():
            lines.append(f"| {side} | {value:.0f} | {s['compression_tokens_per_s'][side]:.0f} |")
        if "llmlingua_tokens_per_s" in s:
            lines.append(f"| llmlingua | - | {s['llmlingua_tokens_per_s']:.0f} |")
    if data.get("ttft"):
        lines += [
            "",
            f"TTFT through the proxy, embedded engine, ~{data['ttft_tokens']}-token chat, median of {data['reps']}:",
            "",
            "| config | TTFT s | x direct | compression s | prompt tokens |",
            "|---|---|---|---|---|",
        ]
        direct = next(r["ttft_s"] for r in data["ttft"] if r["config"] == "direct")
        for r in data["ttft"]:
            compress_s = f"{r['compress_s']:.2f}" if r["compress_s"] is not None else "-"
            lines.append(
                f"| {r['config']} | {r['ttft_s']:.2f} | {r['ttft_s'] / direct:.2f} | {compress_s} | "
                f"{r['prompt_tokens']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def about(classifier: Path | None) -> list[str]:
    """The classifier's card, and whether its teacher is the SmolLM2 this machine runs."""
    from middleware.compress import LocalScorer
    from middleware.compress.classifier import read_card
    from middleware.compress.classifier.training.teacher import fingerprint

    card = read_card(classifier)
    here = fingerprint(LocalScorer().loaded.model)
    same = (
        "the same weights"
        if here == card.teacher.get("fingerprint")
        else f"DIFFERENT weights (here {here[:12]})"
    )
    return [
        f"- classifier: {card.student.get('base')}, {card.student['config']['num_hidden_layers']} layers, "
        f"{card.student.get('quantization')}, trained {card.created} (seed {card.training.get('seed')}, "
        f"{card.data.get('teacher_tokens')} teacher tokens); teacher {card.teacher.get('model_id')} "
        f"{str(card.teacher.get('fingerprint'))[:12]}: {same} as the SmolLM2 scorer here"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classifier", help="classifier folder (default: the installed one)")
    parser.add_argument("--split", default="holdout", choices=["dev", "holdout"])
    parser.add_argument("--parts", default="nq,fidelity,speed,ttft")
    parser.add_argument("--nq-rows", type=int, default=100)
    parser.add_argument("--kv-rows", type=int, default=20)
    parser.add_argument(
        "--llmlingua-rows", type=int, default=4, help="rows per set llmlingua also compresses"
    )
    parser.add_argument("--speed-rows", type=int, default=4)
    parser.add_argument("--speed-reps", type=int, default=3)
    parser.add_argument("--ttft-tokens", type=int, default=3300)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--venv", default=os.environ.get("LLMLINGUA_VENV", "/work/venvs/llmlingua"))
    parser.add_argument("--out", default="bench/results/small_scorer.md")
    parser.add_argument("--raw", default="bench/results/raw/small_scorer.json")
    args = parser.parse_args()
    classifier = Path(args.classifier).resolve() if args.classifier else None
    if classifier:
        os.environ["PROMPTFOLD_CLASSIFIER"] = str(classifier)
    parts = set(args.parts.split(","))
    data: dict[str, Any] = {
        "command": " ".join(["python", "bench/small_scorer.py", *sys.argv[1:]]),
        "date": datetime.date.today().isoformat(),
        "split": args.split,
        "cores": len(os.sched_getaffinity(0)),
        "about": about(classifier),
        "reps": args.reps,
        "ttft_tokens": args.ttft_tokens,
        "tables": [],
    }
    nq = read_jsonl(EVAL / "nq_multidoc20_synth" / f"{args.split}.jsonl", args.nq_rows)
    if parts & {"nq", "fidelity"}:
        sides = our_sides(classifier)
        from backend.models import smollm2_folder

        lingua = Llmlingua(args.venv, str(smollm2_folder())) if args.llmlingua_rows else None
        entries: list[dict] = []
        if "nq" in parts:
            tasks = [nq_task(row, rate) | {"row": i} for rate in (0.5, 0.25, 0.1) for i, row in enumerate(nq)]
            found = run_tasks("nq (question-aware)", tasks, sides, lingua, args.llmlingua_rows)
            data["tables"] += summarize(found, nq_check(nq))
            entries += found
        if "fidelity" in parts:
            gsm_tasks = [gsm8k_task(r) | {"row": 0} for r in (0.5, 0.25)]
            gsm = run_tasks("gsm8k 8-shot (plain)", gsm_tasks, sides, lingua, min(1, args.llmlingua_rows))
            data["tables"] += summarize(gsm, gsm8k_check)
            kv = read_jsonl(EVAL / "litm_kv_retrieval75" / f"{args.split}.jsonl", args.kv_rows)
            kv_tasks = [kv_task(row, rate) | {"row": i} for rate in (0.5, 0.25) for i, row in enumerate(kv)]
            found = run_tasks("kv (question-aware)", kv_tasks, sides, lingua, args.llmlingua_rows)
            data["tables"] += summarize(found, kv_check(kv))
            entries += gsm + found
        data["entries"] = entries
        if lingua is not None:
            lingua.close()
    if "speed" in parts:
        data["speed"] = speed(args, nq, classifier)
        lingua_nq = [e for e in data.get("entries", []) if e["set"].startswith("nq") and "llmlingua" in e]
        if lingua_nq:
            total = sum(e["tokens"] for e in lingua_nq)
            data["speed"]["llmlingua_tokens_per_s"] = total / sum(
                e["llmlingua"]["seconds"] for e in lingua_nq
            )
    if "ttft" in parts:
        data["ttft"] = ttft(args, classifier)
    Path(args.raw).parent.mkdir(parents=True, exist_ok=True)
    Path(args.raw).write_text(json.dumps(data, indent=1, ensure_ascii=False))
    Path(args.out).write_text(markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
