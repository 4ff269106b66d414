#!/bin/bash
# Batch rewrite throughput on the GPU machine (after the SGLang recipe in ../shared/gpu/sglang/README.md
# staged /root/site and /root/model; needs shared/eval/gsm8k copied into the tree):
#   bash bench/gpu/batch_gpu.sh
# Runs bench/batch.py twice on GSM8K dev: the local scorer on CUDA, then SGLang's prompt logprobs
# (--scorer backend) from one server with its radix cache. About 3 minutes. Results land in $OUT.
set -u
source bench/gpu/prelude.sh
export PROMPTFOLD_CAUSAL_LM=/root/model
rc=0
launch A 30000 /root/model || rc=1
echo "== local scorer on cuda"
PROMPTFOLD_DEVICE=cuda timeout 240 python3 bench/batch.py --input shared/eval/gsm8k/dev.jsonl --batch-sizes 1,16 \
  --json "$OUT/batch_cuda.json" --markdown "$OUT/batch_cuda.md" 2>&1 | tail -15
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
if [ $rc = 0 ] || curl -sf localhost:30000/health >/dev/null; then
  echo "== SGLang prompt logprobs"
  timeout 240 python3 bench/batch.py --input shared/eval/gsm8k/dev.jsonl --backend sglang://127.0.0.1:30000 \
    --scorer backend --batch-sizes 1,16 --json "$OUT/batch_sglang.json" --markdown "$OUT/batch_sglang.md" 2>&1 | tail -15
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
stop
echo "== exit $rc"
exit $rc
