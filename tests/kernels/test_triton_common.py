"""Triton-interpreter harness + tests of the kernels' plumbing (checks, CSR transpose, registration).

Triton decides between compiling and interpreting when ``@triton.jit`` decorates — at import, and
also for its own standard library (``tl.sum``, ``tl.zeros``...). In a full test session triton is
already imported normally (transformer_lens imports it), so the interpreter tests run in a child
pytest with TRITON_INTERPRET=1 set from the start: ``test_triton_kernels_on_the_cpu_interpreter``
below. To run them directly: ``TRITON_INTERPRET=1 pytest tests/kernels/test_triton_*.py``.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from superscope.kernels import dispatch
from superscope.kernels.sparse_codes import crow_from_rows

INTERPRETER = os.environ.get("TRITON_INTERPRET", "0") == "1"
interpreter_only = pytest.mark.skipif(
    not INTERPRETER, reason="runs in the TRITON_INTERPRET=1 child of test_triton_kernels_on_the_cpu_interpreter")
MODULES = ["triton_common", "triton_sparse_decode", "triton_sparse_encode_backward", "triton_selection",
           "triton_encode_topk", "triton_register"]
INTERPRETER_TEST_FILES = ["test_triton_common.py", "test_triton_sparse_ops.py", "test_triton_encode_topk.py",
                          "test_triton_selection.py", "test_triton_sae.py"]


@pytest.fixture(scope="module")
def tk():
    """The Triton kernel modules (interpreted: only used in the TRITON_INTERPRET=1 session)."""
    pytest.importorskip("triton")
    return SimpleNamespace(**{m: importlib.import_module(f"superscope.kernels.{m}") for m in MODULES})


@pytest.mark.skipif(INTERPRETER, reason="this is the launcher of the interpreter session")
def test_triton_kernels_on_the_cpu_interpreter():
    """Every Triton kernel against its reference, values and gradients, on the CPU interpreter (fp32)."""
    pytest.importorskip("triton")
    here = Path(__file__).parent
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           "-k", "not test_triton_kernels_on_the_cpu_interpreter",
                           *[str(here / f) for f in INTERPRETER_TEST_FILES]],
                          env=env, capture_output=True, text=True, timeout=900, cwd=here.parents[1])
    assert proc.returncode == 0, f"interpreter session failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-3000:]


def random_csr(b: int, f: int, density: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(b, f, generator=gen) < density
    if b > 1:
        mask[1] = False  # an empty row
    rows, cols = mask.nonzero(as_tuple=True)
    return crow_from_rows(rows, b), cols


@interpreter_only
def test_transpose_csr_groups_entries_by_feature(tk):
    crow, cols = random_csr(37, 53, 0.2)
    t = tk.triton_common.transpose_csr(crow, cols, 53)
    rows = torch.repeat_interleave(torch.arange(37), crow.diff())
    assert torch.equal(t.cols_N, cols[t.order_N]) and torch.equal(t.rows_N, rows[t.order_N])
    assert (t.cols_N.diff() >= 0).all()
    assert torch.equal(t.crow_F1.diff(), torch.bincount(cols, minlength=53))
    # within a feature, the original (row-major) order is kept: rows increase
    same = t.cols_N[1:] == t.cols_N[:-1]
    assert (t.rows_N[1:][same] > t.rows_N[:-1][same]).all()


@interpreter_only
def test_bad_inputs_are_one_line_errors(tk):
    crow, cols = random_csr(5, 7, 0.5)
    W = torch.randn(7, 3)
    vals = torch.randn(cols.numel())
    with pytest.raises(ValueError, match="contiguous"):
        tk.triton_sparse_decode.sparse_decode(vals, crow, cols, torch.randn(3, 7).T)
    with pytest.raises(ValueError, match="dtype"):
        tk.triton_sparse_decode.sparse_decode(vals.double(), crow, cols, W)
    with pytest.raises(ValueError, match="int64"):
        tk.triton_sparse_decode.sparse_decode(vals, crow.int(), cols, W)
    with pytest.raises(ValueError, match="size"):
        tk.triton_sparse_decode.sparse_decode(vals[:-1], crow, cols, W)
    with pytest.raises(ValueError, match="d_in"):
        tk.triton_sparse_encode_backward.selected_preacts(torch.randn(5, 4), W.T.contiguous(), torch.zeros(7),
                                                          crow, cols, vals)


@interpreter_only
def test_kernels_refuse_cpu_tensors_without_the_interpreter(tk, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="CUDA"):
        tk.triton_common.check_device(x=torch.zeros(1))


@interpreter_only
def test_register_all_needs_cuda(tk, monkeypatch):
    offered: dict = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert tk.triton_register.register_all(offered.__setitem__) == [] and offered == {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    names = tk.triton_register.register_all(offered.__setitem__)
    assert sorted(names) == sorted(offered) == sorted(
        ["encode_topk", "topm_global", "topm_per_column", "selected_preacts", "sparse_decode"])
    assert offered["sparse_decode"] is tk.triton_sparse_decode.sparse_decode


def test_cpu_tensors_never_load_triton(monkeypatch):
    monkeypatch.setattr(dispatch, "_TRITON_LOADED", False)
    assert dispatch.backend_for(torch.zeros(2)) == "cpu"
    assert dispatch._TRITON_LOADED is False
