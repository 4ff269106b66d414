"""promptfold's compression throughput on compress.md's tasks, for two checkouts side by side.

    python bench/compress_speed.py --baseline ../main [--repeats 3]

The GSM8K 8-shot prefix (plain) and the first `--nq-rows` nq_multidoc20_synth dev rows (question-aware,
parts), at rates 0.5 and 0.25, compressed by this checkout and by `--baseline` in turns (one subprocess
each, models loaded once), so both see the same load on a shared machine. Prints original tokens per
second of compression for each (model load excluded; the median of `--repeats` rounds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])  # that checkout's middleware (and its bench/compress.py)
from bench.compress import EVAL, GSM8K_INSTRUCTION, NQ_INSTRUCTION, nq_docs, nq_question, read_jsonl
from middleware.compress import CompressOptions, Compressor, LocalScorer
compressor = Compressor(LocalScorer())
fewshot = (EVAL / "gsm8k" / "fewshot_8shot_cot.txt").read_text(encoding="utf-8")
rows = read_jsonl(EVAL / "nq_multidoc20_synth" / "dev.jsonl", int(sys.argv[2]))
tasks = []
for rate in (0.5, 0.25):
    tasks.append(("gsm8k", fewshot.split("\n\n"), GSM8K_INSTRUCTION, "", CompressOptions(rate=rate), None))
    for row in rows:
        options = CompressOptions(rate=rate, question=nq_question(row))
        tasks.append(("nq", nq_docs(row), NQ_INSTRUCTION, nq_question(row), options, "\n"))
asyncio.run(compressor.compress_parts(["warm up", "the ranker"], CompressOptions(rate=0.5, question="q?")))
for line in sys.stdin:
    out = {"gsm8k": [0, 0.0], "nq": [0, 0.0]}
    for name, context, instruction, question, options, sep in tasks:
        started = time.perf_counter()
        result = asyncio.run(compressor.compress_parts(
            context, options, instruction=instruction, question=question, context_separator=sep))
        out[name][0] += result.original_tokens
        out[name][1] += time.perf_counter() - started
    print(json.dumps(out), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="another checkout of the repository")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nq-rows", type=int, default=4)
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parents[1])
    checkouts = {"this": here, "baseline": str(Path(args.baseline).resolve())}
    workers = {
        name: subprocess.Popen(
            [sys.executable, "-c", WORKER, path, str(args.nq_rows)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, path in checkouts.items()
    }
    speeds: dict[str, dict[str, list[float]]] = {name: {"gsm8k": [], "nq": []} for name in workers}
    for round_ in range(args.repeats):
        order = list(workers) if round_ % 2 == 0 else list(reversed(workers))
        for name in order:
            worker = workers[name]
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
            result = json.loads(worker.stdout.readline())
            for task, (tokens, seconds) in result.items():
                speeds[name][task].append(tokens / seconds)
            print(name, {t: round(v[-1]) for t, v in speeds[name].items()}, flush=True)
    for worker in workers.values():
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait(timeout=60)
    for name, by_task in speeds.items():
        print(f"{name}: " + ", ".join(f"{t} {statistics.median(v):.0f} tokens/s" for t, v in by_task.items()))


if __name__ == "__main__":
    main()
