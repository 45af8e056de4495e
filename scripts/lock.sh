#!/usr/bin/env bash
# Write requirements-lock.txt from a virtual environment whose suite just passed (`make lock` after
# `make test`, or after `make test-latest` to move the lock to the newest releases).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SUPERSCOPE_VENV:-.venv}"
{
  echo "# The versions CI tested: scripts/setup.sh installs with '-c requirements-lock.txt'."
  echo "# Regenerate with 'make lock' (from a venv whose 'make test' passed); 'make test-latest' tries the newest."
  echo "# Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'), $(date +%F)."
  # torch: the CPU wheel's local version (+cpu) is dropped so the pin matches the wheel on disk and PyPI's.
  "$VENV/bin/python" -m pip freeze --exclude-editable --all 2>/dev/null \
    | grep -v -E '^(superscope|pip|ruff)==' | sed -E 's/^torch==([0-9.]+)\+cpu$/torch==\1/' | sort -f
} > requirements-lock.txt
echo "wrote requirements-lock.txt ($(grep -c '==' requirements-lock.txt) pins)"
