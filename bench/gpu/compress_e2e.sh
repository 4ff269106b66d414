#!/bin/bash
# Compression end to end on an 8B-shaped SGLang server (GPU machine, after the recipe in
# ../shared/gpu/sglang/README.md staged /root/site, /root/tmpl and /root/model), in one call of ~9 minutes:
#   bash bench/gpu/compress_e2e.sh [PARTS]          (PARTS: ttft,compress,load,replay by default;
#                                                    'server' only starts the 8B-shaped server)
# Carry .whl (pydantic-settings, python-dotenv, bm25s, PyStemmer, jiter, prometheus-client, rich and its
# deps) and .carry3/minilm (MiniLM in float16), and copy shared/eval/nq_multidoc20_synth/dev.jsonl into the
# tree. The server: Llama-3-8B dimensions with SmolLM2's tokenizer and --load-format dummy (real speed,
# meaningless text; README 4b), started with setsid so that a next call within 30 s can reuse it. The proxy:
# `promptfold serve --backend sglang://... --device cuda` with the real SmolLM2 (/root/model) as the scorer
# and MiniLM on the GPU for question-aware ranking. Results land in $OUT (compress_gpu.json/.md, logs).
set -u
source bench/gpu/prelude.sh
PARTS=${1:-ttft,compress,load,replay}
L=/root/stage/logs; mkdir -p $L
export PROMPTFOLD_CAUSAL_LM=/root/model PROMPTFOLD_DATA_DIR=/tmp/pf-data
# the 32k-token row is over the proxy's default bounds (32,768 prompt / 16,384 compressed tokens)
export PROMPTFOLD_MAX_PROMPT_TOKENS=40000 PROMPTFOLD_MAX_COMPRESS_TOKENS=40000
if [ ! -d /root/big8b ]; then
  cp -r /root/tmpl /root/big8b
  python3 - <<'PY'
import json
path = "/root/big8b/config.json"
config = json.load(open(path))
config.update(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
              num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rope_theta=500000.0,
              tie_word_embeddings=False)
json.dump(config, open(path, "w"), indent=1)
PY
fi
rc=0
if curl -sf -m 5 localhost:30002/health_generate >/dev/null; then
  echo "== B8 already running"
else
  launch B8 30002 /root/big8b --load-format dummy --context-length 40960 || rc=1
fi
[ "$PARTS" = server ] && { echo "== server only: exit $rc"; exit $rc; }  # a staging call starts it early
python3 -m middleware.cli serve --backend sglang://127.0.0.1:30002 --device cuda --port 8000 \
  --compress-workers 8 >$L/proxy.log 2>&1 &
PROXY=$!
for i in $(seq 1 120); do curl -sf -m 2 localhost:8000/health >/dev/null && break; sleep 1; done
curl -s localhost:8000/health | head -c 400; echo
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
timeout ${BENCH_S:-420} python3 bench/compress_e2e.py --proxy http://127.0.0.1:8000 --direct http://127.0.0.1:30002 \
  --sizes 2000,4000,8000,16000,32000 --reps 3 --parts "$PARTS" \
  --setup "SGLang 0.5.17, Llama-3-8B-shaped (dummy weights), one H200, --mem-fraction-static 0.25, radix cache on; proxy: promptfold serve --device cuda, SmolLM2-135M scorer and MiniLM on the GPU" \
  --json $OUT/compress_gpu.json --markdown $OUT/compress_gpu.md 2>$L/bench.log || rc=1
tail -30 $L/bench.log
kill $PROXY 2>/dev/null
cp $L/proxy.log $L/bench.log $L/server_B8.log $OUT/ 2>/dev/null
echo "== exit $rc"
exit $rc
