"""Triton sparse encoder backward: gradients of the pre-activations at the selected pairs only
(specs/kernels.md §4).

Letters: B tokens, D = d_in, F features, N selected pairs (CSR ``crow_B1``, ``cols_N``).
Forward (no kernel: the values come from the dense encoder pass, e.g. the fused top-k encoder):

    pre_j = xc[row_j] · W_enc[:, c_j] + b_enc[c_j]

Backward with g_j = ∂L/∂pre_j:

    ∂xc[b]        = Σ_{j ∈ row b} g_j · W_enc[:, c_j]      gather of W_encᵀ rows (``gather_rows``)
    ∂W_enc[:, f]  = Σ_{j : c_j = f} g_j · xc[row_j]        feature-grouped sum, written as [D, F]
    ∂b_enc[f]     = Σ_{j : c_j = f} g_j                    same pass

Only the selected columns of ∂W_enc are non-zero; the dense backward would cost two GEMMs of B·D·F.
∂xc gathers rows of W_encᵀ: W_enc is [D, F] (STYLE §2), so a column gather would read one 32-byte
sector per element; one transposed copy of W_enc (F·D moves) is far cheaper than that (N·D sectors).
The plain-torch reference is ``sparse_ops_reference.selected_preacts_reference``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .triton_common import check_csr, check_device, check_matrix, check_vector, transpose_csr
from .triton_sparse_decode import gather_rows, segment_outer


class TritonSelectedPreacts(torch.autograd.Function):
    """pre_N (given) at the selected pairs, with the sparse backward above."""

    @staticmethod
    def forward(ctx, xc_BD, W_enc_DF, b_enc_F, crow_B1, cols_N, pre_N):
        ctx.save_for_backward(xc_BD, W_enc_DF, crow_B1, cols_N)
        return pre_N.detach().clone()

    @staticmethod
    def backward(ctx, grad_N):
        xc_BD, W_enc_DF, crow_B1, cols_N = ctx.saved_tensors
        grad_N = grad_N.contiguous()
        grad_xc = grad_W_enc = grad_b_enc = None
        if ctx.needs_input_grad[0]:
            grad_xc = gather_rows(grad_N.to(W_enc_DF.dtype), crow_B1, cols_N, W_enc_DF.t().contiguous())
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            tcsr = transpose_csr(crow_B1, cols_N, W_enc_DF.shape[1])
            grad_W_enc, grad_b_enc = segment_outer(grad_N.to(xc_BD.dtype), tcsr, xc_BD.contiguous(), layout="DF",
                                                   with_bias=ctx.needs_input_grad[2])
            if not ctx.needs_input_grad[1]:
                grad_W_enc = None
        return grad_xc, grad_W_enc, grad_b_enc, None, None, None


def selected_preacts(xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor, crow_B1: Tensor, cols_N: Tensor,
                     pre_N: Tensor) -> Tensor:
    """Differentiable pre-activations at the selected pairs; same signature and results as
    ``sparse_ops_reference.selected_preacts_reference`` (whose dense GEMM this avoids)."""
    check_device(xc_BD=xc_BD, W_enc_DF=W_enc_DF, b_enc_F=b_enc_F, crow_B1=crow_B1, cols_N=cols_N, pre_N=pre_N)
    check_matrix(W_enc_DF, "W_enc_DF", (None, None))
    D, F = W_enc_DF.shape
    if xc_BD.ndim != 2 or xc_BD.shape[1] != D:
        raise ValueError(f"xc_BD must be [B, {D}] (d_in of W_enc), got shape {tuple(xc_BD.shape)}")
    check_csr(crow_B1, cols_N, n_rows=xc_BD.shape[0])
    check_vector(b_enc_F, "b_enc_F", F, (W_enc_DF.dtype,))
    check_vector(pre_N, "pre_N", cols_N.numel(), (W_enc_DF.dtype,))
    if xc_BD.dtype != W_enc_DF.dtype:
        raise ValueError(f"xc_BD has dtype {xc_BD.dtype} but W_enc_DF {W_enc_DF.dtype}; cast x to the SAE's dtype")
    return TritonSelectedPreacts.apply(xc_BD, W_enc_DF, b_enc_F, crow_B1, cols_N, pre_N)
