"""GPU-only checks of the compiled Triton kernels: fp32 and bf16, large and awkward shapes, and
every SAE variant through dispatch on CUDA against the reference path. Skipped without CUDA.

fp32 runs with TF32 off (torch's default), so kernels and references multiply exactly; bf16 results
are compared with the fp32 math on the same bf16 inputs, with a bf16 tolerance. Selected sets are
compared through their values where bf16 rounding creates ties.
"""

from __future__ import annotations

import pytest
import torch

from superscope.kernels import dispatch
from superscope.kernels import selection_reference as ref
from superscope.kernels import sparse_ops_reference as sref
from superscope.kernels.sparse_codes import crow_uniform
from superscope.saes import known_architectures

from .test_dispatch_paths import assert_same_results, run_sae_step
from .test_triton_common import INTERPRETER

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(INTERPRETER, reason="compiled kernels only")]
triton = pytest.importorskip("triton")
DTYPES = [torch.float32, torch.bfloat16]
TOL = {torch.float32: 1e-4, torch.bfloat16: 2e-2}


@pytest.fixture(autouse=True)
def _exact_fp32():
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = previous


def _close(ours, theirs, dtype, what):
    ours, theirs = ours.detach().float(), theirs.detach().float()
    scale = float(theirs.abs().max()) if theirs.numel() else 1.0
    torch.testing.assert_close(ours, theirs, rtol=TOL[dtype], atol=TOL[dtype] * scale, msg=lambda m: f"{what}: {m}")


def _randn(*shape, dtype, scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=gen)).to("cuda", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b,d,f,k", [(1000, 257, 3001, 17), (4096, 768, 24576, 32), (8192, 2304, 73728, 64)])
def test_fused_encoder(dtype, b, d, f, k):
    from superscope.kernels.triton_encode_topk import fused_encode_topk

    xc, W, bias = _randn(b, d, dtype=dtype), _randn(d, f, dtype=dtype, scale=d**-0.5, seed=1), _randn(f, dtype=dtype, seed=2)
    out = fused_encode_topk(xc, W, bias, k)
    pre32 = torch.addmm(bias.float(), xc.float(), W.float())
    _close(out.values_BK.sort(dim=1, descending=True).values, pre32.topk(k, dim=1).values, dtype, "top-k values")
    _close(pre32.gather(1, out.indices_BK), out.values_BK, dtype, "values at the indices")
    assert (out.indices_BK.sort(dim=1).values.diff(dim=1) > 0).all()
    assert out.n_recomputed_rows <= b // 100 + 1
    if b <= 1000:  # one shape: each new (D, F) pair costs an autotuning run
        with_pre = fused_encode_topk(xc, W, bias, k, return_preacts=True)
        _close(with_pre.preacts_BF, pre32, dtype, "pre-activations")


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_selection(dtype):
    from superscope.kernels.triton_selection import topm_global

    acts = (_randn(8192, 16384, dtype=dtype) - 0.5).relu()
    m = 32 * 8192
    crow, cols = topm_global(acts, m)
    rows_ref, cols_ref = ref.topm_global_reference(acts, m)
    assert cols.numel() == cols_ref.numel() == m and crow[-1] == m
    rows = torch.repeat_interleave(torch.arange(8192, device="cuda"), crow.diff())
    if dtype == torch.float32:
        assert torch.equal(cols, cols_ref) and torch.equal(rows, rows_ref)
    else:  # bf16 ties at the threshold: same multiset of values
        assert torch.equal(acts[rows, cols].float().sort().values, acts[rows_ref, cols_ref].float().sort().values)


@pytest.mark.parametrize("dtype", DTYPES)
def test_per_column_selection(dtype):
    from superscope.kernels.triton_selection import topm_per_column

    acts = (_randn(8192, 8192, dtype=dtype, seed=3) - 0.5).relu()
    gen = torch.Generator().manual_seed(4)
    cap = (64 * torch.rand(8192, generator=gen) ** 4).long().cuda()  # zipf-like: a few large capacities
    cap[:4] = 8192
    crow, cols = topm_per_column(acts, cap)
    rows_ref, cols_ref = ref.topm_per_column_reference(acts, cap)
    rows = torch.repeat_interleave(torch.arange(8192, device="cuda"), crow.diff())
    assert torch.equal(torch.bincount(cols, minlength=8192), torch.bincount(cols_ref, minlength=8192))
    if dtype == torch.float32:
        assert torch.equal(cols, cols_ref) and torch.equal(rows, rows_ref)
    else:
        assert torch.equal(acts[rows, cols].float().sort().values, acts[rows_ref, cols_ref].float().sort().values)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b,d,f,k", [(999, 131, 5003, 13), (4096, 768, 24576, 32)])
def test_sparse_ops(dtype, b, d, f, k):
    from superscope.kernels.triton_sparse_decode import sparse_decode
    from superscope.kernels.triton_sparse_encode_backward import selected_preacts

    xc, W_enc, b_enc = _randn(b, d, dtype=dtype), _randn(d, f, dtype=dtype, scale=d**-0.5, seed=1), _randn(f, dtype=dtype, seed=2)
    W_dec = _randn(f, d, dtype=dtype, seed=3)
    cols = torch.rand(b, f, device="cuda").topk(k, dim=1).indices.sort(dim=1).values.reshape(-1)
    crow = crow_uniform(b, k, device="cuda")
    rows = torch.repeat_interleave(torch.arange(b, device="cuda"), k)
    pre = torch.addmm(b_enc.float(), xc.float(), W_enc.float())[rows, cols].to(dtype)
    ours = [t.clone().requires_grad_() for t in (xc, W_enc, b_enc, W_dec)]
    theirs = [t.float().clone().requires_grad_() for t in (xc, W_enc, b_enc, W_dec)]
    x_hat = sparse_decode(torch.relu(selected_preacts(*ours[:3], crow, cols, pre)), crow, cols, ours[3])
    x_ref = sref.sparse_decode_reference(torch.relu(sref.selected_preacts_reference(*theirs[:3], crow, cols, pre.float())),
                                         crow, cols, theirs[3])
    _close(x_hat, x_ref, dtype, "x_hat")
    g = _randn(b, d, dtype=dtype, seed=5)
    x_hat.backward(g)
    x_ref.backward(g.float())
    for a, r, name in zip(ours, theirs, ["xc", "W_enc", "b_enc", "W_dec"]):
        _close(a.grad, r.grad, dtype, f"grad {name}")


def test_dispatch_picks_triton_on_cuda():
    assert dispatch.backend_for(torch.zeros(1, device="cuda")) == "triton"
    assert {"encode_topk", "topm_global", "topm_per_column", "selected_preacts", "sparse_decode"} <= set(dispatch._TRITON_IMPLS)


@pytest.mark.parametrize("arch", known_architectures())
def test_sae_step_triton_equals_reference(arch, monkeypatch):
    shape = {"n_tokens": 4096, "d_in": 256, "d_sae": 8192, "k": 32, "device": "cuda"}
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    theirs = run_sae_step(arch, "batch", {}, **shape)
    monkeypatch.setenv(dispatch.ENV_VAR, "auto")
    ours = run_sae_step(arch, "batch", {}, **shape)
    assert_same_results(ours, theirs)


@pytest.mark.parametrize("arch", ["topk", "mutual_choice", "feature_choice"])
def test_sae_step_bf16_close_to_reference(arch, monkeypatch):
    """bf16 rounding makes ties, so selections may differ in a few entries: compare losses and the
    relative error of each gradient."""
    shape = {"n_tokens": 4096, "d_in": 256, "d_sae": 8192, "k": 32, "device": "cuda", "dtype": "bfloat16"}
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    theirs = run_sae_step(arch, "batch", {}, **shape)
    monkeypatch.setenv(dispatch.ENV_VAR, "auto")
    ours = run_sae_step(arch, "batch", {}, **shape)
    for name in ours:
        err = float((ours[name] - theirs[name]).norm() / theirs[name].norm().clamp_min(1e-12))
        assert err < 5e-2, f"{arch} {name}: relative error {err:.3g}"
