"""Prompt compression: promptfold vs the llmlingua package, same scorer model, same inputs, one run.

    bash bench/setup_llmlingua_venv.sh            # once: llmlingua 0.2.2 in /work/venvs/llmlingua
    python bench/compress.py [--gsm8k-questions 24] [--nq-rows 12] [--out bench/results/compress.md]

Both sides use SmolLM2-135M-Instruct from the same converted folder (`backend.models.smollm2_folder()`):
promptfold in this process (bf16), llmlingua in a subprocess of its own venv (its CPU default, fp32),
fed the same tasks one after the other, alternating who goes first. Sets (dev splits only):
- gsm8k: the 8-shot CoT prompt (instruction + 8 demonstrations) at rate 0.5 and 0.25, plain mode,
  compressed `--repeats` times each side; the question is appended after compression, as LLMLingua's
  CoT example does; end-task accuracy on the first `--gsm8k-questions` dev questions;
- nq_multidoc20_synth: 20 documents + question, question-aware (LongLLMLingua) at 0.5 and 0.25 on the
  first `--nq-rows` dev rows; end-task accuracy on the same rows.
Columns: tokens/s (original SmolLM2 tokens / compression seconds), achieved ratio (SmolLM2 tokens),
numbers intact, gold answer still present, end-task accuracy of the local engine (greedy).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

# the task prompts of the eval sets, as the scorer's training corpus builds them too
from middleware.compress.classifier.training.corpus import GSM8K_INSTRUCTION, NQ_INSTRUCTION

_ROOT = Path(__file__).resolve().parents[1]
_EVAL_CANDIDATES = [_ROOT / "shared" / "eval", _ROOT.parent / "shared" / "eval", Path("/work/shared/eval")]
EVAL = Path(
    os.environ.get("PROMPTFOLD_EVAL_DIR")
    or next((p for p in _EVAL_CANDIDATES if p.is_dir()), _EVAL_CANDIDATES[-1])
)
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


# --- data ---------------------------------------------------------------------------------------------


def read_jsonl(path: Path, limit: int) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(limit), strict=False)]


def nq_docs(row: dict) -> list[str]:
    return [f"Document [{i + 1}](Title: {c['title']}) {c['text']}" for i, c in enumerate(row["ctxs"])]


def nq_question(row: dict) -> str:
    return f"Question: {row['question']}\nAnswer:"


def nq_task(row: dict, rate: float) -> dict:
    """A multi-document NQ row as one question-aware compression task (LLMLingua's call shape)."""
    return {
        "context": nq_docs(row),
        "instruction": NQ_INSTRUCTION,
        "question": nq_question(row),
        "rate": rate,
        "mode": "question_aware",
        "context_separator": "\n",
    }


# --- metrics ------------------------------------------------------------------------------------------


_WORDS = re.compile(r"\d+(?:[.,]\d+)*|\w+|[^\w\s]")


def numbers_check(original: str, compressed: str) -> tuple[int, int]:
    """(intact, total) numbers of the compressed text. Both compressors only delete words here, so the
    compressed words are aligned to the original by a longest common subsequence; a number is intact
    when the alignment pairs it with the very same number. A cut number ('1,200' -> '1,20', '45' -> '4')
    or one from nowhere stays unpaired."""
    before = _WORDS.findall(original)
    after = _WORDS.findall(compressed)
    paired = _lcs_pairs(before, after)
    numbers = [i for i, word in enumerate(after) if NUMBER.fullmatch(word)]
    return sum(1 for i in numbers if paired[i]), len(numbers)


def _lcs_pairs(before: list[str], after: list[str]) -> list[bool]:
    """For each word of `after`: is it part of a longest common subsequence with `before`?"""
    rows, cols = len(before), len(after)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        here, below = table[i], table[i + 1]
        word = before[i]
        for j in range(cols - 1, -1, -1):
            here[j] = below[j + 1] + 1 if word == after[j] else max(below[j], here[j + 1])
    paired = [False] * cols
    i = j = 0
    while i < rows and j < cols:
        if before[i] == after[j] and table[i][j] == table[i + 1][j + 1] + 1:
            paired[j] = True
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return paired


def normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def has_answer(text: str, answers: list[str]) -> bool:
    norm = normalize(text)
    return any(normalize(a) in norm for a in answers)


def gsm8k_answer(text: str) -> str | None:
    match = re.search(r"answer is\s*\$?\s*(-?[\d,]*\.?\d+)", text)
    numbers = [match.group(1)] if match else re.findall(r"-?[\d,]*\.?\d+", text)
    if not numbers:
        return None
    return numbers[-1].replace(",", "").rstrip(".")


def gsm8k_correct(output: str, gold: str) -> bool:
    answer = gsm8k_answer(output)
    try:
        return answer is not None and abs(float(answer) - float(gold)) < 1e-6
    except ValueError:
        return False


# --- the two compressors ------------------------------------------------------------------------------


class Llmlingua:
    def __init__(self, venv: str, model: str) -> None:
        python = Path(venv) / "bin" / "python"
        if not python.exists():
            sys.exit(f"no llmlingua venv at {venv}: run bash bench/setup_llmlingua_venv.sh {venv}")
        worker = Path(__file__).with_name("llmlingua_worker.py")
        self.process = subprocess.Popen(
            [str(python), str(worker), model],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"},
        )
        assert self.process.stdout is not None
        json.loads(self.process.stdout.readline())  # {"ready": true}

    def compress(self, task: dict) -> tuple[str, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(task) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        return answer["text"], answer["seconds"]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)


class Ours:
    def __init__(self, scores: str | None = None) -> None:
        from middleware.compress import Compressor, LocalScorer

        self.compressor = Compressor(LocalScorer())
        self.scores = scores

    def compress(self, task: dict) -> tuple[str, float]:
        from middleware.compress import CompressOptions

        options = CompressOptions(rate=task["rate"], mode=task["mode"], scores=self.scores)
        started = time.perf_counter()
        result = asyncio.run(
            self.compressor.compress_parts(
                task["context"],
                options,
                instruction=task["instruction"],
                question=task["question"],
                context_separator=task.get("context_separator"),
            )
        )
        return result.text, time.perf_counter() - started


# --- the run ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gsm8k-questions", type=int, default=12)
    parser.add_argument("--nq-rows", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1, help="gsm8k: timed compressions per side and rate")
    parser.add_argument("--rates", default="0.5,0.25")
    parser.add_argument("--venv", default=os.environ.get("LLMLINGUA_VENV", "/work/venvs/llmlingua"))
    parser.add_argument("--out", default="bench/results/compress.md")
    parser.add_argument("--raw", default="bench/results/raw/compress.json")
    parser.add_argument(
        "--from-raw", metavar="JSON", help="only re-render the table from a finished run's raw file"
    )
    args = parser.parse_args()
    if args.from_raw:
        rerender(args)
        return
    rates = [float(r) for r in args.rates.split(",")]

    from backend.models import smollm2_folder

    model = str(smollm2_folder())
    ours = Ours()
    count = ours.compressor.count_tokens
    theirs = Llmlingua(args.venv, model)
    sides: dict[str, Ours | Llmlingua] = {"promptfold": ours, "llmlingua": theirs}
    # question-aware only: promptfold with LongLLMLingua's contrastive scores instead of its default
    contrastive = Ours(scores="contrastive")
    ours.compress(
        {
            "context": ["warm up the model", "and the ranker"],
            "instruction": "",
            "question": "q?",
            "rate": 0.5,
            "mode": "question_aware",
        }
    )
    theirs.compress(
        {"context": ["warm up the model"], "instruction": "", "question": "", "rate": 0.5, "mode": "plain"}
    )

    rows: list[dict] = []
    turn = 0

    def run_both(task: dict, extra: dict | None = None) -> dict[str, tuple[str, float]]:
        nonlocal turn
        everyone = {**sides, **(extra or {})}
        names = list(everyone)
        shift = turn % len(names)
        turn += 1
        order = names[shift:] + names[:shift]  # who goes first rotates
        results = {name: everyone[name].compress(task) for name in order}
        return {name: results[name] for name in names}

    # gsm8k: the 8-shot prefix, compressed alone; questions appended afterwards
    fewshot = (EVAL / "gsm8k" / "fewshot_8shot_cot.txt").read_text(encoding="utf-8")
    demos = fewshot.split("\n\n")
    prefix = GSM8K_INSTRUCTION + "\n\n" + fewshot
    prefix_tokens = count(prefix)
    questions = read_jsonl(EVAL / "gsm8k" / "dev.jsonl", args.gsm8k_questions)
    for rate in rates:
        task = {
            "context": demos,
            "instruction": GSM8K_INSTRUCTION,
            "question": "",
            "rate": rate,
            "mode": "plain",
        }
        timings: dict[str, list[float]] = {name: [] for name in sides}
        texts: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, (text, seconds) in run_both(task).items():
                timings[name].append(seconds)
                texts[name] = text
        for name, text in texts.items():
            intact, total = numbers_check(prefix, text)
            rows.append(
                {
                    "set": "gsm8k 8-shot (plain)",
                    "rate": rate,
                    "side": name,
                    "tokens_per_s": prefix_tokens / statistics.median(timings[name]),
                    "seconds": statistics.median(timings[name]),
                    "ratio": count(text) / prefix_tokens,
                    "numbers": (intact, total),
                    "prefix": text,
                }
            )
            print(
                f"gsm8k rate {rate} {name}: {rows[-1]['ratio']:.3f} in {rows[-1]['seconds']:.1f}s", flush=True
            )
        save_raw(args.raw, rows, {})

    # nq: question-aware, per row
    nq = read_jsonl(EVAL / "nq_multidoc20_synth" / "dev.jsonl", args.nq_rows)
    for rate in rates:
        acc: dict[str, dict] = {
            name: {"tokens": 0, "seconds": 0.0, "out": 0, "gold": 0, "prompts": []}
            for name in [*sides, "promptfold-contrastive"]
        }
        for row in nq:
            task = nq_task(row, rate)
            original = NQ_INSTRUCTION + "\n\n" + "\n".join(task["context"]) + "\n\n" + task["question"]
            tokens = count(original)
            for name, (text, seconds) in run_both(task, {"promptfold-contrastive": contrastive}).items():
                a = acc[name]
                a["tokens"] += tokens
                a["seconds"] += seconds
                a["out"] += count(text)
                a["gold"] += has_answer(text, row["answers"])
                a["prompts"].append(text)
        for name, a in acc.items():
            rows.append(
                {
                    "set": "nq_multidoc20_synth (question-aware)",
                    "rate": rate,
                    "side": name,
                    "tokens_per_s": a["tokens"] / a["seconds"],
                    "seconds": a["seconds"] / len(nq),
                    "ratio": a["out"] / a["tokens"],
                    "gold": (a["gold"], len(nq)),
                    "prompts": a["prompts"],
                }
            )
            print(f"nq rate {rate} {name}: {rows[-1]['ratio']:.3f} gold {a['gold']}/{len(nq)}", flush=True)
        save_raw(args.raw, rows, {})
    theirs.close()

    # end-task accuracy on the local engine
    accuracy = asyncio.run(end_task(rows, prefix, questions, nq))
    write_table(rows, accuracy, args, len(questions), len(nq), prefix_tokens)
    save_raw(args.raw, rows, accuracy)


def save_raw(path: str, rows: list[dict], accuracy: dict[str, str]) -> None:
    """Everything measured so far, compressed texts included (written as the run goes)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    data = {"command": command_line(), "rows": rows, "accuracy": accuracy}
    Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False))


def command_line() -> str:
    return " ".join(["python", "bench/compress.py", *sys.argv[1:]])


def rerender(args: argparse.Namespace) -> None:
    """The table of a finished run, with the metrics recomputed from its saved texts."""
    from transformers import AutoTokenizer

    from backend.models import smollm2_folder

    data = json.loads(Path(args.from_raw).read_text())
    rows, accuracy = data["rows"], data["accuracy"]
    prefix = (
        GSM8K_INSTRUCTION + "\n\n" + (EVAL / "gsm8k" / "fewshot_8shot_cot.txt").read_text(encoding="utf-8")
    )
    for row in rows:
        if "prefix" in row:
            row["numbers"] = numbers_check(prefix, row["prefix"])
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_folder()))
    prefix_tokens = len(tokenizer(prefix, add_special_tokens=False)["input_ids"])
    n_gsm = int(accuracy["gsm8k/full"].split("/")[1]) if "gsm8k/full" in accuracy else 0
    n_nq = next(r["gold"][1] for r in rows if "gold" in r)
    command = data.get("command", "python bench/compress.py")
    write_table(rows, accuracy, args, n_gsm, n_nq, prefix_tokens, command=command)


async def end_task(rows: list[dict], prefix: str, questions: list[dict], nq: list[dict]) -> dict[str, str]:
    from backend import Prompt, SamplingParams
    from backend.local import LocalBackend

    backend = LocalBackend()
    out: dict[str, str] = {}

    async def gsm8k(prefix_text: str) -> str:
        prompts = [
            Prompt.from_messages(
                [{"role": "user", "content": prefix_text + "\n\nQuestion: " + q["question"]}]
            )
            for q in questions
        ]
        answers = await backend.generate(prompts, SamplingParams(temperature=0, max_tokens=200))
        right = sum(
            gsm8k_correct(a.text, q["final_answer_numeric"]) for a, q in zip(answers, questions, strict=True)
        )
        return f"{right}/{len(questions)}"

    async def qa(prompts_text: list[str]) -> str:
        prompts = [Prompt.from_messages([{"role": "user", "content": p}]) for p in prompts_text]
        answers = await backend.generate(prompts, SamplingParams(temperature=0, max_tokens=32))
        right = sum(has_answer(a.text, r["answers"]) for a, r in zip(answers, nq, strict=True))
        return f"{right}/{len(nq)}"

    out["gsm8k/full"] = await gsm8k(prefix)
    full_nq = [NQ_INSTRUCTION + "\n\n" + "\n".join(nq_docs(r)) + "\n\n" + nq_question(r) for r in nq]
    out["nq/full"] = await qa(full_nq)
    for row in rows:
        key = f"{'gsm8k' if 'prefix' in row else 'nq'}/{row['rate']}/{row['side']}"
        out[key] = await gsm8k(row["prefix"]) if "prefix" in row else await qa(row["prompts"])
        print(key, out[key], flush=True)
    await backend.close()
    return out


def write_table(
    rows: list[dict],
    accuracy: dict[str, str],
    args: argparse.Namespace,
    n_gsm: int,
    n_nq: int,
    prefix_tokens: int,
    *,
    command: str | None = None,
) -> None:
    table = Table(
        title="prompt compression: promptfold vs llmlingua 0.2.2 (SmolLM2-135M-Instruct scorer, CPU)"
    )
    headers = [
        "set",
        "rate",
        "compressor",
        "tokens/s",
        "speed-up",
        "achieved ratio",
        "numbers intact",
        "gold answer present",
        "end-task accuracy (full -> compressed)",
    ]
    for header in headers:
        table.add_column(header)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    speed = {(r["set"], r["rate"], r["side"]): r["tokens_per_s"] for r in rows}
    for r in rows:
        kind = "gsm8k" if "prefix" in r else "nq"
        numbers = f"{r['numbers'][0]}/{r['numbers'][1]}" if "numbers" in r else "-"
        gold = f"{r['gold'][0]}/{r['gold'][1]}" if "gold" in r else "-"
        peer = speed.get((r["set"], r["rate"], "llmlingua"), r["tokens_per_s"])
        full = accuracy.get(kind + "/full", "n/a")
        compressed = accuracy.get(f"{kind}/{r['rate']}/{r['side']}", "n/a")
        cells = [
            r["set"],
            f"{r['rate']}",
            r["side"],
            f"{r['tokens_per_s']:.0f}",
            f"{r['tokens_per_s'] / peer:.2f}x",
            f"{r['ratio']:.3f}",
            numbers,
            gold,
            f"{full} -> {compressed}",
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console().print(table)
    command = command or command_line()
    text = [
        "# Prompt compression: promptfold vs llmlingua",
        "",
        f"`{command}` on {datetime.date.today().isoformat()}, one run, both sides on the same 2-core CPU machine "
        "(shared with other work: compare the two sides, not the absolute numbers), alternating who goes first.",
        "",
        *lines,
        "",
        "- Scorer model on both sides: SmolLM2-135M-Instruct from the same converted folder; promptfold in bf16 "
        "in-process, llmlingua 0.2.2 with transformers 4.47.1 in its own venv at its CPU default (fp32).",
        f"- gsm8k: the instruction + 8-shot CoT prefix ({prefix_tokens} SmolLM2 tokens) compressed "
        f"{args.repeats}x per side and rate (median time); ratio on that prefix; the question is appended after "
        f"compression. Accuracy: first {n_gsm} dev questions, chat template, greedy, 200 new tokens, "
        "'The answer is N' (else the last number).",
        "- numbers intact: numbers (digits with separators and decimals) of the compressed prefix that the "
        "word-level alignment with the original (longest common subsequence; both sides only delete words here) "
        "pairs with the very same number / all numbers of the compressed prefix; a cut number "
        "('1,200' -> '1,20', '45' -> '4') or one from nowhere is not intact.",
        "- promptfold-contrastive: promptfold's question-aware mode with LongLLMLingua's contrastive scores "
        "(log p(token | question, ...) - log p(token | ...)) instead of its default conditional scores "
        "(-log p(token | question, ...)); measured on dev to choose the default.",
        f"- nq_multidoc20_synth: first {n_nq} dev rows, 20 documents each, question-aware (llmlingua: LongLLMLingua "
        "settings from its README: rank_method longllmlingua, condition_compare, reorder sort, dynamic ratio 0.3, "
        "context_budget +100). Gold answer present: a normalised gold answer is a substring of the compressed prompt. "
        "Accuracy: chat template, greedy, 32 new tokens, best-subspan EM.",
        "- tokens/s: original SmolLM2 tokens / seconds of compression (model load excluded).",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(text))


if __name__ == "__main__":
    main()
