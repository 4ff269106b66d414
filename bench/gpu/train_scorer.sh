#!/bin/bash
# Train the classifier scorer (middleware/compress/classifier) in one call: corpus, SmolLM2 teacher scores,
# MiniLM fine-tuning, evaluation and the int8 export, with `promptfold scorer train`.
#
# GPU machine (after the SGLang recipe staged /root/site and /root/model), about 3-5 minutes:
#   carry .whl (as for compress_e2e.sh), .whl3 (onnx, onnxruntime and their pure-Python deps for cp312) and
#   .carry3/minilm (or nothing of these where an earlier call of the session installed them), and copy the dev splits into the tree first:
#     for s in nq_multidoc20_synth gsm8k litm_kv_retrieval75; do
#       mkdir -p shared/eval/$s && cp /work/shared/eval/$s/dev.jsonl shared/eval/$s/; done
#   bash bench/gpu/train_scorer.sh
# The same command on a CPU, tiny (a smoke run; minutes):
#   PYTHON=.venv/bin/python DEVICE=cpu BUDGET_CHARS=60000 EPOCHS=1 BATCH_ROWS=16 TIME_BUDGET_S=1500 LIMIT_S=3000 \
#     EVAL_REQUESTS=300 OUT=/tmp/scorer-cpu bash bench/gpu/train_scorer.sh
# Knobs: DEVICE (cuda), BUDGET_CHARS (12000000), EPOCHS (3), LAYERS (all 6), BATCH_ROWS (64), LR (1e-4),
# SEED (0), TIME_BUDGET_S (330: fitting stops early so that the run ends by then), LIMIT_S (420: killed),
# EVAL_REQUESTS (800: held-out requests for the int8 checks). The log says how many steps ran.
# $OUT gets: classifier.tar.part* (the export: scorer-int8.onnx, tokenizer.json, card.json; 15 MB pieces),
# card.json, report.json, train.log. Install on the workstation with
#   promptfold scorer install $FILES_AT        (joins the pieces, checks them against the card)
set -u
if [ -f .gpu/device_serve.sh ]; then
  source bench/gpu/prelude.sh
  export PROMPTFOLD_CAUSAL_LM=${PROMPTFOLD_CAUSAL_LM:-/root/model} PROMPTFOLD_EMBEDDER=${PROMPTFOLD_EMBEDDER:-$PWD/.carry3/minilm}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
if [ ! -f shared/eval/nq_multidoc20_synth/dev.jsonl ] && [ -z "${PROMPTFOLD_EVAL_DIR:-}" ] && [ ! -d ../shared/eval ]; then
  echo "!! no eval dev splits: copy them into shared/eval/ (see the header) or set PROMPTFOLD_EVAL_DIR"; exit 2
fi
WORK=$(mktemp -d /tmp/scorer-train.XXXXXX)
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
echo "== promptfold scorer train ($DEVICE)"
timeout "${LIMIT_S:-420}" "$PY" -m middleware.cli scorer train --out "$WORK" --device "$DEVICE" \
  --budget-chars "${BUDGET_CHARS:-12000000}" --epochs "${EPOCHS:-3}" ${LAYERS:+--layers "$LAYERS"} \
  --batch-rows "${BATCH_ROWS:-64}" --lr "${LR:-1e-4}" --seed "${SEED:-0}" --time-budget "${TIME_BUDGET_S:-330}" \
  --eval-requests "${EVAL_REQUESTS:-800}" > "$OUT/train.log" 2>&1
rc=$?
tail -c 6000 "$OUT/train.log"
if [ -f "$WORK/model/card.json" ]; then
  tar -cf - -C "$WORK/model" scorer-int8.onnx tokenizer.json card.json | split -b 15m - "$OUT/classifier.tar.part"
  cp "$WORK/model/card.json" "$WORK/report.json" "$OUT/" 2>/dev/null
fi
rm -rf "$WORK"
ls -la "$OUT"
echo "== exit $rc"
exit $rc
