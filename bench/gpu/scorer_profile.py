"""Where a compression's time goes on a GPU: the scorer's pieces and the whole service call, per size.

    python bench/gpu/scorer_profile.py [--sizes 2000,8000,16000] [--device cuda] [--out DIR]

Times (median of --reps, CUDA synchronized) for one multi-document NQ prompt per size (dev rows):
tokenizing with offsets; SmolLM2's decoder forward with and without the padding mask; the LM head and
log-softmax on the scored positions; `LocalScorer.score_sync` whole; then `CompressionService.compress`
on chat messages (what the proxy runs; SmolLM2 scorer and MiniLM ranker on --device) at plain 0.5 /
0.25 and question-aware 0.25, and the same call's Python profile (threads run inline) and a torch
profile of one forward. A diagnosis tool: the end-to-end figures are bench/gpu/compress_e2e.sh's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.compress import EVAL, nq_docs, nq_question, read_jsonl


def timed(function: Any, reps: int, sync: Any) -> float:
    function()
    sync()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        function()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def context_of(tokens: int) -> tuple[list[str], str]:
    rows = read_jsonl(EVAL / "nq_multidoc20_synth" / "dev.jsonl", 40)
    docs: list[str] = []
    for row in rows:
        docs += nq_docs(row)
    picked, size = [], 0
    for doc in docs:
        picked.append(doc)
        size += len(doc) // 4
        if size >= tokens:
            break
    return picked, nq_question(rows[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="2000,8000,16000")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", default="/tmp/out")
    args = parser.parse_args()
    import torch

    from middleware.compress import CompressOptions
    from middleware.compress.scorer import LocalScorer, ScoreRequest
    from middleware.compress.service import CompressionService

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    scorer = LocalScorer(device=args.device)
    loaded = scorer.loaded
    report: dict[str, Any] = {
        "attn_implementation": getattr(loaded.model.config, "_attn_implementation", None),
        "dtype": str(loaded.dtype),
        "device": str(loaded.device),
        "torch": torch.__version__,
        "sizes": {},
    }
    print(json.dumps({k: v for k, v in report.items() if k != "sizes"}), flush=True)
    service = CompressionService(device=args.device, default_scorer="local", workers=8)
    for size in [int(s) for s in args.sizes.split(",")]:
        row = one_size(size, scorer, service, args.reps, sync)
        report["sizes"][size] = row
        print(
            size,
            json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
            flush=True,
        )
    (out / "scorer_profile.json").write_text(json.dumps(report, indent=1))
    # the Python side of one 8k-ish service call, threads inline so that cProfile sees them
    docs, question = context_of(8000)
    text = "\n".join(docs)

    async def inline(function: Any, *a: Any, **k: Any) -> Any:
        return function(*a, **k)

    asyncio.to_thread = inline  # type: ignore[assignment]
    inline_service = CompressionService(device=args.device, default_scorer="local")
    inline_service.offload = inline  # type: ignore[method-assign]
    body = [{"role": "user", "content": f"{uuid.uuid4().hex}\n{text}\n\nQuestion: {question}"}]
    asyncio.run(inline_service.compress(CompressOptions(rate=0.5), messages=body))
    profile = cProfile.Profile()
    body = [{"role": "user", "content": f"{uuid.uuid4().hex}\n{text}\n\nQuestion: {question}"}]
    profile.enable()
    asyncio.run(inline_service.compress(CompressOptions(rate=0.5), messages=body))
    profile.disable()
    stream = io.StringIO()
    pstats.Stats(profile, stream=stream).sort_stats("tottime").print_stats(30)
    (out / "scorer_profile_python.txt").write_text(stream.getvalue())
    print(stream.getvalue()[:6000])
    if cuda:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with (
            torch.inference_mode(),
            torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof,
        ):
            scorer.score_sync([ScoreRequest(text=text)])
            sync()
        table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=20)
        (out / "scorer_profile_torch.txt").write_text(table)
        print(table[:5000])


def one_size(size: int, scorer: Any, service: Any, reps: int, sync: Any) -> dict[str, Any]:
    """The timings of one prompt of about `size` tokens (see the module docstring)."""
    import torch

    from middleware.compress import CompressOptions
    from middleware.compress.scorer import ScoreRequest

    loaded = scorer.loaded
    docs, question = context_of(size)
    text = "\n".join(docs)
    row: dict[str, Any] = {}
    row["tokenize_wrapper_s"] = timed(
        lambda: loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True),
        reps,
        sync,
    )
    row["tokenize_s"] = timed(lambda: scorer.tokenizer.encode_many_with_offsets([text]), reps, sync)
    ids = scorer.tokenizer.encode_with_offsets(text)[0]
    row["tokens"] = len(ids)
    input_ids = torch.from_numpy(ids[None, :]).to(loaded.device)
    mask = torch.ones_like(input_ids)
    with torch.inference_mode():
        row["forward_mask_s"] = timed(
            lambda: loaded.model.model(input_ids=input_ids, attention_mask=mask, use_cache=False),
            reps,
            sync,
        )
        row["forward_nomask_s"] = timed(
            lambda: loaded.model.model(input_ids=input_ids, use_cache=False), reps, sync
        )
        hidden = loaded.model.model(input_ids=input_ids, use_cache=False).last_hidden_state[0]

        def head() -> None:
            for begin in range(0, hidden.shape[0], scorer.head_chunk):
                logits = loaded.logits(hidden[begin : begin + scorer.head_chunk]).float()
                torch.logsumexp(logits, dim=-1)

        row["head_s"] = timed(head, reps, sync)
    request = [ScoreRequest(text=text)]
    row["score_sync_s"] = timed(lambda: scorer.score_sync(request), reps, sync)
    for name, options in (
        ("plain 0.5", CompressOptions(rate=0.5)),
        ("plain 0.25", CompressOptions(rate=0.25)),
        ("question-aware 0.25", CompressOptions(rate=0.25, mode="question_aware")),
    ):

        def messages() -> list[dict[str, str]]:
            return [
                {"role": "system", "content": f"{uuid.uuid4().hex} Answer from the documents."},
                {"role": "user", "content": f"{uuid.uuid4().hex}\n{text}\n\nQuestion: {question}"},
            ]

        async def once(opts: CompressOptions = options) -> float:
            started = time.perf_counter()
            await service.compress(opts, messages=messages())
            return time.perf_counter() - started

        async def many(opts: CompressOptions = options) -> list[float]:
            return [await once(opts) for _ in range(reps + 1)][1:]

        row[f"service {name} s"] = statistics.median(asyncio.run(many()))
    return row


if __name__ == "__main__":
    main()
