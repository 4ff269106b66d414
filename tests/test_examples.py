"""The scripts in examples/ run as they are and print what their docstrings promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_sdk_chat_example_answers_streams_and_compresses() -> None:
    out = run_example("sdk_chat.py")
    assert "answer: The capital of France is Paris." in out
    assert "compressed 98 -> 49 tokens (ratio 0.50)" in out
    assert "compressed chat: 110 -> 55 tokens; answer:" in out
    assert "1987" in out.split("compressed chat:")[1]  # the sentence with the answer was kept


def test_batch_rewrite_example_writes_every_row(tmp_path: Path) -> None:
    out = run_example("batch_rewrite.py", str(tmp_path))
    lines = (tmp_path / "folded.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "3 None 'prompt' is empty" in out
    assert (tmp_path / "folded.jsonl.ratios.png").exists()


def test_wrap_openai_example_runs_the_pipeline_in_front_of_a_server(proxy_url: str) -> None:
    out = run_example("wrap_openai.py", env={"OPENAI_BASE_URL": proxy_url})
    assert "stage compress: applied=True" in out and "stream:" in out
