"""Plain-torch references for the sparse encoder/decoder ops (dense math, autograd does the rest).

Letters: B tokens, D = d_in, F features, N selected pairs. These define what the fast paths in
``sparse_ops.py`` (CPU) and ``triton_*.py`` (CUDA) must compute, values and every gradient.
"""

from __future__ import annotations

from torch import Tensor

from .sparse_codes import SparseCodes


def selected_preacts_reference(
    xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor, crow_B1: Tensor, cols_N: Tensor, pre_N: Tensor
) -> Tensor:
    """pre[b, f] = xc[b] · W_enc[:, f] + b_enc[f] at the selected pairs (pre_N is ignored here:
    the reference recomputes the dense GEMM so that autograd gives the spec's gradients)."""
    rows_N = SparseCodes(crow_B1, cols_N, pre_N, W_enc_DF.shape[1]).rows()
    pre_BF = xc_BD @ W_enc_DF + b_enc_F
    return pre_BF[rows_N, cols_N]


def sparse_decode_reference(values_N: Tensor, crow_B1: Tensor, cols_N: Tensor, W_dec_FD: Tensor) -> Tensor:
    """x̂[b] = Σ_{(b, f) selected} z[b, f] · W_dec[f]  (no b_dec)."""
    codes = SparseCodes(crow_B1, cols_N, values_N, W_dec_FD.shape[0])
    return codes.to_dense() @ W_dec_FD
