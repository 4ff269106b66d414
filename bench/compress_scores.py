"""Which token scores keep the answer when one passage is pruned for a question (dev only).

    python bench/compress_scores.py                      # 60 nq_retrieval dev questions, rates 0.5 and 0.25
    python bench/compress_scores.py --rows 20 --rates 0.3

With a single passage there is no coarse step: question-aware compression is fine pruning alone, and
what decides which words stay is the score. For each nq_retrieval dev question, its relevant passage is
compressed question-aware with each scoring scheme (`self`: -log p(token | text before), ignoring the
question; `conditional`: the same with the question in front; `contrastive`: LongLLMLingua's
log p(token | question, ...) - log p(token | ...)); a row counts when a gold answer (normalised) is still
a substring of the compressed passage. Rows whose passage does not contain the answer are skipped.

A second table does the same for documents listed one per line in one chat message (the first 10
documents of nq_multidoc20_synth dev rows, LongLLMLingua's instruction and question around them),
question-aware at rate 0.5 with the default scores. `--no-finer` is the ablation: the main passage is not
cut into lines or sentences before ranking (the behaviour before that step existed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.compress import EVAL, has_answer, read_jsonl

SCHEMES = ("self", "conditional", "contrastive")


async def run(args: argparse.Namespace) -> dict:
    from middleware.compress import CompressOptions, Compressor, LocalScorer

    corpus = {}
    for line in (EVAL / "nq_retrieval" / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        corpus[item["_id"]] = (item.get("title", "") + "\n" + item["text"]).strip()
    rows = []
    for item in read_jsonl(EVAL / "nq_retrieval" / "dev.jsonl", 10**9):
        passage = corpus.get(item["relevant_ids"][0], "")
        if has_answer(passage, item["answers"]):
            rows.append((item["text"], passage, item["answers"]))
        if len(rows) == args.rows:
            break
    if args.no_finer:  # ablation: rank the passages as they come
        import middleware.compress.compressor as compressor_module

        compressor_module.finer_passages = lambda document: None  # type: ignore[assignment]
    compressor = Compressor(LocalScorer())
    kept = {(rate, s): 0 for rate in args.rates for s in SCHEMES}
    ratios: dict[tuple[float, str], list[float]] = {key: [] for key in kept}
    for number, (question, passage, answers) in enumerate(rows):
        for rate in args.rates:
            for scheme in SCHEMES:
                options = CompressOptions(rate=rate, question=question, scores=scheme)
                result = await compressor.compress_text(passage, options)
                kept[(rate, scheme)] += has_answer(result.text, answers)
                ratios[(rate, scheme)].append(result.ratio)
        if (number + 1) % 10 == 0:
            print(f"  {number + 1}/{len(rows)}", flush=True)
    multidoc = await multidoc_rows(compressor, args.multidoc_rows)
    return {
        "finer": not args.no_finer,
        "multidoc": multidoc,
        "rows": len(rows),
        "results": [
            {
                "rate": rate,
                "scores": scheme,
                "gold_kept": kept[(rate, scheme)],
                "mean_ratio": round(sum(ratios[(rate, scheme)]) / len(rows), 3),
            }
            for rate in args.rates
            for scheme in SCHEMES
        ],
    }


async def multidoc_rows(compressor: object, count: int) -> dict:
    from bench.compress import NQ_INSTRUCTION, nq_docs, nq_question
    from middleware.compress import CompressOptions

    kept = present = 0
    ratios = []
    for row in read_jsonl(EVAL / "nq_multidoc20_synth" / "dev.jsonl", count):
        content = NQ_INSTRUCTION + "\n\n" + "\n".join(nq_docs(row)[:10]) + "\n\n" + nq_question(row)
        if not has_answer(content, row["answers"]):
            continue  # the gold document is not among the first 10
        present += 1
        options = CompressOptions(rate=0.5, mode="question_aware")
        result = await compressor.compress_messages([{"role": "user", "content": content}], options)  # type: ignore[attr-defined]
        kept += has_answer(result.messages[0]["content"], row["answers"])
        ratios.append(result.ratio)
    return {"rows": present, "gold_kept": kept, "mean_ratio": round(sum(ratios) / max(len(ratios), 1), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--rates", default="0.5,0.25")
    parser.add_argument("--multidoc-rows", type=int, default=16, help="nq_multidoc20_synth dev rows read")
    parser.add_argument("--no-finer", action="store_true", help="ablation: do not cut the main passage")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    result = asyncio.run(run(args))
    print(f"\n{result['rows']} nq_retrieval dev questions, one relevant passage each, question-aware\n")
    print("| rate | scores | gold answer kept | mean achieved ratio |\n|---|---|---|---|")
    for item in result["results"]:
        print(
            f"| {item['rate']} | {item['scores']} | {item['gold_kept']}/{result['rows']} | {item['mean_ratio']} |"
        )
    multi = result["multidoc"]
    print(
        f"\n10 NQ documents one per line in a chat message, rate 0.5: gold kept {multi['gold_kept']}/{multi['rows']}"
        f" (mean ratio {multi['mean_ratio']}); cutting the main passage: {result['finer']}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
