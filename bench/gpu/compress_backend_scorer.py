"""BackendScorer (prompt logprobs of a served model) vs LocalScorer (transformers in-process), one run.

On the GPU machine, with an SGLang server from the recipe (../shared/gpu/sglang/README.md):
    source .gpu/device_serve.sh none; launch A 30000 /root/model
    PYTHONPATH=/root/site:/tmp/site:$PWD python3 bench/gpu/compress_backend_scorer.py \
        --backend sglang://127.0.0.1:30000 --model /root/model --device cuda --rows 20 --json $OUT/compress_scorers.json
    stop; finish
Locally (the embedded engine stands in for SGLang):
    python bench/gpu/compress_backend_scorer.py --backend local --rows 2

For each nq_multidoc20_synth dev row it scores the 20 documents with both scorers (same token ids, so the
per-token self-information can be compared), then compresses question-aware at each rate with both.
Prints and writes: score agreement (Pearson r, mean |difference| in nats), scoring tokens/s of each,
achieved ratio and gold-answer survival of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.compress import EVAL, NQ_INSTRUCTION, has_answer, nq_docs, nq_question, read_jsonl


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="local")
    parser.add_argument("--model", default=None, help="LocalScorer model folder (default: packaged SmolLM2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--rates", default="0.5,0.25")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from backend import open_backend
    from middleware.compress import BackendScorer, CompressOptions, Compressor, LocalScorer, ScoreRequest

    backend = open_backend(args.backend)
    await backend.health()
    remote = BackendScorer(backend)
    local = LocalScorer(args.model, device=args.device)
    count = (lambda text: len(backend.tokenize(text))) if args.backend != "local" else local.count_tokens
    rows = read_jsonl(EVAL / "nq_multidoc20_synth" / "dev.jsonl", args.rows)

    # warm both
    await remote.score([ScoreRequest("warm up")])
    await local.score([ScoreRequest("warm up")])
    agreement: list[float] = []
    gaps: list[float] = []
    timing = {"backend": [0.0, 0], "local": [0.0, 0]}
    for row in rows:
        requests = [ScoreRequest(doc, prefix=nq_question(row)) for doc in nq_docs(row)]
        for name, scorer in (("backend", remote), ("local", local)):
            started = time.perf_counter()
            scores = await scorer.score(requests)
            timing[name][0] += time.perf_counter() - started
            timing[name][1] += sum(len(s) for s in scores)
            if name == "backend":
                remote_scores = scores
        for a, b in zip(remote_scores, scores, strict=True):
            if len(a) == len(b) and np.array_equal(a.token_ids, b.token_ids) and len(a) > 2:
                agreement.append(float(np.corrcoef(a.self_information, b.self_information)[0, 1]))
                gaps.append(float(np.mean(np.abs(a.self_information - b.self_information))))

    results: dict[str, object] = {
        "backend": args.backend,
        "rows": len(rows),
        "score_pearson_r_median": float(np.median(agreement)) if agreement else None,
        "score_mean_abs_diff_nats": float(np.mean(gaps)) if gaps else None,
        "scoring_tokens_per_s": {k: v[1] / v[0] for k, v in timing.items() if v[0]},
    }
    for rate in [float(r) for r in args.rates.split(",")]:
        for name, scorer in (("backend", remote), ("local", local)):
            compressor = Compressor(scorer, count_tokens=count)
            gold, ratio, seconds = 0, 0.0, 0.0
            for row in rows:
                started = time.perf_counter()
                result = await compressor.compress_parts(
                    nq_docs(row),
                    CompressOptions(rate=rate, mode="question_aware"),
                    instruction=NQ_INSTRUCTION,
                    question=nq_question(row),
                    context_separator="\n",
                )
                seconds += time.perf_counter() - started
                gold += has_answer(result.text, row["answers"])
                ratio += result.ratio
            results[f"rate {rate} / {name}"] = {
                "gold_present": f"{gold}/{len(rows)}",
                "achieved_ratio": round(ratio / len(rows), 4),
                "seconds_per_prompt": round(seconds / len(rows), 3),
            }
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    await backend.close()


if __name__ == "__main__":
    asyncio.run(main())
