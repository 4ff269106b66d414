"""Compress every prompt of a dataset, resumably: the same job as `promptfold batch rewrite`.

    python examples/batch_rewrite.py [FOLDER]     # writes FOLDER/prompts.jsonl and FOLDER/folded.jsonl

The shell equivalent:
    promptfold batch rewrite prompts.jsonl -o folded.jsonl --field prompt --compress rate=0.5
"""

import json
import sys
import tempfile
from pathlib import Path

from middleware.cli import main

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="promptfold-"))
folder.mkdir(parents=True, exist_ok=True)
source, target = folder / "prompts.jsonl", folder / "folded.jsonl"
rows = [
    {
        "id": 1,
        "prompt": "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
        "clips in May. How many clips did Natalia sell altogether in April and May? Natalia sold 48/2 = 24 "
        "clips in May. Natalia sold 48+24 = 72 clips altogether in April and May. The answer is 72.",
    },
    {
        "id": 2,
        "prompt": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
        "babysitting. How much did she earn? Weng earns 12/60 = $0.2 per minute. Working 50 minutes, she "
        "earned 0.2 x 50 = $10. The answer is 10.",
    },
    {"id": 3, "prompt": ""},  # an empty prompt: written with its error, counted, the run goes on
]
source.write_text("".join(json.dumps(row) + "\n" for row in rows))
code = main(["batch", "rewrite", str(source), "-o", str(target), "--compress", "rate=0.5", "--overwrite"])
for line in target.read_text().splitlines():
    row = json.loads(line)
    print(row["id"], row["promptfold_ratio"], row["promptfold_error"] or row["promptfold_prompt"])
print("summary:", (folder / "folded.jsonl.summary.json").read_text()[:200].replace("\n", " "), "...")
sys.exit(code)
