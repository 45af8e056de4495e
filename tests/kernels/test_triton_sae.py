"""Every SAE variant through dispatch with the Triton kernels (CPU interpreter, fp32) == the reference
path: reconstruction, codes, losses (AuxK, aux_zipf) and every parameter gradient.

On CPU, dispatch never picks Triton (it needs CUDA tensors), so the test registers the interpreted
kernels and forces the "triton" backend, exactly what a CUDA run does.
"""

from __future__ import annotations

import pytest
import torch

from superscope.kernels import dispatch

from .test_dispatch_paths import CASES, assert_same_results, run_sae_step
from .test_triton_common import interpreter_only, tk  # noqa: F401  (tk: module fixture)

pytestmark = interpreter_only
SMALL = {"n_tokens": 10, "d_in": 12, "d_sae": 48, "k": 4}  # the interpreter runs programs one by one
# one case per selection kernel (threshold modes, BatchTopK and zipf capacities reuse these kernels)
TRITON_CASES = [c for c in CASES if c[1] == "batch" and c[0] != "batchtopk" and not c[2]]


@pytest.mark.parametrize("case", TRITON_CASES, ids=lambda c: "-".join([c[0], c[1], *map(str, c[2].values())]))
def test_sae_triton_path_equals_reference(tk, case, monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    theirs = run_sae_step(*case, **SMALL)
    monkeypatch.delenv(dispatch.ENV_VAR)
    impls: dict = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    tk.triton_register.register_all(impls.__setitem__)
    monkeypatch.setattr(dispatch, "_TRITON_IMPLS", impls)
    monkeypatch.setattr(dispatch, "backend_for", lambda t: "triton")
    ours = run_sae_step(*case, **SMALL)
    assert_same_results(ours, theirs)
