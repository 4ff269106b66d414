"""`python -m tests.batch_support.run_job IN OUT DELAY`: the batch job with the slow fake, for kill tests."""

import sys
from pathlib import Path

from middleware.batch import JobSpec, run_job
from middleware.batch.fake_rewriter import FakeRewriter

if __name__ == "__main__":
    source, target, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    run_job(JobSpec(source, target, field="prompt", batch_size=4), FakeRewriter(delay_s=delay))
