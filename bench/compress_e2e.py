"""Does compression pay end to end? Time to first token and throughput, direct vs through the proxy.

    python bench/compress_e2e.py --proxy http://127.0.0.1:8000 --direct http://127.0.0.1:30002 \
        --sizes 2000,4000,8000,16000,32000 --json out.json --markdown out.md

`--direct` is the backend's own OpenAI route (an SGLang server); without it the "direct" rows go to the
proxy with `x-promptfold-bypass: 1` (the embedded engine, where the proxy is the server). Prompts are
multi-document NQ chats (a system message and one user message: documents, then a `Question:` line) of
about N tokens, each with a fresh random first line so that no request reuses another's cache. Parts:

1. TTFT (streamed, 4 output tokens, median of `--reps`): direct, proxy without stages, plain 0.5/0.25,
   question-aware 0.5/0.25, with the compression time each compressed request reported;
2. compression alone (`POST /v1/compress`): milliseconds, and per 1k tokens;
3. load: `--load-requests` prompts of `--load-tokens` tokens, `--concurrency` at a time, `--output-tokens`
   each: requests/s (ratio to direct), TTFT p50/p99;
4. a multi-turn replay: a conversation that grows by a document and a question per turn, compressed
   (plain 0.5) and not: per turn the compression time, the messages that were cache hits, and the share
   of prompt tokens the backend had cached (`usage.prompt_tokens_details.cached_tokens`).
The break-even prompt length per rate is the smallest size where compressed TTFT beats direct.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
NQ = ROOT / "shared" / "eval" / "nq_multidoc20_synth" / "dev.jsonl"
SYSTEM = "You are a helpful assistant. Answer the question using the search results."
CONFIGS: dict[str, dict[str, Any] | None] = {
    "proxy, no stages": None,
    "plain 0.5": {"compress": {"rate": 0.5}},
    "plain 0.25": {"compress": {"rate": 0.25}},
    "question-aware 0.5": {"compress": {"rate": 0.5, "mode": "question_aware"}},
    "question-aware 0.25": {"compress": {"rate": 0.25, "mode": "question_aware"}},
}


@dataclass
class Timed:
    ttft_s: float
    total_s: float
    prompt_tokens: int = 0
    cached_tokens: int = 0
    compress_s: float | None = None
    cache_hits: list[int] = field(default_factory=list)
    compressed_messages: int = 0


# --- prompts ----------------------------------------------------------------------------------------


class Prompts:
    """Chats of about N tokens built from NQ rows; token counts from the proxy's /v1/compress counter
    would cost a request each, so the length is set by characters measured once (chars per token)."""

    def __init__(self, path: Path, chars_per_token: float = 4.3) -> None:
        self.rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        self.chars_per_token = chars_per_token

    def documents(self, start: int, tokens: int) -> tuple[str, str]:
        """Documents of about `tokens` tokens starting at row `start`, and that row's question."""
        docs: list[str] = []
        size, row = 0, start
        while size < tokens * self.chars_per_token:
            for ctx in self.rows[row % len(self.rows)]["ctxs"]:
                line = f"Document [{len(docs) + 1}](Title: {ctx['title']}) {ctx['text']}"
                docs.append(line)
                size += len(line) + 1
                if size >= tokens * self.chars_per_token:
                    break
            row += 1
        return "\n".join(docs), self.rows[start % len(self.rows)]["question"]

    def chat(self, tokens: int, seed: int) -> list[dict[str, str]]:
        body, question = self.documents(seed, tokens)
        nonce = f"Session {uuid.uuid4().hex}."  # a fresh first line: no request reuses another's cache
        user = f"{body}\n\nQuestion: {question}"
        return [{"role": "system", "content": f"{nonce} {SYSTEM}"}, {"role": "user", "content": user}]


# --- requests ---------------------------------------------------------------------------------------


async def stream_chat(
    client: httpx.AsyncClient,
    base: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    promptfold: dict[str, Any] | None,
    bypass: bool = False,
) -> Timed:
    body: dict[str, Any] = {
        "model": "default",
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,  # fixed-length answers (SGLang's and the proxy's engines honour it)
    }
    if promptfold is not None:
        body["promptfold"] = promptfold
    headers = {"x-promptfold-bypass": "1"} if bypass else {}
    started = time.perf_counter()
    first: float | None = None
    usage: dict[str, Any] = {}
    report: dict[str, Any] = {}
    async with client.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(str(chunk["error"]))
            choices = chunk.get("choices") or []
            if first is None and choices and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter()
            usage = chunk.get("usage") or usage
            report = chunk.get("promptfold") or report
    end = time.perf_counter()
    timed = Timed(
        ttft_s=(first or end) - started,
        total_s=end - started,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
    )
    for stage in report.get("stages") or []:
        if stage.get("stage") == "compress":
            timed.compress_s = float(stage.get("time_s") or 0.0)
            cache = (stage.get("details") or {}).get("cache") or []
            timed.cache_hits = [c.get("message", -1) for c in cache if c.get("cache_hit")]
            timed.compressed_messages = len(cache)
    return timed


async def compress_only(
    client: httpx.AsyncClient, base: str, messages: list[dict[str, str]], options: dict
) -> dict:
    started = time.perf_counter()
    response = await client.post(f"{base}/v1/compress", json={"messages": messages, "compress": options})
    wall = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    [stage] = body["promptfold"]["stages"]
    return {"wall_s": wall, "time_s": stage.get("time_s", 0.0), "usage": body.get("usage", {})}


# --- the parts --------------------------------------------------------------------------------------


async def ttft_table(args: argparse.Namespace, prompts: Prompts, client: httpx.AsyncClient) -> list[dict]:
    rows = []
    for size in args.sizes:
        row: dict[str, Any] = {"tokens": size}
        runs: dict[str, list[Timed]] = {"direct": []} | {name: [] for name in CONFIGS}
        for rep in range(args.reps + 1):  # the first round warms every path (compiles, loads)
            for name in runs:
                messages = prompts.chat(size, seed=rep * 7 + size // 1000)
                if name == "direct":
                    timed = await direct(args, client, messages, 4)
                else:
                    timed = await stream_chat(client, args.proxy, messages, 4, CONFIGS[name])
                if rep:
                    runs[name].append(timed)
        for name, timed in runs.items():
            row[name] = statistics.median(t.ttft_s for t in timed)
            compress = [t.compress_s for t in timed if t.compress_s is not None]
            if compress:
                row[f"{name} compress_s"] = statistics.median(compress)
            row[f"{name} prompt_tokens"] = statistics.median(t.prompt_tokens for t in timed)
        rows.append(row)
        say(f"ttft {size}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float)))
    return rows


async def direct(args: argparse.Namespace, client: httpx.AsyncClient, messages: list, tokens: int) -> Timed:
    if args.direct:
        return await stream_chat(client, args.direct, messages, tokens, None)
    return await stream_chat(client, args.proxy, messages, tokens, None, bypass=True)


async def compression_times(
    args: argparse.Namespace, prompts: Prompts, client: httpx.AsyncClient
) -> list[dict]:
    rows = []
    for size in args.sizes:
        for name, options in (
            ("plain 0.5", {"rate": 0.5}),
            ("question-aware 0.25", {"rate": 0.25, "mode": "question_aware"}),
        ):
            times = []
            tokens = 0
            for rep in range(args.reps + 1):
                result = await compress_only(client, args.proxy, prompts.chat(size, seed=100 + rep), options)
                tokens = int(result["usage"].get("original_tokens") or size)
                if rep:
                    times.append(result["time_s"])
            median = statistics.median(times)
            rows.append(
                {
                    "tokens": tokens,
                    "mode": name,
                    "ms": median * 1000,
                    "ms_per_1k_tokens": median * 1e6 / tokens,
                }
            )
            say(f"compress {size} {name}: {median * 1000:.1f} ms")
    return rows


async def load_test(args: argparse.Namespace, prompts: Prompts) -> list[dict]:
    rows = []
    limits = httpx.Limits(
        max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2
    )
    configs: dict[str, dict[str, Any] | None] = {"direct": None, **{k: CONFIGS[k] for k in args.load_configs}}
    for name, options in configs.items():
        async with httpx.AsyncClient(timeout=600, limits=limits) as client:
            await one_load(args, prompts, client, name, options, warm=True)
            rows.append(await one_load(args, prompts, client, name, options, warm=False))
        say(f"load {name}: {rows[-1]['req_per_s']:.2f} req/s")
    direct_rate = rows[0]["req_per_s"]
    for row in rows:
        row["ratio_to_direct"] = row["req_per_s"] / direct_rate
    return rows


async def one_load(
    args: argparse.Namespace,
    prompts: Prompts,
    client: httpx.AsyncClient,
    name: str,
    options: dict[str, Any] | None,
    *,
    warm: bool,
) -> dict[str, Any]:
    count = args.concurrency if warm else args.load_requests
    chats = [prompts.chat(args.load_tokens, seed=1000 + i) for i in range(count)]
    gate = asyncio.Semaphore(args.concurrency)

    async def one(messages: list[dict[str, str]]) -> Timed:
        async with gate:
            if name == "direct":
                return await direct(args, client, messages, args.output_tokens)
            return await stream_chat(client, args.proxy, messages, args.output_tokens, options)

    started = time.perf_counter()
    timed = await asyncio.gather(*(one(m) for m in chats))
    wall = time.perf_counter() - started
    ttfts = sorted(t.ttft_s for t in timed)
    return {
        "config": name,
        "requests": count,
        "req_per_s": count / wall,
        "ttft_p50_s": ttfts[len(ttfts) // 2],
        "ttft_p99_s": ttfts[min(len(ttfts) - 1, int(len(ttfts) * 0.99))],
        "prompt_tokens_mean": statistics.mean(t.prompt_tokens for t in timed),
    }


async def replay(
    args: argparse.Namespace, prompts: Prompts, client: httpx.AsyncClient
) -> dict[str, list[dict]]:
    """A conversation of `args.turns` turns, each adding a ~`args.turn_tokens`-token document and a question,
    answered with a fixed assistant reply (so both replays see the same history)."""
    out: dict[str, list[dict]] = {}
    nonce = f"Session {uuid.uuid4().hex}."
    for name, options in (("uncompressed", None), ("plain 0.5", {"compress": {"rate": 0.5}})):
        history: list[dict[str, str]] = [{"role": "system", "content": f"{nonce} {name}. {SYSTEM}"}]
        turns = []
        for turn in range(args.turns):
            body, question = prompts.documents(500 + turn, args.turn_tokens)
            history.append(
                {"role": "user", "content": f"({nonce} turn {turn + 1})\n{body}\n\nQuestion: {question}"}
            )
            timed = await stream_chat(client, args.proxy, history, 8, options, bypass=options is None)
            history.append(
                {"role": "assistant", "content": f"The answer to '{question}' is in the documents."}
            )
            turns.append(
                {
                    "turn": turn + 1,
                    "prompt_tokens": timed.prompt_tokens,
                    "cached_share": timed.cached_tokens / timed.prompt_tokens if timed.prompt_tokens else 0.0,
                    "ttft_s": timed.ttft_s,
                    "compress_s": timed.compress_s,
                    "cache_hits": len(timed.cache_hits),
                    "compressed_messages": timed.compressed_messages,
                }
            )
            say(f"replay {name} turn {turn + 1}: {turns[-1]}")
        out[name] = turns
    return out


# --- output -----------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Compression end to end\n\n`{results['command']}`\n", f"{results['setup']}\n"]
    names = ["direct", *CONFIGS]
    lines += ["## Time to first token (s, median)", "", "| prompt tokens | " + " | ".join(names) + " |"]
    lines.append("|" + " --- |" * (len(names) + 1))
    for row in results["ttft"]:
        cells = []
        for name in names:
            cell = f"{row[name]:.3f}"
            if name != "direct":
                cell += f" ({row[name] / row['direct']:.2f}x)"
            cells.append(cell)
        lines.append(f"| {row['tokens']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Compression time inside those requests (s, median): "
        + "; ".join(
            f"{row['tokens']}: "
            + ", ".join(f"{n} {row[n + ' compress_s']:.3f}" for n in names if n + " compress_s" in row)
            for row in results["ttft"]
        ),
        "",
    ]
    lines += [
        "Break-even (smallest measured prompt where the compressed request's TTFT < direct): "
        + ", ".join(
            f"{name} {size if size else 'not reached'}" for name, size in results["break_even"].items()
        ),
        "",
    ]
    lines += [
        "## Compression alone (POST /v1/compress)",
        "",
        "| tokens | mode | ms | ms per 1k tokens |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['tokens']} | {r['mode']} | {r['ms']:.1f} | {r['ms_per_1k_tokens']:.2f} |"
        for r in results["compress"]
    ]
    if results.get("load"):
        lines += [
            "",
            "## Under load",
            "",
            "| config | req/s | ratio to direct | TTFT p50 | TTFT p99 | prompt tokens |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r['config']} | {r['req_per_s']:.2f} | {r['ratio_to_direct']:.2f} | {r['ttft_p50_s']:.3f} | {r['ttft_p99_s']:.3f} | {r['prompt_tokens_mean']:.0f} |"
            for r in results["load"]
        ]
    if results.get("replay"):
        lines += [
            "",
            "## Multi-turn replay",
            "",
            "| turn | prompt tokens (uncompressed / compressed) | cached share | compress s | cache hits / compressed messages |",
            "| --- | --- | --- | --- | --- |",
        ]
        plain, compressed = results["replay"]["uncompressed"], results["replay"]["plain 0.5"]
        for a, b in zip(plain, compressed, strict=True):
            lines.append(
                f"| {a['turn']} | {a['prompt_tokens']} / {b['prompt_tokens']} | {a['cached_share']:.2f} / {b['cached_share']:.2f} "
                f"| {b['compress_s'] or 0:.3f} | {b['cache_hits']} / {b['compressed_messages']} |"
            )
    return "\n".join(lines) + "\n"


def break_even(rows: list[dict]) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for name in list(CONFIGS)[1:]:
        found[name] = next((r["tokens"] for r in rows if r[name] < r["direct"]), None)
    return found


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    random.seed(0)
    prompts = Prompts(Path(args.data))
    results: dict[str, Any] = {"command": " ".join(sys.argv), "setup": args.setup}
    async with httpx.AsyncClient(timeout=600) as client:
        if "ttft" in args.parts:
            results["ttft"] = await ttft_table(args, prompts, client)
            results["break_even"] = break_even(results["ttft"])
            save(args, results)
        if "compress" in args.parts:
            results["compress"] = await compression_times(args, prompts, client)
            save(args, results)
        if "replay" in args.parts:
            results["replay"] = await replay(args, prompts, client)
            save(args, results)
    if "load" in args.parts:
        results["load"] = await load_test(args, prompts)
    save(args, results)
    return results


def save(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Written after every part, so that a run cut short by its time limit keeps what it measured."""
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=asdict))
    text = markdown(results) if "ttft" in results and "compress" in results else json.dumps(results, indent=1)
    if args.markdown:
        Path(args.markdown).write_text(text)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--proxy", required=True, help="the promptfold proxy (base URL, without /v1)")
    parser.add_argument("--direct", help="the backend's own OpenAI route (base URL); default: proxy + bypass")
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[2000, 4000, 8000, 16000]
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--parts", default="ttft,compress,load,replay")
    parser.add_argument("--load-requests", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--load-tokens", type=int, default=8000)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument(
        "--load-configs",
        type=lambda s: s.split(";"),
        default=["proxy, no stages", "plain 0.5", "plain 0.25", "question-aware 0.25"],
    )
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--turn-tokens", type=int, default=800)
    parser.add_argument("--data", default=str(NQ))
    parser.add_argument("--setup", default="", help="a sentence on the machine and servers, for the report")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    outcome = asyncio.run(main(arguments))
    print(markdown(outcome) if "ttft" in outcome and "compress" in outcome else json.dumps(outcome, indent=1))
