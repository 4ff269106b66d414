#!/bin/bash
# Gists against a real SGLang server (GPU machine, after the SGLang recipe in ../shared/gpu/sglang/README.md
# staged /root/site and /root/model):
#   bash bench/gpu/gist_sglang.sh
# Starts server A (radix cache: the full prefix is cached, the realistic competitor) and server B
# (--disable-radix-cache: it takes input_embeds), then runs bench/gist.py (needs shared/eval/gsm8k in the tree): queries and answers from A,
# training on CUDA, the gist's greedy answers and time to first token on B, the full prefix on A (cached)
# and on B (computed every time). About 4-5 minutes. Results land in $OUT (gist_sglang.md, .json, logs).
# Locally, against the embedded engine on the CPU (slow: about an hour):
#   python bench/gist.py --out bench/results/gist_local.md
set -u
source bench/gpu/prelude.sh
rc=0
launch A 30000 /root/model || rc=1
SPID_A=$SPID
launch B 30001 /root/model --disable-radix-cache || rc=1
SPID_B=$SPID
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee /root/stage/logs/gpu.txt

if [ $rc = 0 ]; then
  timeout 400 python3 bench/gist.py --backend sglang://127.0.0.1:30000 --embeds-backend sglang://127.0.0.1:30001 \
    --device cuda --ks 4,16,64 --train-queries 256 --eval-queries 48 --answer-tokens 128 --rows 64 \
    --steps 250 --batch-size 16 --eval-every 25 --ttft-repeats 30 --ttft-concurrency 32 \
    --gsm8k-dir shared/eval/gsm8k --gist-dir /root/stage/gists --out "$OUT/gist_sglang.md" --json "$OUT/gist_sglang.json" 2>&1 | tee "$OUT/gist_sglang.log"
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
SPID=$SPID_A; stop; SPID=$SPID_B; stop
tar -czf "$OUT/logs.tgz" -C /root/stage/logs . 2>/dev/null
tar -czf "$OUT/gists.tgz" -C /root/stage gists 2>/dev/null
echo "== exit $rc"
exit $rc
