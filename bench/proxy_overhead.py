"""What the proxy costs: the same chat requests sent direct to the backend and through promptfold.

    python bench/proxy_overhead.py                               # embedded engine (CPU)
    python bench/proxy_overhead.py --backend sglang://127.0.0.1:30000 --requests 200

Direct means what a client would do without promptfold: for the embedded engine, an in-process
`backend.generate` call; for SGLang, its own OpenAI route `/v1/chat/completions`. Through the proxy
means the `openai` client against `promptfold serve` on the same backend, in the same process run.
Sequential requests alternate between the two paths (so drift hits both alike) and give latency
p50/p99 and the added latency; then `--concurrency` clients at once give the throughput ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = [
    "What is 2+2?",
    "Name a colour of the sky.",
    "What is the capital of France?",
    "Say hello in French.",
    "What do bees make?",
    "How many legs does a spider have?",
    "What is the opposite of hot?",
    "Name a fruit that is yellow.",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def timed(call: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = await call()
    return time.perf_counter() - started, tokens


async def run(args: argparse.Namespace) -> dict:
    import openai

    from backend import Prompt, SamplingParams, open_backend, parse_backend_spec
    from middleware.config import Settings
    from middleware.server import create_app
    from middleware.server.background import serve_in_thread

    kind, target = parse_backend_spec(args.backend)
    backend = open_backend(args.backend)
    sampling = SamplingParams(temperature=0, max_tokens=args.max_tokens)
    messages = [[{"role": "user", "content": q}] for q in QUESTIONS]

    def openai_call(client: openai.AsyncOpenAI, i: int) -> Callable[[], Awaitable[int]]:
        async def call() -> int:
            r = await client.chat.completions.create(
                model="default",
                messages=messages[i % len(messages)],
                temperature=0,
                max_tokens=args.max_tokens,
            )
            return r.usage.completion_tokens

        return call

    def direct_call(i: int) -> Callable[[], Awaitable[int]]:
        if kind != "local":
            return openai_call(direct_client, i)

        async def call() -> int:
            [g] = await backend.generate([Prompt.from_messages(messages[i % len(messages)])], sampling)
            return g.usage.completion_tokens

        return call

    def proxy_call(i: int) -> Callable[[], Awaitable[int]]:
        return openai_call(proxy_client, i)

    # A remote backend's HTTP client belongs to one event loop: the proxy thread gets its own instance.
    proxy_backend = backend if kind == "local" else open_backend(args.backend)
    app = create_app(Settings(backend=args.backend), backend=proxy_backend, owns_backend=kind != "local")
    with serve_in_thread(app) as proxy_base:
        proxy_client = openai.AsyncOpenAI(base_url=f"{proxy_base}/v1", api_key="x", max_retries=0)
        direct_client = openai.AsyncOpenAI(base_url=f"{target}/v1", api_key="x", max_retries=0)
        for i in range(args.warmup):  # compile paths, fill caches
            await direct_call(i)()
            await proxy_call(i)()
        direct_s, proxy_s, tokens_d, tokens_p = [], [], 0, 0
        for i in range(args.requests):
            d, td = await timed(direct_call(i))
            p, tp = await timed(proxy_call(i))
            direct_s.append(d)
            proxy_s.append(p)
            tokens_d += td
            tokens_p += tp
        # Alternate rounds so that warm-up and machine noise hit both paths; keep each path's median.
        rounds: dict[str, list[float]] = {"direct": [], "proxy": []}
        for _ in range(args.rounds):
            for name, make in (("direct", direct_call), ("proxy", proxy_call)):
                started = time.perf_counter()
                await asyncio.gather(*(make(i)() for i in range(args.concurrent_requests)))
                rounds[name].append(args.concurrent_requests / (time.perf_counter() - started))
        throughput = {name: statistics.median(values) for name, values in rounds.items()}
        await proxy_client.close()
        await direct_client.close()
    await backend.close()
    added = [p - d for p, d in zip(proxy_s, direct_s, strict=True)]
    return {
        "backend": args.backend,
        "direct_path": "in-process backend.generate" if kind == "local" else f"{target}/v1/chat/completions",
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "completion_tokens": {"direct": tokens_d, "proxy": tokens_p},
        "latency_s": {
            "direct_p50": statistics.median(direct_s),
            "direct_p99": percentile(direct_s, 99),
            "proxy_p50": statistics.median(proxy_s),
            "proxy_p99": percentile(proxy_s, 99),
            "added_p50": statistics.median(added),
            "added_p99": percentile(added, 99),
        },
        "added_share_of_latency_p50": statistics.median(added) / statistics.median(direct_s),
        "throughput_rps": throughput,
        "throughput_ratio_proxy_over_direct": throughput["proxy"] / throughput["direct"],
        "concurrent_requests": args.concurrent_requests,
    }


def render(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    lat = result["latency_s"]
    table = Table(title=f"proxy overhead on {result['backend']} ({result['requests']} sequential requests)")
    for column in ("path", "p50 latency (ms)", "p99 latency (ms)", "throughput (req/s)"):
        table.add_column(column, justify="right" if column != "path" else "left")
    tp = result["throughput_rps"]
    table.add_row(
        result["direct_path"],
        f"{lat['direct_p50'] * 1e3:.1f}",
        f"{lat['direct_p99'] * 1e3:.1f}",
        f"{tp['direct']:.2f}",
    )
    table.add_row(
        "through promptfold",
        f"{lat['proxy_p50'] * 1e3:.1f}",
        f"{lat['proxy_p99'] * 1e3:.1f}",
        f"{tp['proxy']:.2f}",
    )
    table.add_row(
        "added by the proxy",
        f"{lat['added_p50'] * 1e3:+.1f}",
        f"{lat['added_p99'] * 1e3:+.1f}",
        f"ratio {result['throughput_ratio_proxy_over_direct']:.3f}",
    )
    Console().print(table)
    print(
        f"added latency p50 = {result['added_share_of_latency_p50'] * 100:.1f}% of direct p50; "
        f"completion tokens direct {result['completion_tokens']['direct']} vs proxy "
        f"{result['completion_tokens']['proxy']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="local", help="local | sglang://HOST:PORT (default: local)")
    parser.add_argument("--requests", type=int, default=40, help="sequential requests per path (default: 40)")
    parser.add_argument(
        "--concurrent-requests", type=int, default=16, help="requests sent at once (default: 16)"
    )
    parser.add_argument("--max-tokens", type=int, default=8, help="tokens per answer (default: 8)")
    parser.add_argument("--rounds", type=int, default=3, help="concurrent rounds per path (default: 3)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    render(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
