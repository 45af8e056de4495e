"""The fast sparse encode/decode ops give the reference's values and every gradient."""

import pytest
import torch

from superscope.kernels import sparse_ops
from superscope.kernels import sparse_ops_reference as ref
from superscope.kernels.sparse_codes import SparseCodes, crow_from_rows


def _problem(b, d, f, density=0.1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    xc = torch.randn(b, d, generator=gen, dtype=torch.float64)
    W_enc = torch.randn(d, f, generator=gen, dtype=torch.float64)
    b_enc = torch.randn(f, generator=gen, dtype=torch.float64)
    W_dec = torch.randn(f, d, generator=gen, dtype=torch.float64)
    mask = torch.rand(b, f, generator=gen) < density
    mask[0] = False  # an empty row
    rows, cols = mask.nonzero(as_tuple=True)
    crow = crow_from_rows(rows, b)
    pre = (xc @ W_enc + b_enc)[rows, cols]
    return xc, W_enc, b_enc, W_dec, crow, cols, pre


@pytest.mark.parametrize("shape", [(5, 3, 7), (37, 11, 53), (64, 17, 129)])
def test_selected_preacts_values_and_grads(shape):
    xc, W_enc, b_enc, _, crow, cols, pre = _problem(*shape)
    inputs = [t.clone().requires_grad_() for t in (xc, W_enc, b_enc)]
    inputs_ref = [t.clone().requires_grad_() for t in (xc, W_enc, b_enc)]
    out = sparse_ops.selected_preacts(*inputs, crow, cols, pre)
    out_ref = ref.selected_preacts_reference(*inputs_ref, crow, cols, pre)
    torch.testing.assert_close(out, out_ref)
    g = torch.randn_like(out)
    out.backward(g)
    out_ref.backward(g)
    for a, b in zip(inputs, inputs_ref):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("shape", [(5, 3, 7), (37, 11, 53), (64, 17, 129)])
def test_sparse_decode_values_and_grads(shape):
    _, _, _, W_dec, crow, cols, pre = _problem(*shape)
    vals = pre.relu()
    v1, W1 = vals.clone().requires_grad_(), W_dec.clone().requires_grad_()
    v2, W2 = vals.clone().requires_grad_(), W_dec.clone().requires_grad_()
    out = sparse_ops.sparse_decode(v1, crow, cols, W1)
    out_ref = ref.sparse_decode_reference(v2, crow, cols, W2)
    torch.testing.assert_close(out, out_ref)
    g = torch.randn_like(out)
    out.backward(g)
    out_ref.backward(g)
    torch.testing.assert_close(v1.grad, v2.grad)
    torch.testing.assert_close(W1.grad, W2.grad)


def test_sparse_codes_dense_roundtrip():
    dense = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
    rows, cols = dense.nonzero(as_tuple=True)
    codes = SparseCodes(crow_from_rows(rows, 2), cols, dense[rows, cols], 3)
    assert torch.equal(codes.to_dense(), dense)
    assert codes.l0_per_row().tolist() == [1, 2]
    assert codes.fired_counts().tolist() == [1, 1, 1]
