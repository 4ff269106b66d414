"""The checkpoint of a batch job: how many input rows are durably in the output, and where it ends.

Written atomically (temporary file, fsync, rename, fsync of the folder), always after the output rows it
counts. On resume the output is cut back to the recorded position, so rows written after the last
checkpoint (a batch that was in flight when the process was killed) are dropped and written once more:
every input row ends up in the output exactly once.

It also records the rows whose rewrite had begun (`in_flight`), saved before the rewrite starts. If the
process dies (a kill, a crash in native code, an out-of-memory kill) the next run cannot tell an innocent
kill from a row that crashes the process, so it rewrites those rows one at a time (`isolating`); if it dies
again with one isolated row in flight, that row is the cause, and the run after writes it with its error
instead of crashing on it forever.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Checkpoint:
    job: str  # hash of the input file and the job's options: a resume must match it
    rows_done: int = 0
    position: int = 0  # output bytes (JSONL/CSV) or parts (Parquet) that hold rows_done rows
    ok: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0  # work time over all runs of the job
    complete: bool = False
    runs: int = 1
    in_flight: int = 0  # rows after rows_done whose rewrite had begun
    isolating: bool = False  # those rows are rewritten one at a time, after a run died over them
    errors: dict[str, int] = field(default_factory=dict)  # failed rows by reason (bounded, see count_error)
    extra: dict[str, Any] = field(default_factory=dict)

    def count_error(self, reason: str, kinds: int = 20) -> None:
        """Count a failed row under its reason: the first 120 characters, at most `kinds` distinct ones."""
        key = reason[:120]
        if key not in self.errors and len(self.errors) >= kinds:
            key = "other"
        self.errors[key] = self.errors.get(key, 0) + 1

    @staticmethod
    def path_for(output: Path) -> Path:
        return output.with_name(output.name + ".promptfold-checkpoint.json")

    @classmethod
    def load(cls, output: Path) -> Checkpoint | None:
        path = cls.path_for(output)
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))

    def save(self, output: Path) -> None:
        path = self.path_for(output)
        temporary = path.with_suffix(".tmp")
        with temporary.open("w") as handle:
            json.dump(asdict(self), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def job_hash(input_path: Path, options: dict[str, Any]) -> str:
    """Identifies a job: the input file (size and modification time) and every option that shapes rows."""
    stat = input_path.stat()
    identity = {
        "input": str(input_path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        **options,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
