"""threshold_pairs (JumpReLU's select) and the CPU helpers it rests on: the same pairs, order and values as the
naive rule, on awkward shapes, per-column and scalar θ, empty rows and an empty selection."""

from __future__ import annotations

import pytest
import torch

from superscope.kernels import dispatch, selection, sparse_ops
from superscope.kernels.selection_reference import threshold_reference


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (97, 61), (300, 257)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_threshold_pairs_equal_the_reference(shape, dtype):
    gen = torch.Generator().manual_seed(shape[0])
    acts = torch.randn(*shape, generator=gen).to(dtype)
    acts[::3] = -5.0  # empty rows
    for theta in (torch.rand(shape[1], generator=gen) + 0.5, torch.tensor(0.8)):
        crow, cols, values = dispatch.threshold_pairs(acts, theta)
        rows_ref, cols_ref = threshold_reference(acts, theta)
        assert torch.equal(cols, cols_ref)
        assert torch.equal(crow, selection._to_csr(rows_ref, cols_ref, shape[0])[0])
        assert torch.equal(values, acts[rows_ref, cols_ref])
        assert torch.equal(selection.threshold_select(acts, theta)[1], cols_ref)


def test_threshold_pairs_of_nothing():
    crow, cols, values = dispatch.threshold_pairs(torch.zeros(5, 4), torch.tensor(1.0))
    assert crow.tolist() == [0] * 6 and cols.numel() == 0 and values.numel() == 0


def test_flat_nonzero_and_stable_argsort_equal_torch():
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(123, 77, generator=gen) < 0.1
    assert torch.equal(selection.flat_nonzero(mask), mask.reshape(-1).nonzero().squeeze(1))
    assert torch.equal(selection.flat_nonzero(mask.T), mask.T.reshape(-1).nonzero().squeeze(1))  # non-contiguous
    cols = torch.randint(0, 300, (5000,), generator=gen)
    assert torch.equal(sparse_ops._stable_argsort(cols, 300), torch.argsort(cols, stable=True))
    assert torch.equal(sparse_ops._stable_argsort(cols, 1 << 17), torch.argsort(cols, stable=True))
