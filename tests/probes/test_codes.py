"""The probes read the kernels' CSR codes (what `sae(x).codes` returns) as what they are."""

from __future__ import annotations

import pytest
import torch

from superscope.kernels import SparseCodes
from superscope.probes import effective_features_from_codes, function_token_graph_from_codes
from superscope.probes._codes import CooCodes, as_codes, n_rows
from superscope.saes import SAEConfig, create_sae


@pytest.fixture(scope="module")
def sae_codes():
    """Token ids, the CSR codes of a forward (values carry autograd) and the same codes dense."""
    torch.manual_seed(0)
    sae = create_sae(SAEConfig(architecture="topk", d_in=8, d_sae=32, k=3))
    x_BD = torch.randn(96, 8)
    csr = sae(x_BD).codes
    tok_B = torch.randint(0, 20, (96,))
    return tok_B, csr, sae.encode(x_BD)


def test_csr_codes_give_the_dense_result_in_effective_features(sae_codes):
    _, csr, dense_BF = sae_codes
    assert isinstance(csr, SparseCodes) and csr.values_N.requires_grad
    from_csr = effective_features_from_codes([csr], 32, n_bootstrap=0)
    from_dense = effective_features_from_codes([dense_BF], 32, n_bootstrap=0)
    assert from_csr.n_tokens == from_dense.n_tokens == 96
    assert from_csr.f_eff == pytest.approx(from_dense.f_eff, rel=1e-6)  # float32 BLAS sum vs float64 bincount
    assert from_csr.n_alive == from_dense.n_alive


def test_csr_codes_give_the_dense_result_in_the_token_graph(sae_codes):
    tok_B, csr, dense_BF = sae_codes
    from_csr = function_token_graph_from_codes([(tok_B, csr)], 32)
    from_dense = function_token_graph_from_codes([(tok_B, dense_BF)], 32)
    assert from_csr.to_dict() == from_dense.to_dict()
    assert (from_csr.graph != from_dense.graph).nnz == 0


def test_csr_row_pointers_are_not_read_as_rows():
    """One row with two entries: crow has the same length as cols, which a 4-tuple reading takes as COO."""
    csr = SparseCodes(torch.tensor([0, 2]), torch.tensor([1, 5]), torch.tensor([0.5, 2.0]), 8)
    coo = as_codes(csr, 8)
    assert isinstance(coo, CooCodes) and n_rows(coo) == 1
    assert coo.rows.tolist() == [0, 0] and coo.cols.tolist() == [1, 5]
    with pytest.raises(ValueError, match="d_sae=16"):
        as_codes(csr, 16)
