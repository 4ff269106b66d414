"""Gist compression: prefix tokens saved, fidelity to the full prefix, and time to first token.

    python bench/gist.py                                        # embedded engine (CPU), both prompts
    python bench/gist.py --prompts gsm8k --ks 16 --steps 40     # a quicker look
    python bench/gist.py --backend sglang://127.0.0.1:30000 --embeds-backend sglang://127.0.0.1:30001 \\
        --device cuda                                           # GPU machine: bench/gpu/gist_sglang.sh

Prompts: `gsm8k` is the 8-shot chain-of-thought block in LLMLingua's framing ("Please reference the
following examples to answer the math question,\\n" + shots + "\\n\\nQuestion: " + question), the start of
the user message; `support` is a 1.5k-token system prompt (bench/data/gist_support_prompt.txt).
Training queries are sampled by the model from the prefix itself (what `promptfold gist train` does
without --queries), 20% held out for early stopping. Evaluation queries are never trained on: the first
GSM8K holdout questions, and bench/data/gist_support_eval.txt. Continuations are the model's own greedy
answers to prefix + query, capped at --answer-tokens.

Figures, per k, on the evaluation queries: KL(full prefix || gist) and greedy next-token agreement over
the answer tokens (teacher-forced), the same over all tokens after the prefix, and the share of whole
greedy answers that are identical. "prefix dropped" is the baseline of sending the query alone.
Time to first token is the latency of a 1-token request through the pipeline with the gist stage (so the
stage's own work counts), median over --ttft-repeats rounds that alternate the paths: the full prefix on a
backend that has it cached (embedded prefix cache / SGLang radix cache), the full prefix computed every
time (embedded engine without prefix cache / SGLang --disable-radix-cache), and the gist.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
GSM8K = Path("/work/shared/eval/gsm8k")
GSM8K_HEAD = "Please reference the following examples to answer the math question,\n"


@dataclass
class BenchPrompt:
    name: str
    text: str
    role: str
    eval_queries: list[str]


@dataclass
class Row:
    prompt: str
    label: str
    prefix_tokens: int
    tokens: int | None
    figures: Any
    train_minutes: float | None = None
    steps: int | None = None
    ttft_ms: dict[str, float] = field(default_factory=dict)
    bodies: dict[str, float] = field(default_factory=dict)


def load_prompts(names: list[str], eval_count: int, gsm8k_dir: Path) -> list[BenchPrompt]:
    prompts = []
    for name in names:
        if name == "gsm8k":
            shots = (gsm8k_dir / "fewshot_8shot_cot.txt").read_text()
            rows = [json.loads(line) for line in (gsm8k_dir / "holdout.jsonl").read_text().splitlines()]
            questions = [r["question"] for r in rows[:eval_count]]
            prompts.append(BenchPrompt(name, GSM8K_HEAD + shots + "\n\nQuestion: ", "user", questions))
        elif name == "support":
            text = (ROOT / "bench/data/gist_support_prompt.txt").read_text()
            queries = (ROOT / "bench/data/gist_support_eval.txt").read_text().splitlines()
            prompts.append(BenchPrompt(name, text, "system", [q for q in queries if q][:eval_count]))
        else:
            raise SystemExit(f"unknown prompt '{name}': use gsm8k, support")
    return prompts


def open_backends(args: argparse.Namespace) -> dict[str, Any]:
    """data: answers queries, has the prefix cached; embeds: takes the gist; computed: no prefix cache."""
    from backend import open_backend, parse_backend_spec

    kind, _ = parse_backend_spec(args.backend)
    if kind == "local":
        from backend.local import LocalBackend

        data = LocalBackend(args.model, device=args.device)
        computed = LocalBackend(args.model, device=args.device, prefix_cache_mb=0)
        return {"data": data, "embeds": data, "computed": computed}
    data = open_backend(args.backend)
    embeds = open_backend(args.embeds_backend) if args.embeds_backend else data
    return {"data": data, "embeds": embeds, "computed": embeds}


async def first_token_ms(pipeline: Any, messages: list[dict[str, str]], gist_id: str | None) -> float:
    from backend import SamplingParams
    from middleware.options import RequestOptions
    from middleware.pipeline import Request

    options = RequestOptions(gist={"id": gist_id} if gist_id else False)
    request = Request(SamplingParams(temperature=0.0, max_tokens=1), messages=messages, options=options)
    began = time.perf_counter()
    done = await pipeline.complete(request)
    elapsed = (time.perf_counter() - began) * 1000
    applied = any(s.applied for s in done.report.stages)
    if applied != bool(gist_id):
        raise RuntimeError(
            f"the gist stage {'did not apply' if gist_id else 'applied'}: {done.report.stages}"
        )
    return elapsed


async def measure_ttft(
    paths: dict[str, tuple[Any, str | None]], chats: list[list[dict[str, str]]], repeats: int
) -> dict[str, float]:
    """Median ms per path; each round runs every path once on the same query, in rotating order."""
    for pipeline, gist_id in paths.values():  # warm-up: fills the caches that the cached path relies on
        await first_token_ms(pipeline, chats[0], gist_id)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for i in range(repeats):
        messages = chats[i % len(chats)]
        for name in names[i % len(names) :] + names[: i % len(names)]:
            pipeline, gist_id = paths[name]
            samples[name].append(await first_token_ms(pipeline, messages, gist_id))
    return {name: statistics.median(values) for name, values in samples.items()}


async def concurrent_ttft(
    paths: dict[str, tuple[Any, str | None]], chats: list[list[dict[str, str]]], width: int
) -> dict[str, float]:
    """Mean ms of `width` 1-token requests sent at once, per path (paths one after another)."""
    result = {}
    for name, (pipeline, gist_id) in paths.items():
        batch = [chats[i % len(chats)] for i in range(width)]
        times = await asyncio.gather(*(first_token_ms(pipeline, m, gist_id) for m in batch))
        result[name] = statistics.mean(times)
    return result


def request_bodies(backend: Any, serving: Any, gist: Any, messages: list[dict[str, str]]) -> dict[str, float]:
    """What a request weighs on SGLang's wire: /generate with the gist as input_embeds (JSON floats, and
    how long encoding it takes here) against the full prompt as input_ids."""
    from backend._sglang_wire import embeds_as_lists

    ids = backend.tokenize(backend.apply_chat_template(messages))
    began = time.perf_counter()
    embeds = serving.gist_prompt(gist.vectors, ids[gist.record.prefix_tokens :])
    body = json.dumps({"input_embeds": embeds_as_lists(embeds)})
    encode_ms = (time.perf_counter() - began) * 1000
    return {
        "gist_kb": len(body) / 1024,
        "encode_ms": encode_ms,
        "full_kb": len(json.dumps({"input_ids": ids})) / 1024,
    }


async def run(args: argparse.Namespace) -> list[Row]:
    from middleware.compress.gist.data import build_examples
    from middleware.compress.gist.distill import TrainConfig
    from middleware.compress.gist.evaluate import (
        answers_agreement,
        dropped_prefix_answers_agreement,
        dropped_prefix_fidelity,
        teacher_forced_fidelity,
    )
    from middleware.compress.gist.model import serving_model
    from middleware.compress.gist.prefix import PrefixSpec
    from middleware.compress.gist.stage import GistStage
    from middleware.compress.gist.store import GistStore
    from middleware.compress.gist.train import GistJob, make_gist, prepare, training_model
    from middleware.pipeline import Pipeline

    backends = open_backends(args)
    data, embeds, computed = backends["data"], backends["embeds"], backends["computed"]
    for backend in {id(b): b for b in backends.values()}.values():
        await backend.health()
    serving = await serving_model(embeds)
    model = await training_model(serving, data, args.device)
    store = GistStore(Path(args.gist_dir) if args.gist_dir else Path(tempfile.mkdtemp()) / "gists")
    rows: list[Row] = []
    ks = [int(k) for k in args.ks.split(",")]
    for bench_prompt in load_prompts(args.prompts.split(","), args.eval_queries, Path(args.gsm8k_dir)):
        spec = PrefixSpec(bench_prompt.text, bench_prompt.role)  # type: ignore[arg-type]

        def job(k: int, spec: PrefixSpec = spec) -> GistJob:
            config = TrainConfig(
                tokens=k,
                max_steps=args.steps,
                batch_size=args.batch_size,
                learning_rate=args.lr,
                eval_every=args.eval_every,
                heldout_fraction=0.2,
            )
            return GistJob(
                spec,
                config,
                num_queries=args.train_queries,
                max_answer_tokens=args.answer_tokens,
                rows=args.rows,
            )

        began = time.perf_counter()
        prepared = await prepare(data, job(min(ks)))
        examples = await build_examples(
            data,
            prepared.prefix,
            bench_prompt.eval_queries,
            max_answer_tokens=args.answer_tokens,
            rows=args.rows,
        )
        log(
            f"{bench_prompt.name}: prefix {len(prepared.prefix)} tokens, {len(prepared.train)}+"
            f"{len(prepared.heldout)} sampled training queries, {len(examples)} evaluation queries "
            f"({time.perf_counter() - began:.0f} s)"
        )
        n = len(prepared.prefix)
        dropped = await asyncio.to_thread(dropped_prefix_fidelity, model, data, prepared.prefix, examples)
        dropped.answers_equal = await dropped_prefix_answers_agreement(data, examples, args.answer_tokens)
        rows.append(Row(bench_prompt.name, "prefix dropped", n, 0, dropped))
        chats = [spec.messages(q) for q in bench_prompt.eval_queries]
        full_paths = {
            "full, cached": (Pipeline(data, stages=[GistStage(data, store)]), None),
            "full, computed": (Pipeline(computed, stages=[GistStage(computed, store)]), None),
        }
        for k in ks:
            gist = await make_gist(
                data,
                job(k),
                prepared=prepared,
                serving=serving,
                embeds_backend=embeds,
                progress=progress_line,
            )
            store.save(gist)
            figures = await asyncio.to_thread(
                teacher_forced_fidelity, model, prepared.prefix.token_ids, gist.vectors, examples
            )
            figures.answers_equal = await answers_agreement(
                embeds, serving, gist.vectors, examples, args.answer_tokens
            )
            training = gist.record.training
            row = Row(
                bench_prompt.name,
                f"gist k={k}",
                n,
                k,
                figures,
                training["seconds"] / 60,
                training["steps_run"],
            )
            paths = {
                **full_paths,
                "gist": (Pipeline(embeds, stages=[GistStage(embeds, store)]), gist.record.id),
            }
            row.bodies = request_bodies(embeds, serving, gist, chats[0])
            row.ttft_ms = await measure_ttft(paths, chats, args.ttft_repeats)
            if args.ttft_concurrency:
                wide = await concurrent_ttft(paths, chats, args.ttft_concurrency)
                row.ttft_ms.update({f"{name} x{args.ttft_concurrency}": ms for name, ms in wide.items()})
            rows.append(row)
            log(
                f"{bench_prompt.name} k={k}: {figures.next_token_agreement:.1%} agreement, ttft {row.ttft_ms}"
            )
    for backend in {id(b): b for b in backends.values()}.values():
        await backend.close()
    return rows


def progress_line(state: Any) -> None:
    if state.heldout_loss is not None:
        log(f"  step {state.step}/{state.max_steps}: held-out loss {state.heldout_loss:.4f}")


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def render(rows: list[Row], args: argparse.Namespace, device: str) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    lines = [
        "| prompt | prefix | prefix tokens | sent instead | x fewer | KL (nats/token) | next-token agreement "
        "| all-token agreement | greedy answers equal | training |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        fewer = f"{r.prefix_tokens / r.tokens:.0f}" if r.tokens else "-"
        trained = f"{r.train_minutes:.1f} min, {r.steps} steps" if r.train_minutes is not None else "-"
        lines.append(
            f"| {r.prompt} | {r.label} | {r.prefix_tokens} | {r.tokens} | {fewer} | {r.figures.kl:.3f} "
            f"| {pct(r.figures.next_token_agreement)} "
            f"| {pct(r.figures.all_positions_agreement if r.tokens else None)} "
            f"| {pct(r.figures.answers_equal)} | {trained} |"
        )
    timed = [r for r in rows if r.ttft_ms]
    if timed:
        names = list(timed[0].ttft_ms)
        lines += [
            "",
            "Time to first token (ms, median; `xN`: mean of N requests sent at once):",
            "",
            "| prompt | k | " + " | ".join(names) + " | computed / gist |",
            "| --- | --- | " + " | ".join("---:" for _ in names) + " | ---: |",
        ]
        for r in timed:
            ratio = r.ttft_ms["full, computed"] / r.ttft_ms["gist"]
            cells = " | ".join(f"{r.ttft_ms[n]:.1f}" for n in names)
            lines.append(f"| {r.prompt} | {r.tokens} | {cells} | {ratio:.2f}x |")
        lines += [
            "",
            "What one request weighs as SGLang /generate JSON (the gist goes as input_embeds floats, the full "
            "prompt as input_ids):",
            "",
            "| prompt | k | gist body | building and encoding it here | full prompt body |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for r in timed:
            b = r.bodies
            lines.append(
                f"| {r.prompt} | {r.tokens} | {b['gist_kb']:.0f} KiB | {b['encode_ms']:.1f} ms | {b['full_kb']:.1f} KiB |"
            )
    header = [
        f"Run: `python bench/gist.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, training on {device}; backend {args.backend}"
        + (f", gist path {args.embeds_backend}" if args.embeds_backend else ""),
        "",
    ]
    return "\n".join(header + lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="local", help="local | sglang://HOST:PORT (radix cache on)")
    parser.add_argument("--embeds-backend", help="SGLang launched with --disable-radix-cache, for the gist")
    parser.add_argument("--model", help="embedded engine: model alias or folder (default SmolLM2)")
    parser.add_argument("--device", default="cpu", help="training (and embedded engine) device")
    parser.add_argument("--prompts", default="gsm8k,support")
    parser.add_argument("--ks", default="4,16,64")
    parser.add_argument("--train-queries", type=int, default=48)
    parser.add_argument("--eval-queries", type=int, default=24)
    parser.add_argument("--answer-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rows", type=int, default=8, help="prompts generated at once")
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--ttft-repeats", type=int, default=5)
    parser.add_argument("--ttft-concurrency", type=int, default=0, help="also N requests at once (0: no)")
    parser.add_argument("--gsm8k-dir", default=str(GSM8K))
    parser.add_argument("--gist-dir", help="keep the trained gists here (default: a temporary folder)")
    parser.add_argument("--out", help="write the markdown table here")
    parser.add_argument("--json", help="write the figures as JSON here")
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    text = render(rows, args, args.device)
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        data = [
            {
                "prompt": r.prompt,
                "label": r.label,
                "prefix_tokens": r.prefix_tokens,
                "tokens": r.tokens,
                "figures": r.figures.model_dump(),
                "train_minutes": r.train_minutes,
                "steps": r.steps,
                "ttft_ms": r.ttft_ms,
                "bodies": r.bodies,
            }
            for r in rows
        ]
        Path(args.json).write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
