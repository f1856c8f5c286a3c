#!/usr/bin/env bash
# Prepare the GPU benchmark run (BENCHMARKS.md, "GPU") on a CPU machine: download into .whl/ (git-ignored)
# the Python 3.12 manylinux x86-64 wheels the GPU machine lacks, build capbuild's own wheel from this
# checkout, check them (sizes, ctranslate2's CUDA needs), and print the one device call to make there.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# What the run imports that the GPU machine's image lacks (it has torch, torchvision, transformers,
# tokenizers, sentencepiece, timm, pyarrow, pillow, numpy, pyyaml, rich, typer, nvidia-ml-py): one
# pinned version each. ctranslate2 and webdataset need only numpy and pyyaml besides these; torchcodec
# (the embedding pass's JPEG decoder) needs nothing but torch.
WHEELS=(ctranslate2==4.8.5 webdataset==0.2.111 braceexpand==0.1.7 platformdirs==4.3.8 torchcodec==0.17.0)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

git check-ignore -q .whl/x || { echo "prepare.sh: .whl/ is not git-ignored; add /.whl/ to .gitignore" >&2; exit 1; }
rm -rf .whl
mkdir .whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d .whl "${WHEELS[@]}"

# capbuild's wheel from the checkout as it is (committed or not), built in a copy so no build/ is left here.
SRC="$(mktemp -d)"
trap 'rm -rf "$SRC"' EXIT
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$SRC/"
"$PYTHON" -m pip wheel --no-deps --no-build-isolation -w .whl "$SRC" >"$SRC/build.log" 2>&1 \
  || { cat "$SRC/build.log" >&2; exit 1; }

PYTHONPATH="$ROOT" "$PYTHON" -m benchmarks.gpu.wheels .whl
cat <<'CALL'

On the GPU machine, one device-tool call (about 8 minutes; the report comes back in $OUT):
  run  command:   bash benchmarks/gpu/run.sh
       carry:     [".whl"]
       timeout_s: 580
Then paste gpu.md into BENCHMARKS.md ("GPU") and give the machine back.
CALL
