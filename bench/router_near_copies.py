"""Are the router's own questions near-copies of the evaluation questions? (MiniLM cosine, texts unseen)

    python bench/router_near_copies.py          # max cosine of our train and dev questions to the eval sets

The evaluation questions (`../shared/eval/sot/{vicuna,wizardlm}/router.csv`) are read only to embed
them: this script never prints or returns their text, only, for each of our questions, the largest
cosine similarity to any of them. Our questions above LIMIT are listed (ours only) so they can be
replaced; the exit status is 1 when there are any.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from middleware.organize.router import DATA_DIR  # noqa: E402
from middleware.organize.router.train import read_questions  # noqa: E402

LIMIT = 0.9
SOT_DIRS = [ROOT.parent / "shared/eval/sot", Path("/work/shared/eval/sot")]
OURS = ("router_train.csv", "router_dev.csv")


def eval_embeddings(sot_dir: Path) -> np.ndarray:
    from middleware.embeddings import shared_embedder

    texts: list[str] = []
    for name in ("vicuna", "wizardlm"):
        with open(sot_dir / name / "router.csv", newline="", encoding="utf-8") as handle:
            texts += [row["request"].strip() for row in csv.DictReader(handle, delimiter=";")]
    return np.asarray(shared_embedder().embed(texts))


def main() -> None:
    from middleware.embeddings import shared_embedder

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sot-dir", type=Path, default=next((d for d in SOT_DIRS if d.is_dir()), SOT_DIRS[0])
    )
    args = parser.parse_args()
    theirs = eval_embeddings(args.sot_dir)
    too_close = 0
    for name in OURS:
        questions = [q.question for q in read_questions(DATA_DIR / name)]
        nearest = (np.asarray(shared_embedder().embed(questions)) @ theirs.T).max(axis=1)
        print(f"{name}: {len(questions)} questions, max cosine to any eval question {nearest.max():.3f}")
        for question, cosine in zip(questions, nearest, strict=True):
            if cosine > LIMIT:
                too_close += 1
                print(f"  {cosine:.3f} (ours) {question}")
    sys.exit(1 if too_close else 0)


if __name__ == "__main__":
    main()
