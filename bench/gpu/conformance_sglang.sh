#!/bin/bash
# GPU machine, after the SGLang recipe (../shared/gpu/sglang/README.md) staged /root/site and /root/model:
#   bash bench/gpu/conformance_sglang.sh
# Starts SGLang with xgrammar (SGL_EXTRA, below), `promptfold serve --backend sglang://...` in front of it,
# and runs tests/conformance against the proxy. The summary lands in $OUT/conformance_sglang.{md,json}
# (commit the .md as bench/results/conformance_sglang.md). The client libraries (openai 3.x, LangChain,
# LiteLLM and what they need beyond the machine) travel as wheels in .whl2/ (prelude.sh installs them into
# /root/stage/pf-clients, first on the test process's path only); the proxy's own in .whl/, MiniLM (for
# /v1/embeddings) in .carry3/minilm, or already installed by an earlier call of the session.
set -u
source bench/gpu/prelude.sh
# xgrammar for response_format / tool calls; compact JSON (no free whitespace), as the embedded engine
# writes it, so that a 135M model cannot wander off into newlines inside a constrained object.
export SGL_EXTRA=${SGL_EXTRA:---grammar-backend xgrammar --constrained-json-disable-any-whitespace}
rc=0
launch A 30000 /root/model || rc=1
python3 -m middleware.cli serve --backend sglang://127.0.0.1:30000 --port 8000 > /root/stage/logs/proxy.log 2>&1 &
PROXY=$!
for i in $(seq 1 120); do curl -sf localhost:8000/health >/dev/null && break; sleep 1; done
curl -s localhost:8000/health | tee "$OUT/health.json"; echo
PYTHONPATH=/root/stage/pf-clients:$PYTHONPATH LITELLM_LOCAL_MODEL_COST_MAP=True \
PROMPTFOLD_CONFORMANCE_BASE_URL=http://127.0.0.1:8000/v1 \
PROMPTFOLD_CONFORMANCE_LABEL="promptfold in front of SGLang 0.5.17 (SmolLM2-135M-Instruct, $SGL_EXTRA)" \
  python3 -m pytest tests/conformance -p no:cacheprovider -rA --conformance-report "$OUT/conformance_sglang" \
  2>&1 | tail -80 | tee "$OUT/conformance.log"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
kill $PROXY
stop
tar -czf "$OUT/logs.tgz" -C /root/stage/logs .
echo "== exit $rc"
exit $rc
