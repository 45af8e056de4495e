"""Fused TopK encoder: GEMM + b_enc + per-row top-k in the epilogue (specs/kernels.md §1).

Letters: B tokens, D = d_in, F features, K = k, T = number of F-tiles, C = candidates kept per tile.

    pre[b, f] = xc[b] · W_enc[:, f] + b_enc[f]        (never written to memory unless asked)
    (values_BK, indices_BK) = top-k_f pre[b, f]          (Gao et al. 2024 §2.3; ReLU comes after)

Each program computes one [BLOCK_B, BLOCK_F] tile of pre with tensor-core dots and keeps only the C
largest entries of each row of its tile: C rounds of "row max with its position (one reduction),
then knock that position out" — no sort network, nothing beyond the accumulator tile in registers.
The C·T candidates per row are merged by ``torch.topk`` (C·T ≪ F).

Exactness: a tile can hold more than C of a row's top-k. Let v_k be the k-th largest candidate of
the row; candidates are a subset, so v_k ≤ the true k-th value. Every element a tile did not keep is
≤ that tile's C-th candidate. So if, for every full tile, the C-th candidate is < v_k, no dropped
element can belong to the top-k and the merge is exact; rows that fail this check (rare: C is sized
from the expected number k·BLOCK_F/F of top-k entries per tile) are recomputed densely.
The reference is the dense GEMM + ``torch.topk`` of ``dispatch._encode_topk_torch``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from .triton_common import (
    FLOAT_DTYPES,
    check_device,
    check_matrix,
    check_vector,
    dot_precision,
    interpreting,
    next_pow2,
)

GPU_BLOCK_F = 128  # fixed across autotuned configs: it sets the candidate buffer's shape
INTERPRETER_META = {"BLOCK_B": 16, "BLOCK_F": 32, "BLOCK_D": 16, "GROUP_B": 4}


@triton.jit
def _encode_topk_kernel(x_ptr, w_ptr, b_ptr, cand_val_ptr, cand_idx_ptr, pre_ptr,
                        B, D, F, stride_xb, stride_wd, stride_cand, stride_pre,
                        C: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_F: tl.constexpr, BLOCK_D: tl.constexpr,
                        GROUP_B: tl.constexpr, EVEN_D: tl.constexpr, STORE_PRE: tl.constexpr,
                        PRECISION: tl.constexpr):
    # Grouped launch order (Triton matmul tutorial): GROUP_B row blocks sweep the F tiles together,
    # so each W_enc tile is read from HBM once per group and from L2 otherwise.
    pid = tl.program_id(0)
    n_pid_b = tl.cdiv(B, BLOCK_B)
    n_pid_f = tl.cdiv(F, BLOCK_F)
    per_group = GROUP_B * n_pid_f
    first_b = (pid // per_group) * GROUP_B
    size_b = tl.minimum(n_pid_b - first_b, GROUP_B)
    pid_b = first_b + (pid % per_group) % size_b
    pid_f = (pid % per_group) // size_b

    rb = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    rf = pid_f * BLOCK_F + tl.arange(0, BLOCK_F)
    rd = tl.arange(0, BLOCK_D)
    x_ptrs = x_ptr + (rb % B)[:, None] * stride_xb + rd[None, :]  # wrap, don't mask: extra rows/cols
    w_ptrs = w_ptr + rd[:, None] * stride_wd + (rf % F)[None, :]  # are dropped below
    acc = tl.full((BLOCK_B, BLOCK_F), 0, dtype=tl.float32)
    for i in range(0, tl.cdiv(D, BLOCK_D)):
        if EVEN_D:
            a = tl.load(x_ptrs)
            w = tl.load(w_ptrs)
        else:
            left = D - i * BLOCK_D
            a = tl.load(x_ptrs, mask=rd[None, :] < left, other=0.0)
            w = tl.load(w_ptrs, mask=rd[:, None] < left, other=0.0)
        acc = tl.dot(a, w, acc, input_precision=PRECISION)
        x_ptrs += BLOCK_D
        w_ptrs += BLOCK_D * stride_wd
    pre = acc + tl.load(b_ptr + rf % F).to(tl.float32)[None, :]
    row_ok = rb < B
    col_ok = rf < F
    if STORE_PRE:
        tl.store(pre_ptr + rb[:, None] * stride_pre + rf[None, :], pre.to(pre_ptr.dtype.element_ty),
                 mask=row_ok[:, None] & col_ok[None, :])

    # tile top-C: C rounds of (row max with its position, then knock that one position out)
    pre = tl.where(col_ok[None, :], pre, float("-inf"))  # padding columns never win
    lanes = tl.arange(0, BLOCK_F)
    rc = tl.arange(0, C)
    val = tl.full((BLOCK_B, C), float("-inf"), dtype=tl.float32)
    idx = tl.full((BLOCK_B, C), 0, dtype=tl.int32)
    for c in tl.static_range(C):
        m, at = tl.max(pre, axis=1, return_indices=True, return_indices_tie_break_left=True)
        val = tl.where(rc[None, :] == c, m[:, None], val)
        idx = tl.where(rc[None, :] == c, pid_f * BLOCK_F + at[:, None], idx)
        pre = tl.where(lanes[None, :] == at[:, None], float("-inf"), pre)
    off = rb[:, None] * stride_cand + pid_f * C + rc[None, :]
    tl.store(cand_val_ptr + off, val, mask=row_ok[:, None])
    tl.store(cand_idx_ptr + off, idx, mask=row_ok[:, None])


def _gpu_configs() -> list:
    # (BLOCK_B, BLOCK_D, warps, stages); configs that exceed shared memory (fp32) are skipped by the tuner
    shapes = [(256, 64, 8, 3), (128, 64, 8, 3), (128, 64, 4, 4), (64, 32, 4, 4)]
    return [triton.Config({"BLOCK_B": bb, "BLOCK_D": bd, "GROUP_B": 8}, num_warps=w, num_stages=s)
            for bb, bd, w, s in shapes]


_encode_topk_tuned = triton.autotune(configs=_gpu_configs(), key=["D", "F", "C", "STORE_PRE", "PRECISION"])(
    triton.heuristics({"EVEN_D": lambda a: a["D"] % a["BLOCK_D"] == 0})(_encode_topk_kernel)
)


class EncodeTopKOutput(NamedTuple):
    """Result of ``fused_encode_topk``."""

    values_BK: Tensor
    """Pre-activations of the k selected features per row (x's dtype; unordered within a row)."""
    indices_BK: Tensor
    """Their feature ids (int64 by default, int32 on request)."""
    preacts_BF: Tensor | None
    """Dense pre-activations when ``return_preacts`` (e.g. for AuxK), else None."""
    n_recomputed_rows: int
    """Rows whose tile candidates could have been truncated and were recomputed densely."""


def candidates_per_tile(k: int, block_f: int, n_features: int) -> int:
    """C: a power of two well above the expected number λ = k·BLOCK_F/F of a row's top-k per tile."""
    lam = k * block_f / n_features
    return min(next_pow2(math.ceil(lam + 4 * math.sqrt(lam) + 2)), next_pow2(k), block_f)


def fused_encode_topk(xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor, k: int, *, return_preacts: bool = False,
                      index_dtype: torch.dtype = torch.int64, candidates: int | None = None) -> EncodeTopKOutput:
    """Per-row top-k of xc·W_enc + b_enc without materialising [B, F] (see module docstring).

    xc_BD [B, D] and W_enc_DF [D, F] contiguous, b_enc_F [F], one float dtype; ``candidates`` overrides C
    (a power of two; tests use it to force the exact-recompute path).
    """
    check_device(xc_BD=xc_BD, W_enc_DF=W_enc_DF, b_enc_F=b_enc_F)
    check_matrix(W_enc_DF, "W_enc_DF", (None, None))
    D, F = W_enc_DF.shape
    check_matrix(xc_BD, "xc_BD", (None, D), dtypes=(W_enc_DF.dtype,))
    check_vector(b_enc_F, "b_enc_F", F, (W_enc_DF.dtype,))
    if not 0 < k <= F:
        raise ValueError(f"k must satisfy 0 < k ≤ F = {F}, got {k}")
    if index_dtype not in (torch.int32, torch.int64):
        raise ValueError(f"index_dtype must be torch.int32 or torch.int64, got {index_dtype}")
    if W_enc_DF.dtype not in FLOAT_DTYPES:
        raise ValueError(f"unsupported dtype {W_enc_DF.dtype}")
    B = xc_BD.shape[0]
    meta = dict(INTERPRETER_META) if interpreting() else {"BLOCK_F": GPU_BLOCK_F}
    block_f = meta["BLOCK_F"]
    n_tiles = triton.cdiv(F, block_f)
    least = min(next_pow2(triton.cdiv(k, n_tiles)), block_f)  # C·T ≥ k candidates per row
    C = candidates or max(least, candidates_per_tile(k, block_f, F))
    if C & (C - 1) or not least <= C <= block_f:
        raise ValueError(f"candidates must be a power of two in [{least}, {block_f}] (k={k}, {n_tiles} tiles), got {C}")
    dev = xc_BD.device
    cand_val = torch.empty(B, n_tiles * C, dtype=torch.float32, device=dev)
    cand_idx = torch.empty(B, n_tiles * C, dtype=torch.int32, device=dev)
    pre_BF = torch.empty(B, F, dtype=xc_BD.dtype, device=dev) if return_preacts else None
    if B == 0:
        return EncodeTopKOutput(xc_BD.new_empty(0, k), torch.empty(0, k, dtype=index_dtype, device=dev), pre_BF, 0)
    args = (xc_BD, W_enc_DF, b_enc_F, cand_val, cand_idx, pre_BF if return_preacts else cand_val,
            B, D, F, xc_BD.stride(0), W_enc_DF.stride(0), cand_val.stride(0), F)
    common = dict(C=C, STORE_PRE=return_preacts, PRECISION=dot_precision(xc_BD.dtype))
    if interpreting():  # @triton.autotune needs a GPU driver: call the kernel with explicit meta-parameters
        grid = (triton.cdiv(B, meta["BLOCK_B"]) * n_tiles,)
        _encode_topk_kernel[grid](*args, **meta, **common, EVEN_D=D % meta["BLOCK_D"] == 0)
    else:
        grid = lambda META: (triton.cdiv(B, META["BLOCK_B"]) * n_tiles,)  # noqa: E731
        _encode_topk_tuned[grid](*args, BLOCK_F=block_f, **common)
    values_BK, indices_BK, n_bad = _merge(cand_val, cand_idx, k, C, block_f, F, xc_BD, W_enc_DF, b_enc_F)
    return EncodeTopKOutput(values_BK.to(xc_BD.dtype), indices_BK.to(index_dtype), pre_BF, n_bad)


def _merge(cand_val: Tensor, cand_idx: Tensor, k: int, C: int, block_f: int, F: int,
           xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor) -> tuple[Tensor, Tensor, int]:
    """Top-k among the tile candidates, then the truncation check and exact recompute (docstring)."""
    values_BK, pos_BK = cand_val.topk(k, dim=1, sorted=False)
    indices_BK = cand_idx.gather(1, pos_BK).to(torch.int64)
    if C >= min(k, block_f):  # every tile kept all it could contribute: nothing can be truncated
        return values_BK, indices_BK, 0
    B, n_tiles = cand_val.shape[0], cand_val.shape[1] // C
    width_T = torch.full((n_tiles,), block_f, device=cand_val.device)
    width_T[-1] = F - block_f * (n_tiles - 1)
    tile_min_BT = cand_val.view(B, n_tiles, C)[:, :, C - 1]
    kth_B = values_BK.min(dim=1).values
    suspect_B = ((tile_min_BT >= kth_B[:, None]) & (width_T > C)[None, :]).any(dim=1)
    rows = suspect_B.nonzero().squeeze(1)
    if rows.numel():
        with torch.no_grad():
            pre_RF = torch.addmm(b_enc_F, xc_BD[rows], W_enc_DF).float()
        exact_v, exact_i = pre_RF.topk(k, dim=1, sorted=False)
        values_BK[rows] = exact_v
        indices_BK[rows] = exact_i
    return values_BK, indices_BK, int(rows.numel())


def encode_topk(xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``dispatch.encode_topk`` signature: (pre_values_BK, indices_BK int64), no autograd."""
    out = fused_encode_topk(xc_BD.contiguous(), W_enc_DF.contiguous(), b_enc_F.contiguous(), k)
    return out.values_BK, out.indices_BK
