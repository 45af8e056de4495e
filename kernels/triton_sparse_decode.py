"""Triton sparse decoder: x̂ = S·W_dec for CSR codes, with a sparse backward (specs/kernels.md §3).

Letters: B tokens, D = d_in, F features, N selected pairs (CSR: ``crow_B1``, ``cols_N``, ``values_N``).

    forward      x̂[b]      = Σ_{j ∈ row b} v_j · W_dec[c_j]                 (embedding-bag gather)
    backward     ∂v_j      = ∂x̂[row_j] · W_dec[c_j]                         (SDDMM: N dot products)
                 ∂W_dec[f] = Σ_{j : c_j = f} v_j · ∂x̂[row_j]                 (only touched rows ≠ 0)

The ∂W_dec scatter is done without atomics: the entries are regrouped by feature (one sort of N
ids, ``transpose_csr``) and each program owns a block of BLOCK_F features × BLOCK_D columns, summing
its entries with a one-hot tensor-core product  onehot·diag(v) [BLOCK_F, BLOCK_N] @ ∂x̂[rows] [BLOCK_N,
BLOCK_D]. That is deterministic, writes every row of ∂W_dec exactly once (zeros for untouched rows:
no memset) and can write either layout, which the encoder backward reuses for ∂W_enc [D, F].
The plain-torch reference is ``sparse_ops_reference.sparse_decode_reference``.
"""

from __future__ import annotations

from typing import Literal

import torch
import triton
import triton.language as tl
from torch import Tensor

from .triton_common import (
    FLOAT_DTYPES,
    TransposedCSR,
    check_csr,
    check_device,
    check_matrix,
    check_vector,
    dot_precision,
    interpreting,
    next_pow2,
    transpose_csr,
)


# ---- kernels ------------------------------------------------------------------------------------
@triton.jit
def _csr_gather_rows_kernel(w_ptr, crow_ptr, cols_ptr, table_ptr, out_ptr, D, stride_t, stride_o,
                            BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """out[b, d-block] = Σ_{j ∈ row b} w_j · table[cols_j, d-block]   (one program per (b, d-block))."""
    b = tl.program_id(0)
    dd = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_ok = dd < D
    start = tl.load(crow_ptr + b)
    end = tl.load(crow_ptr + b + 1)
    acc = tl.full((BLOCK_D,), 0, dtype=tl.float32)
    for e0 in range(start, end, BLOCK_N):
        ee = e0 + tl.arange(0, BLOCK_N)
        e_ok = ee < end
        c = tl.load(cols_ptr + ee, mask=e_ok, other=0)
        w = tl.load(w_ptr + ee, mask=e_ok, other=0.0).to(tl.float32)
        t = tl.load(table_ptr + c[:, None] * stride_t + dd[None, :], mask=e_ok[:, None] & d_ok[None, :], other=0.0)
        acc += tl.sum(w[:, None] * t.to(tl.float32), axis=0)
    tl.store(out_ptr + b * stride_o + dd, acc.to(out_ptr.dtype.element_ty), mask=d_ok)


@triton.jit
def _csr_row_dots_kernel(g_ptr, crow_ptr, cols_ptr, table_ptr, out_ptr, D, stride_g, stride_t,
                         BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """out_j = g[b] · table[cols_j] for the entries j of row b   (one program per row)."""
    b = tl.program_id(0)
    start = tl.load(crow_ptr + b)
    end = tl.load(crow_ptr + b + 1)
    for e0 in range(start, end, BLOCK_N):
        ee = e0 + tl.arange(0, BLOCK_N)
        e_ok = ee < end
        c = tl.load(cols_ptr + ee, mask=e_ok, other=0)
        acc = tl.full((BLOCK_N,), 0, dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            dd = d0 + tl.arange(0, BLOCK_D)
            d_ok = dd < D
            g = tl.load(g_ptr + b * stride_g + dd, mask=d_ok, other=0.0).to(tl.float32)
            t = tl.load(table_ptr + c[:, None] * stride_t + dd[None, :], mask=e_ok[:, None] & d_ok[None, :], other=0.0)
            acc += tl.sum(t.to(tl.float32) * g[None, :], axis=1)
        tl.store(out_ptr + ee, acc.to(out_ptr.dtype.element_ty), mask=e_ok)


@triton.jit
def _segment_outer_kernel(w_ptr, rows_ptr, cols_ptr, crowf_ptr, y_ptr, out_ptr, bias_ptr,
                          F, D, stride_y, stride_of, stride_od,
                          BLOCK_F: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                          WITH_BIAS: tl.constexpr, PRECISION: tl.constexpr):
    """out[f, d-block] = Σ_{sorted j : cols_j = f} w_j · y[rows_j, d-block] for a block of BLOCK_F
    features (entries sorted by feature); with WITH_BIAS also bias[f] = Σ_j w_j (d-block 0 stores it)."""
    pf = tl.program_id(0)
    pd = tl.program_id(1)
    ff = pf * BLOCK_F + tl.arange(0, BLOCK_F)
    dd = pd * BLOCK_D + tl.arange(0, BLOCK_D)
    f_ok = ff < F
    d_ok = dd < D
    start = tl.load(crowf_ptr + pf * BLOCK_F)
    end = tl.load(crowf_ptr + tl.minimum(pf * BLOCK_F + BLOCK_F, F))
    acc = tl.full((BLOCK_F, BLOCK_D), 0, dtype=tl.float32)
    bias = tl.full((BLOCK_F,), 0, dtype=tl.float32)
    for e0 in range(start, end, BLOCK_N):
        ee = e0 + tl.arange(0, BLOCK_N)
        e_ok = ee < end
        r = tl.load(rows_ptr + ee, mask=e_ok, other=0)
        c = tl.load(cols_ptr + ee, mask=e_ok, other=-1)
        w = tl.load(w_ptr + ee, mask=e_ok, other=0.0)
        onehot_w = tl.where(c[None, :] == ff[:, None], w[None, :], 0.0)  # [BLOCK_F, BLOCK_N]
        y = tl.load(y_ptr + r[:, None] * stride_y + dd[None, :], mask=e_ok[:, None] & d_ok[None, :], other=0.0)
        acc = tl.dot(onehot_w.to(y.dtype), y, acc, input_precision=PRECISION)
        if WITH_BIAS:
            bias += tl.sum(onehot_w.to(tl.float32), axis=1)
    out = out_ptr + ff[:, None] * stride_of + dd[None, :] * stride_od
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=f_ok[:, None] & d_ok[None, :])
    if WITH_BIAS:
        if pd == 0:
            tl.store(bias_ptr + ff, bias.to(bias_ptr.dtype.element_ty), mask=f_ok)


# ---- launchers ----------------------------------------------------------------------------------
def _block_d(D: int, cap: int) -> int:
    return min(cap, max(16, next_pow2(D)))


def gather_rows(weights_N: Tensor, crow_B1: Tensor, cols_N: Tensor, table_FD: Tensor) -> Tensor:
    """[B, D] with out[b] = Σ_{j ∈ row b} w_j · table[cols_j]; fp32 accumulation, table's dtype out.

    table_FD: contiguous [F, D] (W_dec, or W_encᵀ for the encoder's ∂x); weights_N: [N] same dtype.
    """
    check_device(weights_N=weights_N, crow_B1=crow_B1, cols_N=cols_N, table_FD=table_FD)
    check_csr(crow_B1, cols_N)
    check_matrix(table_FD, "table_FD", (None, None))
    check_vector(weights_N, "weights_N", cols_N.numel(), FLOAT_DTYPES)
    n_rows, D = crow_B1.numel() - 1, table_FD.shape[1]
    out_BD = torch.empty(n_rows, D, dtype=table_FD.dtype, device=table_FD.device)
    if n_rows == 0 or D == 0:
        return out_BD
    block_d = _block_d(D, 64 if interpreting() else 256)
    grid = (n_rows, triton.cdiv(D, block_d))
    _csr_gather_rows_kernel[grid](weights_N, crow_B1, cols_N, table_FD, out_BD, D, table_FD.stride(0),
                                  out_BD.stride(0), BLOCK_N=16, BLOCK_D=block_d)
    return out_BD


def row_dots(grad_BD: Tensor, crow_B1: Tensor, cols_N: Tensor, table_FD: Tensor) -> Tensor:
    """[N] with out_j = grad[row_j] · table[cols_j] (the SDDMM of the decoder backward)."""
    check_device(grad_BD=grad_BD, crow_B1=crow_B1, cols_N=cols_N, table_FD=table_FD)
    check_csr(crow_B1, cols_N)
    check_matrix(table_FD, "table_FD", (None, None))
    check_matrix(grad_BD, "grad_BD", (crow_B1.numel() - 1, table_FD.shape[1]))
    out_N = torch.empty(cols_N.numel(), dtype=table_FD.dtype, device=table_FD.device)
    if cols_N.numel() == 0:
        return out_N
    block_d = _block_d(table_FD.shape[1], 64 if interpreting() else 128)
    _csr_row_dots_kernel[(crow_B1.numel() - 1,)](grad_BD, crow_B1, cols_N, table_FD, out_N, table_FD.shape[1],
                                                 grad_BD.stride(0), table_FD.stride(0), BLOCK_N=16, BLOCK_D=block_d)
    return out_N


def segment_outer(weights_N: Tensor, tcsr: TransposedCSR, y_BD: Tensor, layout: Literal["FD", "DF"],
                  with_bias: bool = False) -> tuple[Tensor, Tensor | None]:
    """out[f] = Σ_{j : c_j = f} w_j · y[row_j] as [F, D] (layout "FD") or its transpose [D, F] ("DF");
    optionally bias[f] = Σ_{j : c_j = f} w_j. ``weights_N`` is in the original (row-major) order."""
    check_device(weights_N=weights_N, y_BD=y_BD, rows_N=tcsr.rows_N)
    check_matrix(y_BD, "y_BD", (None, None))
    check_vector(weights_N, "weights_N", tcsr.rows_N.numel(), FLOAT_DTYPES)
    if layout not in ("FD", "DF"):
        raise ValueError(f"layout must be 'FD' or 'DF', got {layout!r}")
    F, D = tcsr.crow_F1.numel() - 1, y_BD.shape[1]
    shape = (F, D) if layout == "FD" else (D, F)
    out = torch.empty(shape, dtype=y_BD.dtype, device=y_BD.device)
    bias_F = torch.empty(F, dtype=y_BD.dtype, device=y_BD.device) if with_bias else None
    if F == 0 or D == 0:
        return out, bias_F
    stride_of, stride_od = (out.stride(0), 1) if layout == "FD" else (1, out.stride(0))
    w_sorted = weights_N[tcsr.order_N].to(y_BD.dtype)
    if interpreting():
        block_f, block_n, block_d, warps = 16, 16, _block_d(D, 32), 4
    else:  # fp32 runs the one-hot product on FMA units ("ieee"): keep the one-hot side narrow
        block_f = 16 if y_BD.dtype == torch.float32 else 64
        block_n, block_d, warps = 32, _block_d(D, 128), 4
    grid = (triton.cdiv(F, block_f), triton.cdiv(D, block_d))
    _segment_outer_kernel[grid](w_sorted, tcsr.rows_N, tcsr.cols_N, tcsr.crow_F1, y_BD, out,
                                bias_F if with_bias else out, F, D, y_BD.stride(0), stride_of, stride_od,
                                BLOCK_F=block_f, BLOCK_N=block_n, BLOCK_D=block_d, WITH_BIAS=with_bias,
                                PRECISION=dot_precision(y_BD.dtype), num_warps=warps)
    return out, bias_F


# ---- autograd + public function -----------------------------------------------------------------
class TritonSparseDecode(torch.autograd.Function):
    """x̂ = S·W_dec (no b_dec); backward: ∂v by N dot products, ∂W_dec by a feature-grouped sum."""

    @staticmethod
    def forward(ctx, values_N, crow_B1, cols_N, W_dec_FD):
        ctx.save_for_backward(values_N, crow_B1, cols_N, W_dec_FD)
        return gather_rows(values_N, crow_B1, cols_N, W_dec_FD)

    @staticmethod
    def backward(ctx, grad_BD):
        values_N, crow_B1, cols_N, W_dec_FD = ctx.saved_tensors
        grad_BD = grad_BD.contiguous()
        grad_values = grad_W_dec = None
        if ctx.needs_input_grad[0]:
            grad_values = row_dots(grad_BD, crow_B1, cols_N, W_dec_FD)
        if ctx.needs_input_grad[3]:
            tcsr = transpose_csr(crow_B1, cols_N, W_dec_FD.shape[0])
            grad_W_dec, _ = segment_outer(values_N.detach(), tcsr, grad_BD, layout="FD")
        return grad_values, None, None, grad_W_dec


def sparse_decode(values_N: Tensor, crow_B1: Tensor, cols_N: Tensor, W_dec_FD: Tensor) -> Tensor:
    """x̂ = S·W_dec for CSR codes (no b_dec), differentiable in values_N and W_dec_FD.

    Same signature and results as ``sparse_ops_reference.sparse_decode_reference``.
    """
    check_device(values_N=values_N, crow_B1=crow_B1, cols_N=cols_N, W_dec_FD=W_dec_FD)
    check_csr(crow_B1, cols_N)
    check_matrix(W_dec_FD, "W_dec_FD", (None, None))
    check_vector(values_N, "values_N", cols_N.numel(), (W_dec_FD.dtype,))
    return TritonSparseDecode.apply(values_N, crow_B1, cols_N, W_dec_FD)
