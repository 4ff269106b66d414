# Sourced by the GPU-machine scripts (after the SGLang recipe staged /root/site and /root/model): sets $OUT,
# installs the carried wheels (.whl/) into /tmp/site, defines the recipe's launch/stop/finish, and puts
# /root/site (SGLang's packages, first), /tmp/site and the repository on PYTHONPATH.
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || echo "!! wheel install failed"
fi
source .gpu/device_serve.sh none
export PYTHONPATH=/root/site:/tmp/site:$PWD
