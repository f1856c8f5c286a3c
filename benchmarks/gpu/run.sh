#!/usr/bin/env bash
# Run the GPU benchmark suite (BENCHMARKS.md, "GPU") in one call: install the wheels prepare.sh put in
# .whl/, then benchmarks.gpu.main (report in $OUT). `run.sh --tiny` is the CPU smoke mode the tests run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
TINY=0
for arg in "$@"; do [ "$arg" = --tiny ] && TINY=1; done
SITE=""
if [ "$TINY" = 0 ]; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    SITE="$(mktemp -d /tmp/capbuild-gpu-site.XXXXXX)"
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
  else
    echo "run.sh: no wheels in .whl/ (benchmarks/gpu/prepare.sh makes them): using what is installed" >&2
  fi
fi
# The checkout's code comes first; the capbuild wheel adds its metadata (version) behind it.
export PYTHONPATH="$ROOT${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false NO_ALBUMENTATIONS_UPDATE=1
exec "$PYTHON" -m benchmarks.gpu.main "$@"
