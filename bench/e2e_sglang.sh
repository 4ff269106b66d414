#!/bin/bash
# The whole pipeline end to end on real SGLang (GPU machine, after the recipe in ../shared/gpu/sglang/README.md
# staged /root/site and /root/model), in one call of at most 10 minutes (about 5-6):
#   bash bench/e2e_sglang.sh
# Before the call, on the workstation (untracked copies that travel with the tree, about 3 MB):
#   mkdir -p shared/eval/nq_multidoc20_synth shared/eval/nq_retrieval
#   cp -r /work/shared/eval/sot shared/eval/
#   cp /work/shared/eval/nq_multidoc20_synth/dev.jsonl shared/eval/nq_multidoc20_synth/
#   cp /work/shared/eval/nq_retrieval/{dev,corpus}.jsonl shared/eval/nq_retrieval/
# Carry .whl (faiss-cpu, bm25s, python-multipart, pydantic-settings, python-dotenv, jiter) and MiniLM at
# /root/stage/minilm (any sentence-transformers folder; converted to float32 here for the CPU).
# Starts SGLang A :30000 (radix cache) and B :30001 (--disable-radix-cache, takes input_embeds), a proxy on
# each (:8000 on A, :8001 on B for gists), runs bench/e2e_sglang.py (plain, streaming, compression with the
# BackendScorer, retrieval, gist, SoT/pipelined; every request also sent straight to SGLang), then
# bench/gpu/compress_backend_scorer.py if time is left. Results and logs land in $OUT.
set -u
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
source bench/gpu/prelude.sh
for f in sot/vicuna/router.csv nq_multidoc20_synth/dev.jsonl nq_retrieval/dev.jsonl nq_retrieval/corpus.jsonl; do
  [ -f "shared/eval/$f" ] || echo "!! shared/eval/$f is missing: the path that needs it will fail (see the header)"
done
L=/root/stage/logs; mkdir -p $L
export PROMPTFOLD_CAUSAL_LM=/root/model PROMPTFOLD_CACHE_DIR=/root/stage/pf-cache
if [ -d /root/stage/minilm ]; then
  # float16 weights are slow on the CPU, where the proxy embeds: keep a float32 copy
  if timeout 120 python3 -c "from sentence_transformers import SentenceTransformer as S; S('/root/stage/minilm', device='cpu').float().save('/tmp/minilm32')" >$L/minilm32.log 2>&1; then
    export PROMPTFOLD_EMBEDDER=/tmp/minilm32
  else
    echo "!! float32 copy of MiniLM failed (see minilm32.log); using /root/stage/minilm as it is"
    export PROMPTFOLD_EMBEDDER=/root/stage/minilm
  fi
else
  echo "!! /root/stage/minilm is missing: retrieval, question-aware compression and the router will fail"
fi
rc=0
launch A 30000 /root/model || rc=1
SPID_A=$SPID
launch B 30001 /root/model --disable-radix-cache || rc=1
SPID_B=$SPID
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee $L/gpu.txt
echo "== servers up after $(elapsed) s"

PROMPTFOLD_DATA_DIR=/root/stage/pf-a python3 -m middleware.cli serve --backend sglang://127.0.0.1:30000 \
  --port 8000 --log-level warning > $L/proxy_A.log 2>&1 &
PROXY_A=$!
PROMPTFOLD_DATA_DIR=/root/stage/pf-b python3 -m middleware.cli serve --backend sglang://127.0.0.1:30001 \
  --port 8001 --device cuda --log-level warning > $L/proxy_B.log 2>&1 &
PROXY_B=$!
for port in 8000 8001; do
  for i in $(seq 1 90); do curl -sf localhost:$port/health >/dev/null && break; sleep 1; done
  curl -s localhost:$port/health || { echo "!! proxy :$port not healthy"; rc=1; }; echo
done
echo "== proxies up after $(elapsed) s"

if [ $rc = 0 ]; then
  timeout 420 python3 bench/e2e_sglang.py --proxy http://127.0.0.1:8000 --direct http://127.0.0.1:30000 \
    --gist-proxy http://127.0.0.1:8001 --gist-direct http://127.0.0.1:30001 --eval-dir shared/eval \
    --out "$OUT/e2e_sglang.md" --json "$OUT/e2e_sglang.json" 2>&1 | tee "$OUT/e2e_sglang.log"
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
kill $PROXY_A $PROXY_B 2>/dev/null

left=$(( 560 - $(elapsed) ))
if [ $left -gt 90 ]; then
  echo "== compress_backend_scorer (${left} s left)"
  timeout $(( left - 30 )) python3 bench/gpu/compress_backend_scorer.py --backend sglang://127.0.0.1:30000 \
    --model /root/model --device cuda --rows 10 --json "$OUT/compress_scorers.json" 2>&1 | tee "$OUT/compress_scorers.log"
  [ "${PIPESTATUS[0]}" = 0 ] || echo "!! compress_backend_scorer failed or ran out of time"
else
  echo "== compress_backend_scorer skipped: only ${left} s left"
fi
SPID=$SPID_A; stop; SPID=$SPID_B; stop
tar -czf "$OUT/logs.tgz" -C $L . 2>/dev/null
echo "== total $(elapsed) s"
echo "== exit $rc"
exit $rc
