#!/bin/bash
# GPU machine, after the SGLang recipe (../shared/gpu/sglang/README.md) staged /root/site and /root/model:
#   bash bench/gpu/organize_sglang.sh
# Needs the SoT question sets in the tree: before the run call, on the workstation,
#   mkdir -p shared/eval && cp -r /work/shared/eval/sot shared/eval/    (untracked; travels with the tree)
# Starts one SGLang server with its radix cache (the recipe's flags, --enable-cache-report included) and runs
# bench/organize.py against it: plain vs sot vs pipelined on every SoT-suitable question (95), REPEATS rounds
# (default 2), at each answer budget of BUDGETS (default "256 512"; estimated 3 and 5 minutes). Split
# the budgets over two calls (BUDGETS=256 ..., BUDGETS=512 ...) if the 10-minute call limit is near.
# The router needs MiniLM, which this machine lacks: its figures come from the CPU run.
set -u
source bench/gpu/prelude.sh
if [ ! -f shared/eval/sot/vicuna/router.csv ]; then
  echo "shared/eval/sot is missing: copy /work/shared/eval/sot into shared/eval/ before the call"; exit 2
fi
rc=0
launch A 30000 /root/model || rc=1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
for budget in ${BUDGETS:-256 512}; do
  echo "== organize bench, max_tokens $budget"
  python3 bench/organize.py --backend sglang://127.0.0.1:30000 --sot-dir shared/eval/sot --no-router \
    --questions 0 --repeats "${REPEATS:-2}" --max-tokens "$budget" --examples 2 \
    --json "$OUT/organize_sglang_$budget.json" --markdown "$OUT/organize_sglang_$budget.md" \
    2>&1 | tee "$OUT/organize_sglang_$budget.log" | grep -v '^\[' 
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
stop
tar -czf "$OUT/logs.tgz" -C /root/stage/logs .
echo "== exit $rc"
exit $rc
