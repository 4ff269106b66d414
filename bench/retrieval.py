"""Retrieval quality and speed on nq_retrieval (2,600 Wikipedia passages, NQ-open questions).

    python bench/retrieval.py                      # build, then dev and holdout, latency, memory
    python bench/retrieval.py --tune               # also the fusion grid on dev (how the defaults were picked)

Builds a real corpus (chunking, MiniLM embeddings, FAISS, BM25, atomic publish) in a temporary folder,
then runs every question through `Corpus.search` in three modes side by side: BM25 alone, dense alone,
hybrid (reciprocal rank fusion) and hybrid + MMR. Recall@k counts a question as found when its gold
passage's document is among the first k distinct documents; MRR is over the first 10. Latency: one
question at a time, the modes alternating per question, the embedding cache cleared before each call
(every query is embedded cold). Also: the in-prompt ranker on nq_multidoc20_synth (is the gold document
among the kept ones?).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
# The shared evaluation sets: PROMPTFOLD_EVAL_DIR, else shared/eval beside the clone.
EVAL = next(
    (
        p
        for p in (
            Path(os.environ.get("PROMPTFOLD_EVAL_DIR", "/nonexistent")),
            ROOT.parent / "shared" / "eval",
        )
        if p.is_dir()
    ),
    Path("/work/shared/eval"),
)
# name -> (SearchConfig fields, query precision); the first three are the ones the issue asks for.
MODES = {
    "BM25 alone": ({"mode": "lexical"}, "int8"),
    "dense alone (MiniLM)": ({"mode": "dense"}, "int8"),
    "hybrid (RRF)": ({"mode": "hybrid"}, "int8"),
    "hybrid + MMR 0.7": ({"mode": "hybrid", "mmr_lambda": 0.7}, "int8"),
    "dense alone, float32 query": ({"mode": "dense"}, "float32"),
    "hybrid, float32 query": ({"mode": "hybrid"}, "float32"),
}


def load_jsonl(path: Path) -> list[dict]:
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def ranked_documents(corpus, query: str, config) -> list[str]:
    """Distinct document ids, best first, from the top 30 passages."""
    seen: list[str] = []
    for passage in corpus.search(query, 30, config):
        if passage.document_id not in seen:
            seen.append(passage.document_id)
    return seen


def quality(corpus, queries: list[dict], config, embedder=None) -> dict[str, float]:
    if embedder is not None:
        corpus.embedder = embedder
    hits = {1: 0, 5: 0, 10: 0}
    reciprocal = 0.0
    for query in queries:
        ranking = ranked_documents(corpus, query["text"], config)[:10]
        gold = set(query["relevant_ids"])
        for k in hits:
            hits[k] += bool(gold & set(ranking[:k]))
        rank = next((i for i, d in enumerate(ranking, start=1) if d in gold), None)
        reciprocal += 1 / rank if rank else 0.0
    n = len(queries)
    return {
        "recall@1": hits[1] / n,
        "recall@5": hits[5] / n,
        "recall@10": hits[10] / n,
        "mrr@10": reciprocal / n,
    }


def latency(corpus, queries: list[dict], modes: dict) -> dict[str, dict[str, float]]:
    wall: dict[str, list[float]] = {name: [] for name in modes}
    cpu: dict[str, list[float]] = {name: [] for name in modes}
    for query in queries:
        for name, (config, embedder) in modes.items():
            corpus.embedder = embedder
            embedder.clear_cache()
            started, cpu_started = time.perf_counter(), time.process_time()
            corpus.search(query["text"], 5, config)
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    return {
        name: {
            "p50_ms": percentile(wall[name], 50) * 1000,
            "p99_ms": percentile(wall[name], 99) * 1000,
            "cpu_p50_ms": percentile(cpu[name], 50) * 1000,
            "n": len(wall[name]),
        }
        for name in modes
    }


def tune(corpus, queries: list[dict]) -> list[dict]:
    """The fusion grid on dev (candidates per retriever fixed at 50: 20 and 50 tied in a first grid)."""
    from middleware.retrieval.corpus import SearchConfig

    rows = []
    for rrf_k in (2, 5, 10, 20, 60):
        for weight in (1.0, 2.0, 3.0, 4.0, 6.0):
            config = SearchConfig(rrf_k=rrf_k, dense_weight=weight)
            rows.append({"rrf_k": rrf_k, "dense_weight": weight, **quality(corpus, queries, config)})
    return sorted(rows, key=lambda r: (-r["recall@5"], -r["mrr@10"]))


def tune_bm25(documents: list, queries: list[dict]) -> list[dict]:
    """BM25 constants on dev, over whole documents (title + text)."""
    from middleware.retrieval.lexical import BM25Params, LexicalIndex

    rows = []
    for k1 in (0.6, 0.9, 1.2, 1.5):
        for b in (0.4, 0.6, 0.75):
            index = LexicalIndex([f"{d.title}\n{d.text}" for d in documents], BM25Params(k1, b))
            found = 0
            for query in queries:
                top = {documents[i].id for i, _ in index.search(query["text"], 5)}
                found += bool(top & set(query["relevant_ids"]))
            rows.append({"k1": k1, "b": b, "recall@5": found / len(queries)})
    return sorted(rows, key=lambda r: -r["recall@5"])


def in_prompt(ranker, rows: list[dict]) -> dict[str, float]:
    kept = {1: 0, 3: 0, 5: 0}
    started = time.perf_counter()
    for row in rows:
        passages = [f"{c['title']}\n{c['text']}" for c in row["ctxs"]]
        scores = ranker.rank(row["question"], passages)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        for k in kept:
            kept[k] += row["gold_index"] in order[:k]
    n = len(rows)
    return {
        **{f"gold kept@{k}": v / n for k, v in kept.items()},
        "s/prompt": (time.perf_counter() - started) / n,
    }


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=EVAL / "nq_retrieval")
    parser.add_argument("--tune", action="store_true", help="print the fusion grid on dev")
    parser.add_argument("--latency-queries", type=int, default=300, help="holdout questions timed per mode")
    parser.add_argument("--multidoc-rows", type=int, default=100, help="nq_multidoc20_synth rows per split")
    parser.add_argument("--embed-threads", type=int, default=1, help="torch threads of the embedder")
    parser.add_argument("--markdown", type=Path, help="write the tables here (bench/results/retrieval.md)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()

    import faiss
    from rich.console import Console
    from rich.markdown import Markdown

    from middleware.embeddings import Embedder
    from middleware.retrieval.corpus import Corpus, DocumentInput, SearchConfig
    from middleware.retrieval.ranker import HybridRanker
    from middleware.tokens import default_token_counter

    faiss.omp_set_num_threads(1)
    console = Console()
    load_before = os.getloadavg()
    documents = [
        DocumentInput(d["_id"], d["text"], title=d["title"]) for d in load_jsonl(args.data / "corpus.jsonl")
    ]
    splits = {s: load_jsonl(args.data / f"{s}.jsonl") for s in ("dev", "holdout")}
    count = default_token_counter()
    embedder = Embedder(threads=args.embed_threads)  # a fresh one: nothing cached
    _ = embedder.dim  # load the model before the clock starts
    rss_model = rss_mb()

    folder = Path(tempfile.mkdtemp(prefix="promptfold-bench-"))
    started = time.perf_counter()
    corpus = Corpus.create(folder / "nq", "nq", embedder=embedder)
    corpus.add(documents, count)
    build_s = time.perf_counter() - started
    from middleware.retrieval.lexical import LexicalIndex

    started = time.perf_counter()
    LexicalIndex([f"{d.title}\n{d.text}" for d in documents])
    bm25_build_s = time.perf_counter() - started
    info = corpus.info()
    footprint = corpus.footprint()
    memory = {
        "faiss_index_mb": footprint["vector_index_bytes"] / 2**20,
        "bm25_index_mb": footprint["lexical_index_bytes"] / 2**20,
        "chunk_text_mb": footprint["chunk_text_bytes"] / 2**20,
        "process_rss_growth_mb": rss_mb() - rss_model,
        "process_rss_mb": rss_mb(),
    }

    embedders = {"int8": embedder, "float32": Embedder(threads=args.embed_threads, query_precision="float32")}
    modes = {
        name: (SearchConfig(**fields), embedders[precision]) for name, (fields, precision) in MODES.items()
    }
    results = {
        split: {name: quality(corpus, queries, *mode) for name, mode in modes.items()}
        for split, queries in splits.items()
    }
    timed = latency(corpus, splits["holdout"][: args.latency_queries], modes)
    corpus.embedder = embedder
    ranker = HybridRanker(embedder)
    multidoc = {
        split: in_prompt(
            ranker, load_jsonl(EVAL / "nq_multidoc20_synth" / f"{split}.jsonl")[: args.multidoc_rows]
        )
        for split in ("dev", "holdout")
    }
    grid = tune(corpus, splits["dev"]) if args.tune else []
    bm25_grid = tune_bm25(documents, splits["dev"]) if args.tune else []
    load_after = os.getloadavg()

    figures = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "corpus": {**info, "documents_in": len(documents)},
        "build": {
            "seconds": build_s,
            "docs_per_s": len(documents) / build_s,
            "bm25_only_seconds": bm25_build_s,
        },
        "memory": memory,
        "quality": results,
        "latency": timed,
        "in_prompt": multidoc,
        "query_encoder": embedder.query_backend,
        "tune": grid[:10],
        "tune_bm25": bm25_grid,
        "load_average": {"before": load_before, "after": load_after},
        "cores": os.cpu_count(),
    }
    markdown = render(figures, " ".join(["python", *sys.argv]))
    console.print(Markdown(markdown))
    if args.markdown:
        args.markdown.write_text(markdown)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def render(f: dict, command: str) -> str:
    lines = [
        "# Retrieval on nq_retrieval (2,600 passages; dev 531 / holdout 2,124 questions)",
        "",
        f"Run {f['date']} with `{command}` on the shared {f['cores']}-core CPU machine (no GPU); load average "
        f"{f['load_average']['before'][0]:.1f} before, {f['load_average']['after'][0]:.1f} after: timings were taken "
        "while other engineers' jobs ran, so they are noisy upper bounds; compare rows, not absolute values.",
        "",
        f"Corpus: {f['corpus']['documents']} documents -> {f['corpus']['chunks']} chunks ({f['corpus']['chunking']['max_tokens']}-token "
        f"budget, {f['corpus']['chunking']['overlap_tokens']}-token overlap, SmolLM2 tokens), embeddings "
        f"{f['corpus']['embedding_model']} (384-d, unit), FAISS index `{f['corpus']['index']}` (IndexIDMap2 over IndexFlatIP: "
        "exact; HNSW only past 20,000 vectors), BM25 = bm25s (k1 1.2, b 0.6, English stop words, Snowball stems). "
        f"Queries are embedded by `{f['query_encoder']}` (MiniLM exported to ONNX, int8 weights, one thread) "
        "unless the row says float32 (the PyTorch model as loaded); documents are always float32. "
        "Fusion and BM25 constants were chosen on dev only (`--tune`); holdout is reported, never tuned on.",
        "",
    ]
    for split in ("dev", "holdout"):
        lines += [
            f"## Quality, {split}",
            "",
            "| retriever | recall@1 | recall@5 | recall@10 | MRR@10 |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, q in f["quality"][split].items():
            lines.append(
                f"| {name} | {q['recall@1']:.3f} | {q['recall@5']:.3f} | {q['recall@10']:.3f} | {q['mrr@10']:.3f} |"
            )
        lines.append("")
    lines += [
        "## Query latency (one question at a time, cold query embedding, top 5, modes alternating per question)",
        "",
        "| retriever | p50 ms | p99 ms | CPU ms p50 | questions |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, t in f["latency"].items():
        lines.append(f"| {name} | {t['p50_ms']:.2f} | {t['p99_ms']:.2f} | {t['cpu_p50_ms']:.2f} | {t['n']} |")
    b, m = f["build"], f["memory"]
    lines += [
        "",
        "## Build and memory",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| full build (chunk, embed, FAISS, BM25, atomic publish) | {b['seconds']:.1f} s = **{b['docs_per_s']:.1f} docs/s** |",
        f"| BM25 index alone, same documents | {b['bm25_only_seconds']:.2f} s ({f['corpus']['documents_in'] / b['bm25_only_seconds']:.0f} docs/s) |",
        f"| FAISS index | {m['faiss_index_mb']:.2f} MiB |",
        f"| BM25 index (score arrays) | {m['bm25_index_mb']:.2f} MiB |",
        f"| chunk texts | {m['chunk_text_mb']:.2f} MiB |",
        f"| process RSS growth while building (model already loaded) | {m['process_rss_growth_mb']:.0f} MiB (RSS {m['process_rss_mb']:.0f} MiB) |",
        "",
        "## In-prompt selection (nq_multidoc20_synth, 20 documents per prompt, HybridRanker)",
        "",
        "| split | gold kept @1 | @3 | @5 | s per prompt |",
        "| --- | --- | --- | --- | --- |",
    ]
    for split, r in f["in_prompt"].items():
        lines.append(
            f"| {split} | {r['gold kept@1']:.3f} | {r['gold kept@3']:.3f} | {r['gold kept@5']:.3f} | {r['s/prompt']:.2f} |"
        )
    if f["tune"]:
        lines += [
            "",
            "## Fusion grid on dev (best 10 by recall@5, then MRR)",
            "",
            "| rrf k | dense weight | R@1 | R@5 | R@10 | MRR |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in f["tune"]:
            lines.append(
                f"| {r['rrf_k']} | {r['dense_weight']} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} | {r['mrr@10']:.3f} |"
            )
    if f.get("tune_bm25"):
        lines += [
            "",
            "## BM25 constants on dev (whole documents, recall@5)",
            "",
            "| k1 | b | R@5 |",
            "| --- | --- | --- |",
        ]
        for r in f["tune_bm25"]:
            lines.append(f"| {r['k1']} | {r['b']} | {r['recall@5']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
