"""Fast CPU (and generic torch) sparse encoder/decoder ops with hand-written backward passes.

Letters: B tokens, D = d_in, F features, N selected pairs (N ≈ k·B).
A dense SAE step costs ~6 GEMMs of B·D·F; only the encoder forward needs to be dense (specs/kernels.md).
Here everything after it touches the N selected pairs only:
- encoder backward: ∂W_enc[:, f] = Σ_b g[b, f] xc[b]  → one CSR spmm Sᵀ·xc over the N pairs;
- decoder forward: x̂ = S·W_dec (CSR spmm); backward: ∂z = (g·W_decᵀ) sampled at S (SDDMM),
  ∂W_dec = Sᵀ·g (CSR spmm).
The references in ``sparse_ops_reference.py`` define the values and gradients (tests compare).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
warnings.filterwarnings("ignore", message=".*Sparse invariant checks are implicitly disabled.*")


def _csr(crow_B1: Tensor, cols_N: Tensor, values_N: Tensor, n_features: int) -> Tensor:
    return torch.sparse_csr_tensor(crow_B1, cols_N, values_N, (crow_B1.numel() - 1, n_features), check_invariants=False)


def _csr_transposed(crow_B1: Tensor, cols_N: Tensor, values_N: Tensor, n_features: int) -> Tensor:
    """Sᵀ in CSR form [F, B]: entries regrouped by feature (a stable argsort of the columns)."""
    n_rows = crow_B1.numel() - 1
    order_N = torch.argsort(cols_N, stable=True)
    rows_N = torch.repeat_interleave(torch.arange(n_rows, device=cols_N.device), crow_B1.diff())
    counts_F = torch.bincount(cols_N, minlength=n_features)
    crow_F1 = torch.zeros(n_features + 1, dtype=torch.int64, device=cols_N.device)
    torch.cumsum(counts_F, 0, out=crow_F1[1:])
    return torch.sparse_csr_tensor(
        crow_F1, rows_N[order_N], values_N[order_N], (n_features, n_rows), check_invariants=False
    )


class SelectedPreacts(torch.autograd.Function):
    """pre_N = (xc·W_enc + b_enc) at the selected pairs, given the values from the dense forward.

    Backward touches only the selected columns (Sparse encoder backward, specs/kernels.md §4).
    """

    @staticmethod
    def forward(ctx, xc_BD, W_enc_DF, b_enc_F, crow_B1, cols_N, pre_N):
        ctx.save_for_backward(xc_BD, W_enc_DF, crow_B1, cols_N)
        return pre_N.detach().clone()

    @staticmethod
    def backward(ctx, grad_N):
        xc_BD, W_enc_DF, crow_B1, cols_N = ctx.saved_tensors
        n_features = W_enc_DF.shape[1]
        grad_xc = grad_W_enc = grad_b_enc = None
        if ctx.needs_input_grad[0]:
            grad_xc = _csr(crow_B1, cols_N, grad_N, n_features) @ W_enc_DF.T
        if ctx.needs_input_grad[1]:
            grad_W_enc = (_csr_transposed(crow_B1, cols_N, grad_N, n_features) @ xc_BD).T
        if ctx.needs_input_grad[2]:
            grad_b_enc = torch.zeros(n_features, dtype=grad_N.dtype, device=grad_N.device)
            grad_b_enc.index_add_(0, cols_N, grad_N)
        return grad_xc, grad_W_enc, grad_b_enc, None, None, None


class SparseDecode(torch.autograd.Function):
    """x̂ = S·W_dec for CSR codes S (no b_dec)."""

    @staticmethod
    def forward(ctx, values_N, crow_B1, cols_N, W_dec_FD):
        ctx.save_for_backward(values_N, crow_B1, cols_N, W_dec_FD)
        return _csr(crow_B1, cols_N, values_N, W_dec_FD.shape[0]) @ W_dec_FD

    @staticmethod
    def backward(ctx, grad_BD):
        values_N, crow_B1, cols_N, W_dec_FD = ctx.saved_tensors
        n_features = W_dec_FD.shape[0]
        grad_values = grad_W_dec = None
        grad_BD = grad_BD.contiguous()
        if ctx.needs_input_grad[0]:
            pattern = _csr(crow_B1, cols_N, torch.zeros_like(values_N), n_features)
            grad_values = torch.sparse.sampled_addmm(pattern, grad_BD, W_dec_FD.T).values()
        if ctx.needs_input_grad[3]:
            grad_W_dec = _csr_transposed(crow_B1, cols_N, values_N, n_features) @ grad_BD
        return grad_values, None, None, grad_W_dec


def selected_preacts(xc_BD, W_enc_DF, b_enc_F, crow_B1, cols_N, pre_N):
    """See ``SelectedPreacts``."""
    return SelectedPreacts.apply(xc_BD, W_enc_DF, b_enc_F, crow_B1, cols_N, pre_N)


def sparse_decode(values_N, crow_B1, cols_N, W_dec_FD):
    """See ``SparseDecode``."""
    if cols_N.numel() == 0:
        return values_N.new_zeros(crow_B1.numel() - 1, W_dec_FD.shape[1]) + 0 * W_dec_FD.sum()
    return SparseDecode.apply(values_N, crow_B1, cols_N, W_dec_FD)
