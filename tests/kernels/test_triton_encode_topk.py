"""Fused Triton encoder + per-row top-k (CPU interpreter, fp32) == dense GEMM + torch.topk.

Selected sets are compared through their values (ties may pick other indices): sorted values match
the reference, every returned index holds its returned value, indices are distinct per row.
"""

from __future__ import annotations

import pytest
import torch

from .test_triton_common import interpreter_only, tk  # noqa: F401  (tk: module fixture)

pytestmark = interpreter_only


def _problem(b, d, f, seed=0, bias_shift=0.0):
    gen = torch.Generator().manual_seed(seed)
    xc, W = torch.randn(b, d, generator=gen), torch.randn(d, f, generator=gen) / d**0.5
    return xc, W, torch.randn(f, generator=gen) + bias_shift


def _assert_topk(out, xc, W, b, k):
    pre = xc @ W + b
    ref_vals = pre.topk(k, dim=1).values
    vals, idx = out.values_BK, out.indices_BK
    assert vals.shape == idx.shape == (xc.shape[0], k)
    torch.testing.assert_close(vals.sort(dim=1, descending=True).values, ref_vals)
    torch.testing.assert_close(pre.gather(1, idx.long()), vals)
    assert (idx.long().sort(dim=1).values.diff(dim=1) > 0).all(), "an index was selected twice"


@pytest.mark.parametrize("b,d,f,k", [(37, 11, 53, 5), (64, 17, 300, 16), (16, 33, 1023, 32), (3, 5, 7, 7)])
def test_matches_dense_topk(tk, b, d, f, k):
    xc, W, bias = _problem(b, d, f)
    out = tk.triton_encode_topk.fused_encode_topk(xc, W, bias, k)
    _assert_topk(out, xc, W, bias, k)
    assert out.preacts_BF is None and out.indices_BK.dtype == torch.int64


def test_returns_preacts_and_int32_indices(tk):
    xc, W, bias = _problem(29, 19, 97, seed=1)
    out = tk.triton_encode_topk.fused_encode_topk(xc, W, bias, 6, return_preacts=True, index_dtype=torch.int32)
    torch.testing.assert_close(out.preacts_BF, xc @ W + bias)
    assert out.indices_BK.dtype == torch.int32
    _assert_topk(out, xc, W, bias, 6)


def test_truncated_tiles_are_recomputed_exactly(tk):
    """All of each row's top-k sit in the first tile, which keeps only C < k: the check must catch it."""
    xc, W, bias = _problem(21, 9, 100, seed=2)
    bias[:12] += 50.0
    out = tk.triton_encode_topk.fused_encode_topk(xc, W, bias, 8, candidates=4)
    assert out.n_recomputed_rows == 21
    _assert_topk(out, xc, W, bias, 8)
    mixed = bias.clone()
    mixed[:12] -= 50.0
    mixed[:12:3] += 50.0  # four huge columns in tile 0 per row: C = 4 holds them, the rest come from others
    out = tk.triton_encode_topk.fused_encode_topk(xc, W, mixed, 8, candidates=4)
    _assert_topk(out, xc, W, mixed, 8)


def test_all_negative_rows_and_ties(tk):
    xc, W, bias = _problem(10, 7, 40, seed=3, bias_shift=-20.0)
    out = tk.triton_encode_topk.fused_encode_topk(xc, W, bias, 5)
    _assert_topk(out, xc, W, bias, 5)  # top-k of pre (ReLU comes after), as dispatch's torch path
    flat = tk.triton_encode_topk.fused_encode_topk(xc, torch.zeros_like(W), torch.full_like(bias, 0.5), 5)
    assert (flat.values_BK == 0.5).all()
    assert (flat.indices_BK.sort(dim=1).values.diff(dim=1) > 0).all()


def test_dispatch_signature(tk):
    xc, W, bias = _problem(8, 6, 33, seed=4)
    vals, idx = tk.triton_encode_topk.encode_topk(xc, W, bias, 3)
    assert vals.shape == idx.shape == (8, 3) and idx.dtype == torch.int64


def test_bad_inputs(tk):
    xc, W, bias = _problem(4, 3, 20)
    enc = tk.triton_encode_topk.fused_encode_topk
    with pytest.raises(ValueError, match="k must"):
        enc(xc, W, bias, 21)
    with pytest.raises(ValueError, match="dtype"):
        enc(xc.double(), W, bias, 2)
    with pytest.raises(ValueError, match="power of two"):
        enc(xc, W, bias, 2, candidates=3)
    with pytest.raises(ValueError, match="size 5 on dim 1, expected 3"):
        enc(torch.randn(4, 5), W, bias, 2)
