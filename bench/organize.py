"""Plain decoding vs skeleton-of-thought vs pipelined expansion on the SoT question sets, and the router.

    python bench/organize.py                                          # embedded SmolLM2 (CPU)
    python bench/organize.py --backend sglang://127.0.0.1:30000 --questions 0 --repeats 3

Questions: `../shared/eval/sot` (Vicuna-80 with its categories, WizardLM), only those the SoT authors
labelled as suitable (router.csv label 1) for the latency part. Every question is answered in each
mode through the promptfold pipeline in this process (the same code the proxy runs), one request at a
time, greedy, with the same `max_tokens` budget (plain: the answer; SoT: split between the points).
The modes take turns question by question, in a rotating order, so that machine noise hits all alike.
Speed-up = plain latency / organized latency of the same question; the table gives medians.

The router part classifies every question of both sets (labels never used for training) and gives
accuracy, precision and recall of "use SoT"; it needs MiniLM (skipped where it is not installed).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from organize_tables import MODES, examples, render

ROOT = Path(__file__).resolve().parents[1]
# ../shared next to a checkout, the workplace copy, or shared/ carried inside the tree (GPU machine)
SOT_DIRS = [ROOT.parent / "shared/eval/sot", Path("/work/shared/eval/sot"), ROOT / "shared/eval/sot"]
VICUNA_CATEGORIES = [  # FastChat order, 1-based rows (see the set's README)
    (10, "generic"),
    (20, "knowledge"),
    (30, "roleplay"),
    (40, "common-sense"),
    (50, "fermi"),
    (60, "counterfactual"),
    (67, "coding"),
    (70, "math"),
    (80, "writing"),
]


@dataclass(frozen=True)
class Question:
    set: str
    category: str
    text: str
    label: int


@dataclass
class Run:
    question: Question
    mode: str
    latency_s: float
    plan: str
    completion_tokens: int
    answer_tokens: int  # tokens of the answer itself (plain: all; organized: the branches)
    points: int = 0
    fallback: str | None = None
    shared_prefix_tokens: list[int] = field(default_factory=list)
    cached_tokens: list[int] = field(default_factory=list)
    expansion_prompt_tokens: int = 0
    expansion_cached_tokens: int = 0
    text: str = ""


def load_questions(sot_dir: Path) -> list[Question]:
    questions = []
    for name in ("vicuna", "wizardlm"):
        with open(sot_dir / name / "router.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        for i, row in enumerate(rows, 1):
            category = next(c for end, c in VICUNA_CATEGORIES if i <= end) if name == "vicuna" else "wizardlm"
            questions.append(Question(name, category, row["request"].strip(), int(row["label"])))
    return questions


def pick(questions: list[Question], count: int) -> list[Question]:
    """SoT-suitable questions, taken round-robin over categories so a small count covers them all."""
    suitable = [q for q in questions if q.label == 1]
    if count <= 0 or count >= len(suitable):
        return suitable
    by_category: dict[str, list[Question]] = {}
    for q in suitable:
        by_category.setdefault(q.category, []).append(q)
    chosen: list[Question] = []
    while len(chosen) < count:
        for group in by_category.values():
            if group and len(chosen) < count:
                chosen.append(group.pop(0))
    return chosen


async def answer(pipeline: Any, question: Question, mode: str, max_tokens: int) -> Run:
    from backend import SamplingParams
    from middleware.options import RequestOptions
    from middleware.pipeline import Request

    request = Request(
        sampling=SamplingParams(temperature=0, max_tokens=max_tokens),
        messages=[{"role": "user", "content": question.text}],
        options=RequestOptions(organize=mode),
    )
    started = time.perf_counter()
    completion = await pipeline.complete(request)
    latency = time.perf_counter() - started
    report = completion.report
    plan = report.details.get("organize") or {}
    branches = plan.get("branches") or []
    run = Run(
        question,
        mode,
        latency,
        report.plan,
        report.completion_tokens,
        report.completion_tokens,
        text=completion.choices[0].text,
    )
    if report.plan in ("sot", "pipelined"):
        run.points = len(branches)
        run.answer_tokens = sum(b["completion_tokens"] for b in branches)
        run.shared_prefix_tokens = [b["shared_prefix_tokens"] for b in branches]
        run.cached_tokens = [b["cached_tokens"] for b in branches]
        run.expansion_prompt_tokens = sum(b["prompt_tokens"] for b in branches)
        run.expansion_cached_tokens = sum(b["cached_tokens"] for b in branches)
    run.fallback = plan.get("fallback")
    return run


async def latency_runs(args: argparse.Namespace, questions: list[Question]) -> list[Run]:
    from backend import open_backend
    from middleware.config import Settings
    from middleware.stages import build_pipeline

    backend = open_backend(args.backend)
    health = await backend.health()
    if not health.ok:
        raise SystemExit(f"the backend is not healthy: {health.detail}")
    pipeline = build_pipeline(backend, Settings(backend=args.backend))
    runs: list[Run] = []
    try:
        for mode in MODES:  # warm-up: first-call costs (graphs, caches of the fixed prompt parts)
            await answer(pipeline, questions[0], mode, args.max_tokens)
        for repeat in range(args.repeats):
            for i, question in enumerate(questions):
                shift = (i + repeat) % len(MODES)
                for mode in MODES[shift:] + MODES[:shift]:
                    run = await answer(pipeline, question, mode, args.max_tokens)
                    runs.append(run)
                    print(
                        f"[{repeat + 1}/{args.repeats}] {i + 1}/{len(questions)} {mode:9s} {run.latency_s:6.2f}s "
                        f"{run.completion_tokens:4d} tok plan={run.plan} {question.text[:50]!r}",
                        flush=True,
                    )
    finally:
        await backend.close()
    return runs


def router_scores(questions: list[Question]) -> dict[str, Any]:
    from middleware.organize.router import Router
    from middleware.organize.router.train import read_questions

    router = Router()
    sets: dict[str, Any] = {}
    dev = read_questions(
        Path(__file__).resolve().parents[1] / "middleware/organize/router/data/router_dev.csv"
    )
    groups = {
        "vicuna": [(q.text, q.label, q.category) for q in questions if q.set == "vicuna"],
        "wizardlm": [(q.text, q.label, q.category) for q in questions if q.set == "wizardlm"],
        "our dev set": [(q.question, q.label, q.category) for q in dev],
    }
    for name, rows in groups.items():
        decisions = router.decide_many([text for text, _, _ in rows])
        if any("no classifier" in d.reason for d in decisions):
            return {"skipped": decisions[0].reason}
        predicted = [d.use_sot for d in decisions]
        labels = [label == 1 for _, label, _ in rows]
        tp = sum(p and y for p, y in zip(predicted, labels, strict=True))
        sets[name] = {
            "questions": len(rows),
            "labelled_sot": sum(labels),
            "routed_sot": sum(predicted),
            "by_rule": sum(d.rule is not None for d in decisions),
            "accuracy": sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(rows),
            "precision": tp / max(sum(predicted), 1),
            "recall": tp / max(sum(labels), 1),
        }
        if name == "vicuna":
            by_category: dict[str, list[int]] = {}
            for (_, label, category), p in zip(rows, predicted, strict=True):
                by_category.setdefault(category, [0, 0, 0])
                by_category[category][0] += 1
                by_category[category][1] += label
                by_category[category][2] += int(p)
            sets[name]["by_category"] = {
                c: {"n": v[0], "labelled": v[1], "routed": v[2]} for c, v in by_category.items()
            }
    return sets


def summarize(runs: list[Run]) -> dict[str, Any]:
    by_question: dict[tuple[str, str], dict[str, list[Run]]] = {}
    for run in runs:
        by_question.setdefault((run.question.set, run.question.text), {}).setdefault(run.mode, []).append(run)
    rows: dict[str, dict[str, list[float]]] = {}
    for modes in by_question.values():
        category = modes["plain"][0].question.category
        plain = statistics.median(r.latency_s for r in modes["plain"])
        for group in (category, "all"):
            row = rows.setdefault(group, {})
            row.setdefault("plain_s", []).append(plain)
            row.setdefault("plain_tokens", []).append(
                statistics.median(r.answer_tokens for r in modes["plain"])
            )
            for mode in ("sot", "pipelined"):
                latency = statistics.median(r.latency_s for r in modes[mode])
                row.setdefault(f"{mode}_s", []).append(latency)
                row.setdefault(f"{mode}_speedup", []).append(plain / latency)
                row.setdefault(f"{mode}_tokens", []).append(
                    statistics.median(r.answer_tokens for r in modes[mode])
                )
                row.setdefault(f"{mode}_all_tokens", []).append(
                    statistics.median(r.completion_tokens for r in modes[mode])
                )
    table = {
        group: {"questions": len(v["plain_s"]), **{k: statistics.median(x) for k, x in v.items()}}
        for group, v in rows.items()
    }
    organized = [r for r in runs if r.plan in ("sot", "pipelined")]
    shares = [
        min(c, s) / s
        for r in organized
        for c, s in zip(r.cached_tokens, r.shared_prefix_tokens, strict=True)
        if s
    ]
    cache = {
        mode: {
            "branches": sum(len(r.cached_tokens) for r in organized if r.mode == mode),
            "min_share_of_shared_prefix": min(
                (
                    min(c, s) / s
                    for r in organized
                    if r.mode == mode
                    for c, s in zip(r.cached_tokens, r.shared_prefix_tokens, strict=True)
                    if s
                ),
                default=None,
            ),
            "branches_at_least_90pct": sum(
                c >= 0.9 * s
                for r in organized
                if r.mode == mode
                for c, s in zip(r.cached_tokens, r.shared_prefix_tokens, strict=True)
                if s
            ),
            "cached_share_of_expansion_prompts": sum(
                r.expansion_cached_tokens for r in organized if r.mode == mode
            )
            / max(sum(r.expansion_prompt_tokens for r in organized if r.mode == mode), 1),
            "median_points": statistics.median([r.points for r in organized if r.mode == mode] or [0]),
        }
        for mode in ("sot", "pipelined")
    }
    fallbacks = {
        mode: sum(1 for r in runs if r.mode == mode and r.plan == "plain") for mode in ("sot", "pipelined")
    }
    return {
        "table": table,
        "cache": cache,
        "all_shares_min": min(shares, default=None),
        "fallbacks": fallbacks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="local", help="local | sglang://HOST:PORT (default: local)")
    parser.add_argument(
        "--sot-dir",
        type=Path,
        default=next((d for d in SOT_DIRS if d.is_dir()), SOT_DIRS[0]),
        help="folder with vicuna/ and wizardlm/ (default: ../shared/eval/sot)",
    )
    parser.add_argument("--questions", type=int, default=16, help="SoT-suitable questions to time (0: all)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the questions (median taken)")
    parser.add_argument("--max-tokens", type=int, default=192, help="answer budget of every mode")
    parser.add_argument("--no-latency", action="store_true", help="only the router part")
    parser.add_argument("--no-router", action="store_true", help="only the latency part")
    parser.add_argument("--examples", type=int, default=2, help="example answers to print per mode")
    parser.add_argument("--json", type=Path, help="write all figures (and every run) here")
    parser.add_argument("--markdown", type=Path, help="write the tables as markdown here")
    parser.add_argument("--render", type=Path, help="only print (and --markdown) the tables of a --json file")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        runs = [Run(**{**r, "question": Question(**r["question"])}) for r in saved.pop("runs", [])]
        markdown = render(saved) + "\n\n" + examples(runs, args.examples)
        if args.markdown:
            args.markdown.write_text(markdown + "\n")
        return

    questions = load_questions(args.sot_dir)
    result: dict[str, Any] = {"backend": args.backend, "max_tokens": args.max_tokens}
    started = time.perf_counter()
    if not args.no_router:
        result["router"] = router_scores(questions)
    runs: list[Run] = []
    if not args.no_latency:
        chosen = pick(questions, args.questions)
        runs = asyncio.run(latency_runs(args, chosen))
        result["latency"] = summarize(runs)
        result["timed_questions"] = len(chosen)
        result["repeats"] = args.repeats
    result["bench_s"] = time.perf_counter() - started
    markdown = render(result)
    answers = examples(runs, args.examples)
    print(answers)
    print(f"bench time {result['bench_s']:.0f} s")
    if args.json:
        result["runs"] = [{**r.__dict__, "question": r.question.__dict__} for r in runs]
        args.json.write_text(json.dumps(result, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown + "\n\n" + answers + "\n")


if __name__ == "__main__":
    main()
