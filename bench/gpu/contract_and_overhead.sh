#!/bin/bash
# GPU machine, after the SGLang recipe (../shared/gpu/sglang/README.md) staged /root/site and /root/model:
#   bash bench/gpu/contract_and_overhead.sh
# Starts server A (radix cache) and server B (--disable-radix-cache, for input_embeds), runs the backend
# contract suite against them, the proxy-overhead bench against A, and a curl smoke test of
# `promptfold serve --backend sglang://...`. Everything it prints also lands in $OUT.
set -u
source bench/gpu/prelude.sh
export PROMPTFOLD_CONTRACT_MODEL_DIR=/root/model
rc=0
launch A 30000 /root/model || rc=1
SPID_A=$SPID
launch B 30001 /root/model --disable-radix-cache || rc=1
SPID_B=$SPID
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee /root/stage/logs/gpu.txt

echo "== contract suite"
python3 -m pytest tests/contract -v -p no:cacheprovider --backend sglang://127.0.0.1:30000 \
  --embeds-backend sglang://127.0.0.1:30001 --junitxml="$OUT/contract_junit.xml" 2>&1 | tee "$OUT/contract.log"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1

echo "== proxy overhead"
python3 bench/proxy_overhead.py --backend sglang://127.0.0.1:30000 --requests 100 --concurrent-requests 64 \
  --max-tokens 32 --json "$OUT/proxy_overhead_sglang.json" 2>&1 | tee "$OUT/proxy_overhead.log"

echo "== promptfold serve --backend sglang smoke"
python3 -m middleware.cli serve --backend sglang://127.0.0.1:30000 --port 8000 > /root/stage/logs/proxy_serve.log 2>&1 &
PROXY=$!
for i in $(seq 1 60); do curl -sf localhost:8000/health >/dev/null && break; sleep 1; done
{
  curl -s localhost:8000/health; echo
  curl -s localhost:8000/v1/models; echo
  curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \
    -d '{"model": "default", "messages": [{"role": "user", "content": "What is 2+2?"}], "temperature": 0, "max_tokens": 32}'; echo
  curl -s -N localhost:8000/v1/chat/completions -H 'content-type: application/json' \
    -d '{"model": "default", "messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 12, "stream": true}'
} 2>&1 | tee "$OUT/smoke.log"
kill $PROXY
SPID=$SPID_A; stop; SPID=$SPID_B; stop
# at most 8 files come back: the server logs travel as one archive
tar -czf "$OUT/logs.tgz" -C /root/stage/logs .
echo "== exit $rc"
exit $rc
