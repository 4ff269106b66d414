"""The whole pipeline end to end: every promptfold path driven with the real `openai` client through a
running proxy, each request also sent directly to the model server, side by side in one run.

GPU machine (bench/e2e_sglang.sh starts SGLang A :30000 with its radix cache, B :30001 with
--disable-radix-cache, a proxy on each):
    python3 bench/e2e_sglang.py --proxy http://127.0.0.1:8000 --direct http://127.0.0.1:30000 \\
        --gist-proxy http://127.0.0.1:8001 --gist-direct http://127.0.0.1:30001 --eval-dir shared/eval
Locally, against `python -m middleware.cli serve --backend local` (the embedded engine stands in for
SGLang; "direct" is then the same proxy with `x-promptfold-bypass: 1`, every stage skipped):
    python bench/e2e_sglang.py --proxy http://127.0.0.1:8000 --quick

Paths (`--paths`, all by default), each pairing promptfold with direct requests, alternating order:
- plain / stream: short chat requests, greedy; latency p50/p95 both ways, the proxy's share of it;
  streaming adds time to the first chunk and to the first answer text.
- compress: question-aware compression at rate 0.5 scored by the serving backend's prompt logprobs
  (`"scorer": "backend"`) on NQ 20-document prompts fitted to ~2k/4k/7.6k tokens; streamed; tokens sent,
  prefill tokens saved, compression time in the proxy, time to first token against the full prompt
  sent directly, gold answer in the answer both ways. Every pair is a different row (cold prompts) and,
  where the direct server is SGLang, its radix cache is flushed before each request.
- retrieval: a corpus of nq_retrieval dev passages made through the corpus API, then chat with
  `{"retrieval": {"corpus": ...}}`; gold passage retrieved, gold answer in the answer (direct: the
  question alone).
- gist: a gist (k=16) trained through `POST /v1/gists` of the gist proxy for a 1.5k-token system prompt,
  then requests with that system prompt: the gist stage fired, tokens sent, latency and time to first
  token against the full prefix sent directly (cached on A; computed every time on B).
- organize: SoT-suitable questions answered plain (direct and through promptfold), `sot` and
  `pipelined`; speed-up, completion tokens, cached tokens of the branches.
A failed request or path is recorded with its error and listed; the run goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # bench.organize imports its tables module by name

from bench.compress import NQ_INSTRUCTION, has_answer, nq_docs, nq_question, read_jsonl  # noqa: E402
from bench.e2e_report import (  # noqa: E402
    PathResult,
    Sample,
    count_of,
    fit_documents,
    mean,
    ms,
    num,
    numbered,
    ok,
    p50,
    p95,
    ratio,
    render,
    share,
    times,
)
from bench.proxy_overhead import QUESTIONS  # noqa: E402

BYPASS = {"x-promptfold-bypass": "1"}
SUPPORT_PROMPT = ROOT / "bench/data/gist_support_prompt.txt"
SUPPORT_QUERIES = ROOT / "bench/data/gist_support_eval.txt"
PATHS = ("plain", "stream", "compress", "retrieval", "gist", "organize")


@dataclass
class Target:
    """Where a request goes: an OpenAI-compatible server, the headers every request carries, and the
    server's root URL when it is SGLang (for /flush_cache)."""

    label: str
    client: Any  # openai.AsyncOpenAI
    headers: dict[str, str]
    sglang_root: str | None = None


@dataclass
class Run:
    args: argparse.Namespace
    proxy: Target
    direct: Target
    gist_proxy: Target
    gist_direct: Target | None
    http: Any  # httpx.AsyncClient, for the corpus and gist routes
    count: Callable[[str], int]


# --- one request ----------------------------------------------------------------------------------------


async def chat(
    target: Target,
    path: str,
    variant: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    promptfold: dict[str, Any] | None = None,
    stream: bool = False,
) -> Sample:
    """One greedy chat request; errors become a failed Sample (with the exception's type and words)."""
    sample = Sample(path, variant)
    request = {
        "model": "default",
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "extra_body": {"promptfold": promptfold} if promptfold else None,
        "extra_headers": target.headers,
    }
    began = time.perf_counter()
    try:
        if stream:
            await _streamed(target, sample, request, began)
        else:
            reply = await target.client.chat.completions.create(**request)
            sample.latency_s = time.perf_counter() - began
            sample.text = reply.choices[0].message.content or ""
            _usage(sample, reply.usage)
            sample.report = (reply.model_extra or {}).get("promptfold")
    except Exception as error:
        sample.ok = False
        sample.latency_s = time.perf_counter() - began
        sample.error = f"{type(error).__name__}: {str(error)[:400]}"
    return sample


async def _streamed(target: Target, sample: Sample, request: dict[str, Any], began: float) -> None:
    stream = await target.client.chat.completions.create(
        **request, stream=True, stream_options={"include_usage": True}
    )
    parts = []
    async for chunk in stream:
        now = time.perf_counter() - began
        if sample.first_chunk_s is None:
            sample.first_chunk_s = now
        report = (chunk.model_extra or {}).get("promptfold")
        if report:
            sample.report = report
        if chunk.usage is not None:
            _usage(sample, chunk.usage)
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content:
                if sample.ttft_s is None:
                    sample.ttft_s = now
                parts.append(choice.delta.content)
    sample.latency_s = time.perf_counter() - began
    sample.text = "".join(parts)


def _usage(sample: Sample, usage: Any) -> None:
    if usage is None:
        return
    sample.prompt_tokens = usage.prompt_tokens
    sample.completion_tokens = usage.completion_tokens
    details = getattr(usage, "prompt_tokens_details", None)
    sample.cached_tokens = getattr(details, "cached_tokens", None) if details is not None else None


async def flush(target: Target) -> bool:
    """Empty SGLang's radix cache (True when it did); other targets have nothing to flush here."""
    if target.sglang_root is None:
        return False
    import httpx

    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(20):  # SGLang refuses while a request is still finishing
            if (await http.post(target.sglang_root + "/flush_cache")).status_code == 200:
                return True
            await asyncio.sleep(0.1)
    return False


def headline(result: PathResult, pf: list[Sample], direct: list[Sample], check: str) -> None:
    good_pf, good_direct = ok(pf), ok(direct)
    lat_pf = p50([s.latency_s for s in good_pf])
    lat_direct = p50([s.latency_s for s in good_direct])
    result.headline = {
        "requests ok": f"{len(good_pf) + len(good_direct)}/{len(pf) + len(direct)}",
        "promptfold p50 ms": ms(lat_pf),
        "direct p50 ms": ms(lat_direct),
        "promptfold / direct": times(ratio(lat_pf, lat_direct)),
        "prompt tokens promptfold / direct": f"{num(mean([s.prompt_tokens for s in good_pf]))} / "
        f"{num(mean([s.prompt_tokens for s in good_direct]))}",
        "cached tokens promptfold / direct": f"{num(mean([s.cached_tokens for s in good_pf]))} / "
        f"{num(mean([s.cached_tokens for s in good_direct]))}",
        "check": check,
    }


# --- paths ----------------------------------------------------------------------------------------------


async def path_plain(run: Run, stream: bool) -> PathResult:
    name = "stream" if stream else "plain"
    result = PathResult(f"{name} chat (max_tokens {run.args.max_tokens})")
    questions = [[{"role": "user", "content": q}] for q in QUESTIONS]
    for messages in questions[:2]:  # warm-up, not counted: connections, templates, caches
        await chat(run.proxy, name, "warm-up", messages, max_tokens=run.args.max_tokens, stream=stream)
        await chat(run.direct, name, "warm-up", messages, max_tokens=run.args.max_tokens, stream=stream)
    pf: list[Sample] = []
    direct: list[Sample] = []
    for i in range(run.args.requests):
        messages = questions[i % len(questions)]
        order = [(run.proxy, "promptfold", pf), (run.direct, "direct", direct)]
        for target, variant, into in order if i % 2 == 0 else order[::-1]:
            sample = await chat(
                target, name, variant, messages, max_tokens=run.args.max_tokens, stream=stream
            )
            into.append(result.record(sample))
    pairs = [(a, b) for a, b in zip(pf, direct, strict=True) if a.ok and b.ok]
    added = p50([a.latency_s - b.latency_s for a, b in pairs if a.latency_s and b.latency_s])
    lat_pf = p50([a.latency_s for a, _ in pairs])
    same = [a.text == b.text for a, b in pairs]
    headline(result, pf, direct, f"same answer both ways {count_of(same)}")
    row = {
        "pairs ok": f"{len(pairs)}/{run.args.requests}",
        "p50 ms promptfold": ms(lat_pf),
        "p50 ms direct": ms(p50([b.latency_s for _, b in pairs])),
        "p95 ms promptfold": ms(p95([a.latency_s for a, _ in pairs])),
        "p95 ms direct": ms(p95([b.latency_s for _, b in pairs])),
        "added p50 ms (paired)": ms(added),
        "proxy share of e2e": share(ratio(added, lat_pf)),
    }
    if stream:
        row["first chunk p50 ms promptfold"] = ms(p50([a.first_chunk_s for a, _ in pairs]))
        row["first chunk p50 ms direct"] = ms(p50([b.first_chunk_s for _, b in pairs]))
        row["first text p50 ms promptfold"] = ms(p50([a.ttft_s for a, _ in pairs]))
        row["first text p50 ms direct"] = ms(p50([b.ttft_s for _, b in pairs]))
    row["same answer"] = count_of(same)
    result.table = [row]
    result.figures = {"added_p50_s": added, "share": ratio(added, lat_pf)}
    result.notes.append(
        f"{run.args.requests} requests each way, alternating which goes first; 2 warm-up pairs not "
        "counted; proxy share = median paired added latency / promptfold p50 (goal <= 5%)"
    )
    return result


async def path_compress(run: Run) -> PathResult:
    args = run.args
    result = PathResult(f"compress (question-aware, rate {args.rate}, scorer backend, streamed)")
    rows = read_jsonl(Path(args.eval_dir) / "nq_multidoc20_synth/dev.jsonl", 100)
    spare = [doc for row in rows[50:] for doc in nq_docs(row)]  # other rows' documents, to reach 4k-8k
    warm = rows[99]  # warm-up, not counted: loads the passage ranker and the scorer's tokenizer
    warm_docs = "\n".join(numbered(fit_documents(nq_docs(warm), warm["gold_index"], [], run.count, 500)))
    await chat(
        run.proxy,
        "compress",
        "warm-up",
        [{"role": "user", "content": NQ_INSTRUCTION + "\n\n" + warm_docs + "\n\n" + nq_question(warm)}],
        max_tokens=1,
        promptfold={"compress": {"rate": args.rate, "scorer": "backend", "question": warm["question"]}},
    )
    flushed = 0
    row_index = 0
    for size in args.sizes:
        pf: list[Sample] = []
        direct: list[Sample] = []
        for i in range(args.compress_rows):
            row = rows[row_index % 50]
            row_index += 1
            docs = numbered(fit_documents(nq_docs(row), row["gold_index"], spare, run.count, size))
            content = NQ_INSTRUCTION + "\n\n" + "\n".join(docs) + "\n\n" + nq_question(row)
            messages = [{"role": "user", "content": content}]
            options = {
                "compress": {
                    "rate": args.rate,
                    "scorer": "backend",
                    "question": row["question"],
                    "mode": "question_aware",
                }
            }
            order = [(run.proxy, "promptfold", pf, options), (run.direct, "direct", direct, None)]
            for target, variant, into, opts in order if i % 2 == 0 else order[::-1]:
                flushed += await flush(run.direct)
                sample = await chat(
                    target,
                    "compress",
                    variant,
                    messages,
                    max_tokens=args.answer_tokens,
                    promptfold=opts,
                    stream=True,
                )
                sample.extra = {"target_tokens": size, "documents": len(docs), "row": row["id"]}
                sample.extra["gold_in_answer"] = sample.ok and has_answer(sample.text, row["answers"])
                into.append(result.record(sample))
        result.table.append(_compress_row(size, pf, direct))
    pf_all = [s for s in result.samples if s.variant == "promptfold"]
    direct_all = [s for s in result.samples if s.variant == "direct"]
    gold = count_of([bool(s.extra.get("gold_in_answer")) for s in ok(pf_all)])
    gold_direct = count_of([bool(s.extra.get("gold_in_answer")) for s in ok(direct_all)])
    headline(result, pf_all, direct_all, f"gold in answer {gold} vs {gold_direct} direct")
    applied = [bool((s.stage("compress") or {}).get("applied")) for s in ok(pf_all)]
    result.notes += [
        f"compress stage applied {count_of(applied)}; ttft = first streamed answer text; "
        "latency = whole answer (same max_tokens both ways, answers may differ in length)",
        "cold prompts: a different dev row for every pair"
        + (f", and SGLang's radix cache flushed before each request ({flushed} flushes)" if flushed else ""),
        "the BackendScorer's own prompt-logprob requests (the whole context, with and without the "
        "question) run inside the compression time: prefill saved on the answer request is paid there",
    ]
    return result


def _compress_row(size: int, pf: list[Sample], direct: list[Sample]) -> dict[str, str]:
    good_pf, good_direct = ok(pf), ok(direct)
    stages = [s.stage("compress") or {} for s in good_pf]
    sent_pf = mean([s.prompt_tokens for s in good_pf])
    sent_direct = mean([s.prompt_tokens for s in good_direct])
    ttft_pf, ttft_direct = p50([s.ttft_s for s in good_pf]), p50([s.ttft_s for s in good_direct])
    return {
        "target tokens": str(size),
        "pairs ok": f"{min(len(good_pf), len(good_direct))}/{len(pf)}",
        "prompt tokens direct": num(sent_direct),
        "prompt tokens promptfold": num(sent_pf),
        "prefill saved": num(None if sent_pf is None or sent_direct is None else sent_direct - sent_pf),
        "achieved ratio": num(mean([st.get("details", {}).get("ratio") for st in stages]), 3),
        "compression ms": ms(mean([st.get("time_s") for st in stages])),
        "ttft p50 ms promptfold": ms(ttft_pf),
        "ttft p50 ms direct": ms(ttft_direct),
        "ttft direct / promptfold": times(ratio(ttft_direct, ttft_pf)),
        "e2e p50 ms promptfold": ms(p50([s.latency_s for s in good_pf])),
        "e2e p50 ms direct": ms(p50([s.latency_s for s in good_direct])),
        "gold in answer promptfold": count_of([bool(s.extra.get("gold_in_answer")) for s in good_pf]),
        "gold in answer direct": count_of([bool(s.extra.get("gold_in_answer")) for s in good_direct]),
    }


async def path_retrieval(run: Run) -> PathResult:
    args = run.args
    result = PathResult(f"retrieval (corpus, top_k {args.top_k})")
    folder = Path(args.eval_dir) / "nq_retrieval"
    queries = read_jsonl(folder / "dev.jsonl", args.retrieval_questions)
    wanted = {pid for q in queries for pid in q["relevant_ids"]}
    passages = [p for p in read_jsonl(folder / "corpus.jsonl", 5000) if p["_id"] in wanted]
    for p in read_jsonl(folder / "corpus.jsonl", 5000):
        if len(passages) >= args.passages:
            break
        if p["_id"] not in wanted:
            passages.append(p)
    root = str(run.proxy.client.base_url).rstrip("/").removesuffix("/v1")
    name = f"e2e-nq-{os.getpid()}"
    began = time.perf_counter()
    await _ok(run.http.post(f"{root}/v1/corpora", json={"name": name}))
    for start in range(0, len(passages), 100):
        batch = [
            {"id": p["_id"], "title": p["title"], "text": p["text"], "source": p["title"]}
            for p in passages[start : start + 100]
        ]
        await _ok(run.http.post(f"{root}/v1/corpora/{name}/documents", json={"documents": batch}))
    build_s = time.perf_counter() - began
    pf: list[Sample] = []
    direct: list[Sample] = []
    try:
        for i, query in enumerate(queries):
            messages = [{"role": "user", "content": f"Answer briefly. {query['text']}?"}]
            options = {"retrieval": {"corpus": name, "top_k": args.top_k}}
            order = [(run.proxy, "promptfold", pf, options), (run.direct, "direct", direct, None)]
            for target, variant, into, opts in order if i % 2 == 0 else order[::-1]:
                sample = await chat(
                    target, "retrieval", variant, messages, max_tokens=args.answer_tokens, promptfold=opts
                )
                stage = sample.stage("retrieval") or {}
                found = [p.get("document_id") for p in stage.get("details", {}).get("passages", [])]
                sample.extra = {
                    "gold_retrieved": any(pid in found for pid in query["relevant_ids"]),
                    "gold_in_answer": sample.ok and has_answer(sample.text, query["answers"]),
                    "retrieved": found,
                }
                into.append(result.record(sample))
    finally:
        await run.http.delete(f"{root}/v1/corpora/{name}")
    retrieved = count_of([bool(s.extra["gold_retrieved"]) for s in ok(pf)])
    gold_pf = count_of([bool(s.extra["gold_in_answer"]) for s in ok(pf)])
    gold_direct = count_of([bool(s.extra["gold_in_answer"]) for s in ok(direct)])
    headline(
        result, pf, direct, f"gold passage retrieved {retrieved}; gold in answer {gold_pf} vs {gold_direct}"
    )
    result.table = [
        {
            "passages": str(len(passages)),
            "corpus build s": f"{build_s:.1f}",
            "questions": str(len(queries)),
            "gold passage in top_k": retrieved,
            "gold in answer promptfold": gold_pf,
            "gold in answer direct (no passages)": gold_direct,
            "retrieval stage ms": ms(mean([(s.stage("retrieval") or {}).get("time_s") for s in ok(pf)])),
            "e2e p50 ms promptfold": ms(p50([s.latency_s for s in ok(pf)])),
            "e2e p50 ms direct": ms(p50([s.latency_s for s in ok(direct)])),
        }
    ]
    result.notes.append(
        "corpus made through POST /v1/corpora and /documents (nq_retrieval dev: the questions' gold "
        "passages plus others); direct = the question alone, without passages"
    )
    return result


async def _ok(call: Awaitable[Any]) -> Any:
    response = await call
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: HTTP {response.status_code} {response.text[:300]}"
        )
    return response.json()


async def path_gist(run: Run) -> PathResult:
    args = run.args
    result = PathResult(f"gist (k={args.gist_tokens}, system prompt)")
    prefix = Path(args.gist_prefix_file).read_text(encoding="utf-8")
    queries = [q for q in SUPPORT_QUERIES.read_text(encoding="utf-8").splitlines() if q.strip()]
    asked, training = queries[: args.gist_requests], queries[args.gist_requests :]
    root = str(run.gist_proxy.client.base_url).rstrip("/").removesuffix("/v1")
    began = time.perf_counter()
    record = await _ok(
        run.http.post(
            f"{root}/v1/gists",
            json={
                "prefix": prefix,
                "role": "system",
                "tokens": args.gist_tokens,
                "queries": training,
                "max_answer_tokens": args.gist_answer_tokens,
                "max_steps": args.gist_steps,
                "batch_size": 4,
            },
            timeout=args.gist_timeout,
        )
    )
    train_s = time.perf_counter() - began
    targets = [(run.gist_proxy, "promptfold gist"), (run.direct, "direct, prefix cached")]
    if run.gist_direct is not None:
        targets.append((run.gist_direct, "direct, prefix computed"))
    messages = [[{"role": "system", "content": prefix}, {"role": "user", "content": q}] for q in asked]
    await chat(run.direct, "gist", "warm-up", messages[0], max_tokens=1)  # the cached path's prefix
    by_variant: dict[str, list[Sample]] = {variant: [] for _, variant in targets}
    for i, chat_messages in enumerate(messages):
        for target, variant in targets[i % len(targets) :] + targets[: i % len(targets)]:
            sample = await chat(
                target, "gist", variant, chat_messages, max_tokens=args.answer_tokens, stream=True
            )
            by_variant[variant].append(result.record(sample))
    gist = by_variant["promptfold gist"]
    fired = [bool((s.stage("gist") or {}).get("applied")) for s in ok(gist)]
    headline(result, gist, by_variant["direct, prefix cached"], f"gist stage fired {count_of(fired)}")
    for variant, samples in by_variant.items():
        good = ok(samples)
        result.table.append(
            {
                "path": variant,
                "requests ok": f"{len(good)}/{len(samples)}",
                "prompt tokens": num(mean([s.prompt_tokens for s in good])),
                "cached tokens": num(mean([s.cached_tokens for s in good])),
                "ttft p50 ms": ms(p50([s.ttft_s for s in good])),
                "e2e p50 ms": ms(p50([s.latency_s for s in good])),
                "gist fired": count_of([bool((s.stage("gist") or {}).get("applied")) for s in good])
                if variant == "promptfold gist"
                else "-",
            }
        )
    result.notes += [
        f"gist {record.get('id')} trained through POST /v1/gists in {train_s:.0f} s "
        f"({args.gist_steps} steps max, {len(training)} training queries, prefix "
        f"{record.get('prefix_tokens')} tokens -> {record.get('tokens')})",
        "quality is not the point here (few steps); requests are streamed, the full-prefix paths get the "
        "same messages; 'prefix cached' was warmed once before",
    ]
    return result


async def path_organize(run: Run) -> PathResult:
    from organize import load_questions, pick

    args = run.args
    result = PathResult(f"organize (max_tokens {args.organize_tokens})")
    questions = pick(load_questions(Path(args.eval_dir) / "sot"), args.organize_questions)
    modes = [
        (run.direct, "direct plain", None),
        (run.proxy, "promptfold plain", None),
        (run.proxy, "promptfold sot", {"organize": "sot"}),
        (run.proxy, "promptfold pipelined", {"organize": "pipelined"}),
    ]
    by_mode: dict[str, list[Sample]] = {variant: [] for _, variant, _ in modes}
    for i, question in enumerate(questions):
        messages = [{"role": "user", "content": question.text}]
        for target, variant, options in modes[i % len(modes) :] + modes[: i % len(modes)]:
            sample = await chat(
                target, "organize", variant, messages, max_tokens=args.organize_tokens, promptfold=options
            )
            plan = ((sample.report or {}).get("details") or {}).get("organize") or {}
            branches = plan.get("branches") or []
            sample.extra = {
                "question": i,
                "plan": (sample.report or {}).get("plan"),
                "points": len(branches),
                "branch_cached_tokens": sum(b.get("cached_tokens", 0) for b in branches),
                "branch_prompt_tokens": sum(b.get("prompt_tokens", 0) for b in branches),
                "fallback": plan.get("fallback"),
            }
            by_mode[variant].append(result.record(sample))
    plain = {s.extra["question"]: s.latency_s for s in ok(by_mode["promptfold plain"])}
    direct = {s.extra["question"]: s.latency_s for s in ok(by_mode["direct plain"])}
    for variant, samples in by_mode.items():
        good = ok(samples)
        speedup = p50([ratio(plain.get(s.extra["question"]), s.latency_s) for s in good])
        speedup_direct = p50([ratio(direct.get(s.extra["question"]), s.latency_s) for s in good])
        result.table.append(
            {
                "mode": variant,
                "answers ok": f"{len(good)}/{len(samples)}",
                "plan ran": ", ".join(sorted({str(s.extra["plan"]) for s in good})) or "-",
                "e2e p50 ms": ms(p50([s.latency_s for s in good])),
                "speed-up vs promptfold plain (median)": times(speedup),
                "speed-up vs direct plain (median)": times(speedup_direct),
                "completion tokens": num(mean([s.completion_tokens for s in good])),
                "points": num(mean([s.extra["points"] for s in good]), 1),
                "branch prompt / cached tokens": f"{num(mean([s.extra['branch_prompt_tokens'] for s in good]))}"
                f" / {num(mean([s.extra['branch_cached_tokens'] for s in good]))}",
                "fallbacks": str(sum(1 for s in good if s.extra["fallback"])),
            }
        )
    sot = by_mode["promptfold sot"]
    organized = sum(1 for s in ok(sot) if s.extra["plan"] == "sot")
    headline(result, sot, by_mode["direct plain"], f"sot plan ran {organized}/{len(sot)}")
    result.notes.append(
        f"{len(questions)} SoT-suitable questions (router.csv label 1, round-robin over categories), "
        "non-streaming, modes in rotating order; headline: promptfold sot vs direct plain"
    )
    return result


# --- the run ----------------------------------------------------------------------------------------


async def guarded(name: str, work: Awaitable[PathResult]) -> PathResult:
    """A path's result, or a row with the error and its cause when the path itself failed."""
    began = time.perf_counter()
    log(f"== {name}")
    try:
        result = await work
    except Exception as error:
        where = traceback.extract_tb(error.__traceback__)[-1]
        result = PathResult(name, headline={"check": "FAILED"})
        result.failures.append(
            f"the path failed: {type(error).__name__}: {str(error)[:500]} (at {Path(where.filename).name}:{where.lineno})"
        )
    log(f"   {name}: {time.perf_counter() - began:.1f} s, {len(result.failures)} failures")
    return result


def target(label: str, base: str, headers: dict[str, str], timeout: float, sglang: bool) -> Target:
    import openai

    base = base.rstrip("/")
    root = base.removesuffix("/v1")
    client = openai.AsyncOpenAI(base_url=root + "/v1", api_key="unused", timeout=timeout, max_retries=0)
    return Target(label, client, headers, root if sglang else None)


def token_counter(tokenizer: str | None) -> Callable[[str], int]:
    """Counts with the served model's tokenizer (PROMPTFOLD_CAUSAL_LM or the packaged SmolLM2)."""
    from transformers import AutoTokenizer

    from backend.models import resolve_causal_lm

    folder = tokenizer or str(resolve_causal_lm().path)
    loaded = AutoTokenizer.from_pretrained(folder)
    return lambda text: len(loaded(text, add_special_tokens=False)["input_ids"])


async def main_async(args: argparse.Namespace) -> list[PathResult]:
    import httpx

    proxy = target("promptfold", args.proxy, {}, args.timeout, False)
    if args.direct:
        direct = target("direct", args.direct, {}, args.timeout, True)
    else:
        direct = target("direct (proxy bypass)", args.proxy, BYPASS, args.timeout, False)
    gist_proxy = (
        target("promptfold gist", args.gist_proxy, {}, args.timeout, False) if args.gist_proxy else proxy
    )
    gist_direct = target("direct B", args.gist_direct, {}, args.timeout, True) if args.gist_direct else None
    async with httpx.AsyncClient(timeout=args.timeout) as http:
        run = Run(args, proxy, direct, gist_proxy, gist_direct, http, token_counter(args.tokenizer))
        work: dict[str, Callable[[], Awaitable[PathResult]]] = {
            "plain": lambda: path_plain(run, stream=False),
            "stream": lambda: path_plain(run, stream=True),
            "compress": lambda: path_compress(run),
            "retrieval": lambda: path_retrieval(run),
            "gist": lambda: path_gist(run),
            "organize": lambda: path_organize(run),
        }
        return [await guarded(name, work[name]()) for name in args.paths]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--proxy", required=True, help="promptfold proxy URL (http://HOST:PORT)")
    parser.add_argument(
        "--direct",
        help="the model server's own OpenAI API (SGLang: http://HOST:PORT); "
        "default: the proxy with x-promptfold-bypass: 1",
    )
    parser.add_argument("--gist-proxy", help="proxy whose backend takes input embeddings (default: --proxy)")
    parser.add_argument("--gist-direct", help="SGLang without radix cache, for the computed full prefix")
    parser.add_argument("--eval-dir", default="/work/shared/eval", help="folder with nq_*, sot (dev files)")
    parser.add_argument("--tokenizer", help="tokenizer folder for prompt sizes (default: the served SmolLM2)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a CPU dry run")
    parser.add_argument("--requests", type=int, default=16, help="plain/stream requests each way")
    parser.add_argument("--max-tokens", type=int, default=32, help="plain/stream answer tokens")
    parser.add_argument("--sizes", default="2000,4000,7600", help="compress: prompt sizes in tokens")
    parser.add_argument("--compress-rows", type=int, default=3, help="compress: pairs per size")
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--answer-tokens", type=int, default=32, help="compress/retrieval/gist answers")
    parser.add_argument("--passages", type=int, default=300, help="retrieval: corpus passages")
    parser.add_argument("--retrieval-questions", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--gist-prefix-file", default=str(SUPPORT_PROMPT))
    parser.add_argument("--gist-tokens", type=int, default=16)
    parser.add_argument("--gist-steps", type=int, default=40)
    parser.add_argument("--gist-answer-tokens", type=int, default=48)
    parser.add_argument("--gist-requests", type=int, default=6, help="gist: requests per path")
    parser.add_argument("--gist-timeout", type=float, default=300, help="gist: seconds for training")
    parser.add_argument("--organize-questions", type=int, default=8)
    parser.add_argument("--organize-tokens", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=180, help="seconds per request")
    parser.add_argument("--out", help="markdown report")
    parser.add_argument("--json", help="raw samples and figures")
    args = parser.parse_args(argv)
    if args.quick:
        quick = {
            "requests": 6, "max_tokens": 8, "sizes": "400,800", "compress_rows": 1, "answer_tokens": 12,
            "passages": 40, "retrieval_questions": 2, "gist_steps": 2, "gist_answer_tokens": 8,
            "gist_requests": 2, "organize_questions": 2, "organize_tokens": 48,
        }  # fmt: skip
        defaults = parser.parse_args(["--proxy", "x"])
        for key, value in quick.items():
            if getattr(args, key) == getattr(defaults, key):
                setattr(args, key, value)
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = sorted(set(args.paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown paths {unknown}: use {', '.join(PATHS)}")
    return args


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    results = asyncio.run(main_async(args))
    direct = args.direct or f"{args.proxy} with x-promptfold-bypass: 1 (every promptfold stage skipped)"
    meta = {
        "title": "promptfold end to end" + (" (quick sizes)" if args.quick else ""),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python bench/e2e_sglang.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "proxy": args.proxy,
        "direct": direct,
        "gist proxy": args.gist_proxy or args.proxy,
        "gist direct": args.gist_direct,
        "cold prompts": "compress: a different row per pair"
        + (", /flush_cache before each request" if args.direct else ""),
    }
    report = render(results, meta) + f"\nWall time {time.perf_counter() - began:.0f} s.\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    if args.json:
        data = {
            "meta": meta,
            "args": {k: v for k, v in vars(args).items()},
            "paths": [{**asdict(r), "samples": [asdict(s) for s in r.samples]} for r in results],
        }
        Path(args.json).write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
