"""Triton sparse decoder and sparse encoder backward (CPU interpreter, fp32) == the references:
values and every gradient, on awkward shapes, empty rows and an empty selection."""

from __future__ import annotations

import pytest
import torch

from superscope.kernels import sparse_ops_reference as ref
from superscope.kernels.sparse_codes import crow_uniform

from .test_triton_common import interpreter_only, random_csr, tk  # noqa: F401  (tk: module fixture)

pytestmark = interpreter_only

SHAPES = [(5, 3, 7, 0.3), (37, 11, 53, 0.1), (23, 40, 129, 0.05)]  # (B, D, F, density)


def _leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


def _problem(b, d, f, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, generator=gen), torch.randn(d, f, generator=gen), torch.randn(f, generator=gen),
            torch.randn(f, d, generator=gen))


@pytest.mark.parametrize("shape", SHAPES)
def test_sparse_decode_values_and_grads(tk, shape):
    b, d, f, density = shape
    _, _, _, W_dec = _problem(b, d, f)
    crow, cols = random_csr(b, f, density, seed=1)
    vals = torch.randn(cols.numel())
    v1, W1 = _leaves(vals, W_dec)
    v2, W2 = _leaves(vals, W_dec)
    out = tk.triton_sparse_decode.sparse_decode(v1, crow, cols, W1)
    out_ref = ref.sparse_decode_reference(v2, crow, cols, W2)
    torch.testing.assert_close(out, out_ref)
    g = torch.randn_like(out)
    out.backward(g)
    out_ref.backward(g)
    torch.testing.assert_close(v1.grad, v2.grad)
    torch.testing.assert_close(W1.grad, W2.grad)
    untouched = torch.ones(f, dtype=torch.bool)
    untouched[cols] = False
    assert (W1.grad[untouched] == 0).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_selected_preacts_grads(tk, shape):
    b, d, f, density = shape
    xc, W_enc, b_enc, _ = _problem(b, d, f, seed=2)
    crow, cols = random_csr(b, f, density, seed=3)
    rows = torch.repeat_interleave(torch.arange(b), crow.diff())
    pre = (xc @ W_enc + b_enc)[rows, cols]
    ours, theirs = _leaves(xc, W_enc, b_enc), _leaves(xc, W_enc, b_enc)
    out = tk.triton_sparse_encode_backward.selected_preacts(*ours, crow, cols, pre)
    out_ref = ref.selected_preacts_reference(*theirs, crow, cols, pre)
    torch.testing.assert_close(out, out_ref)
    g = torch.randn_like(out)
    out.backward(g)
    out_ref.backward(g)
    for a, r, name in zip(ours, theirs, ["xc", "W_enc", "b_enc"]):
        torch.testing.assert_close(a.grad, r.grad, msg=lambda m, n=name: f"grad {n}: {m}")


def test_topk_shaped_codes_through_both_ops(tk):
    """TopK layout (k per row, uniform CRSR) chained like the SAE forward: decode(relu(pre))."""
    b, d, f, k = 19, 13, 61, 4
    xc, W_enc, b_enc, W_dec = _problem(b, d, f, seed=4)
    pre_BF = xc @ W_enc + b_enc
    cols = pre_BF.topk(k, dim=1).indices.sort(dim=1).values.reshape(-1)
    crow = crow_uniform(b, k)
    pre = pre_BF.gather(1, cols.view(b, k)).reshape(-1)
    results = []
    for enc, dec in [(tk.triton_sparse_encode_backward.selected_preacts, tk.triton_sparse_decode.sparse_decode),
                     (ref.selected_preacts_reference, ref.sparse_decode_reference)]:
        leaves = _leaves(xc, W_enc, b_enc, W_dec)
        x_hat = dec(torch.relu(enc(*leaves[:3], crow, cols, pre)), crow, cols, leaves[3])
        x_hat.pow(2).sum().backward()
        results.append([x_hat] + [t.grad for t in leaves])
    for a, r in zip(*results):  # chained fp32 sums in another order: relative error ~1e-5
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4 * float(r.detach().abs().max()))


def test_empty_selection(tk):
    W_dec = torch.randn(9, 5, requires_grad=True)
    crow = torch.zeros(4, dtype=torch.int64)
    cols = torch.zeros(0, dtype=torch.int64)
    vals = torch.zeros(0, requires_grad=True)
    out = tk.triton_sparse_decode.sparse_decode(vals, crow, cols, W_dec)
    assert out.shape == (3, 5) and (out == 0).all()
    out.sum().backward()
    assert (W_dec.grad == 0).all() and vals.grad.shape == (0,)
