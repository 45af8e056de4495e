#!/usr/bin/env bash
# The prepared GPU check of the kernel layer (issue 4), for a fresh CUDA machine, in under 8 minutes:
#   1. install what is missing: superscope itself (editable, no deps), then triton / sae-lens /
#      eai-sparsify — from wheels carried in .whl/ when present (the machine may have no index), else
#      from the package index; a peer that cannot be installed is reported "unavailable", not fatal;
#   2. the GPU tests: pytest -m gpu tests/kernels tests/saes (compiled kernels, fp32 + bf16, large shapes;
#      every registered architecture trained end to end on CUDA through saes.train);
#   3. the kernel benchmark (benchmarks/kernel_speed.py) on the full CUDA grid, stopped early by a time budget.
# Everything lands in $OUT (or ./artifacts): gpu_check.log, gpu_tests.txt, kernels.txt, kernels.json.
#
#   bash benchmarks/gpu_check.sh          # TOTAL_S=450: seconds for the whole script; BENCH_ARGS: extra
#                                          # benchmark flags, e.g. BENCH_ARGS="--dtypes float32"
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
OUT_DIR="${OUT:-$REPO/artifacts}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
TOTAL_S="${TOTAL_S:-450}"
START=$(date +%s)
exec > >(tee -a "$OUT_DIR/gpu_check.log") 2>&1
left() { echo $(( TOTAL_S - ($(date +%s) - START) )); }
have() { "$PY" -c "import $1" >/dev/null 2>&1; }

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"

echo "== install ($(left)s left)"
if ls .whl/*.whl >/dev/null 2>&1; then  # carried wheels: all at once, else one by one without deps
  timeout 240 "$PY" -m pip install -q --no-index --find-links .whl .whl/*.whl \
    || for w in .whl/*.whl; do timeout 60 "$PY" -m pip install -q --no-index --no-deps "$w" || echo "skip $w"; done
fi
if ! have superscope.kernels; then
  timeout 120 "$PY" -m pip install -q --no-build-isolation --no-deps -e . || true
fi
if ! have superscope.kernels; then  # no setuptools build: map the namespace by hand (pyproject's package-dir)
  mkdir -p /tmp/superscope_shim/superscope
  printf '__path__ = [%r, %r]\nexec(open(%r).read())\n' "$REPO/superscope_pkg" "$REPO" "$REPO/superscope_pkg/__init__.py" \
    > /tmp/superscope_shim/superscope/__init__.py
  export PYTHONPATH="/tmp/superscope_shim${PYTHONPATH:+:$PYTHONPATH}"
fi
for pkg in "triton:triton" "sae_lens:sae-lens" "sparsify:eai-sparsify"; do
  mod="${pkg%%:*}"; dist="${pkg#*:}"
  if have "$mod"; then
    echo "  $mod: ok"
  else  # not carried: try the index (often unreachable on the GPU machine)
    timeout 90 "$PY" -m pip install -q "$dist" >/dev/null 2>&1 || true
    have "$mod" && echo "  $mod: installed" || echo "  $mod: unavailable"
  fi
done
have superscope.kernels || { echo "cannot import superscope.kernels: giving up"; exit 1; }

echo "== GPU tests ($(left)s left)"
timeout $(( $(left) > 300 ? $(left) * 2 / 5 : 120 )) "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs tests/kernels tests/saes \
  2>&1 | tee "$OUT_DIR/gpu_tests.txt" | tail -40
echo "pytest exit: ${PIPESTATUS[0]}"

echo "== benchmark ($(left)s left)"
BUDGET=$(( $(left) > 120 ? $(left) - 60 : 60 ))  # stop starting new shapes in time to finish and write
# shellcheck disable=SC2086  # BENCH_ARGS: extra flags, e.g. "--dtypes float32 --dims 4096"
timeout $(( BUDGET + 50 )) "$PY" -m superscope.benchmarks.kernel_speed --rounds 3 --budget-s "$BUDGET" \
  --json "$OUT_DIR/kernels.json" ${BENCH_ARGS:-} 2>&1 | grep -v -i "warn" | tee "$OUT_DIR/kernels.txt" | tail -60
echo "benchmark exit: ${PIPESTATUS[0]}; total $(( $(date +%s) - START ))s; results in $OUT_DIR"
