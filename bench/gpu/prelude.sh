# Sourced by the GPU-machine scripts (after the SGLang recipe staged /root/site and /root/model): sets $OUT,
# installs the carried wheels into /root/stage (kept by the machine between calls of one session: a later
# call need not carry them again), keeps a carried MiniLM there too, defines the recipe's launch/stop/finish,
# and puts /root/site (SGLang's packages, first), our wheels and the repository on PYTHONPATH.
#   .whl/   what the proxy needs beyond the machine and /root/site -> /root/stage/pf-site
#   .whl3/  onnx and onnxruntime (the classifier's export and int8 check) -> /root/stage/pf-site
#   .whl2/  client libraries for tests (openai, LangChain, LiteLLM) -> /root/stage/pf-clients
#           (not on PYTHONPATH: a test command puts it first for itself, see conformance_sglang.sh)
#   .carry3/minilm  MiniLM (float16) -> /root/stage/minilm, exported as PROMPTFOLD_EMBEDDER
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /root/stage
for pair in ".whl:/root/stage/pf-site" ".whl3:/root/stage/pf-site" ".whl2:/root/stage/pf-clients"; do
  src=${pair%%:*}; dst=${pair#*:}
  if ls "$src"/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$dst" "$src"/*.whl \
      || echo "!! wheel install from $src failed"
  fi
done
[ -d .carry3/minilm ] && [ ! -d /root/stage/minilm ] && cp -r .carry3/minilm /root/stage/minilm
[ -d /root/stage/minilm ] && export PROMPTFOLD_EMBEDDER=/root/stage/minilm
source .gpu/device_serve.sh none
export PYTHONPATH=/root/site:/root/stage/pf-site:$PWD
