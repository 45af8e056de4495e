"""Triton batch-level selection: global top-M (BatchTopK / Mutual Choice) and per-column top-m_f
(Feature Choice), by threshold search + one fused compaction pass (specs/kernels.md §2).

Letters: B tokens, F features, M the batch budget, N selected pairs, P candidates (P ≳ M).
Both rules work on post-ReLU activations and keep only positive entries (Gao et al. 2024 §2.3).

1. A lower bound t of the threshold (scalar, or t_f per column) such that, once verified, every
   selected entry satisfies a ≥ t:
   - global: t = a high-rank order statistic of a fixed random sample of the B·F values; the pass
     counts the candidates, and if fewer than M came out (t too high) it retries with a lower rank —
     so the result is exact whatever the sample (Bussmann et al. 2024; Ayonrinde 2024 select the
     same set);
   - per column: rows are cut into G groups and t_f = the m_f-th largest group maximum of column f,
     a guaranteed bound (m_f distinct groups hold an element ≥ t_f); columns with m_f > G take all
     their positives.
2. ``_compact_kernel`` reads [B, F] once and appends the entries a ≥ t (a > 0) to a candidate list
   (one atomic reservation per tile, positions by an in-tile prefix sum).
3. Exact selection among the P candidates (``torch.topk`` / a per-column rank), then the CSR.
Never a flat sort of B·F values. References: ``selection_reference.topm_*_reference``.
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from .sparse_codes import crow_from_rows
from .triton_common import FLOAT_DTYPES, check_device, check_matrix, interpreting

SAMPLE_SIZE = 1 << 16
SAFETY = 1.5  # sample rank ≈ SAFETY·expected + slack: the first pass almost always finds ≥ M


@triton.jit
def _compact_kernel(acts_ptr, thr_ptr, out_idx_ptr, out_val_ptr, counter_ptr, R, F, stride_r, capacity,
                    PER_COLUMN: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Append (r·F + c, a) for every a[r, c] > 0 with a ≥ t (t scalar or t[c]) to the output lists."""
    rr = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cc = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    inside = (rr < R)[:, None] & (cc < F)[None, :]
    a = tl.load(acts_ptr + rr[:, None] * stride_r + cc[None, :], mask=inside, other=0.0).to(tl.float32)
    if PER_COLUMN:
        t = tl.load(thr_ptr + cc, mask=cc < F, other=float("inf"))[None, :]
    else:
        t = tl.load(thr_ptr)
    keep = (inside & (a >= t) & (a > 0.0)).to(tl.int32)
    per_row = tl.sum(keep, axis=1)
    n = tl.sum(per_row, axis=0)
    if n > 0:
        base = tl.atomic_add(counter_ptr, n)
        pos = base + (tl.cumsum(per_row, axis=0) - per_row)[:, None] + tl.cumsum(keep, axis=1) - keep
        ok = (keep > 0) & (pos < capacity)
        lin = rr[:, None].to(tl.int64) * F + cc[None, :]
        tl.store(out_idx_ptr + pos, lin, mask=ok)
        tl.store(out_val_ptr + pos, a, mask=ok)


def _compact(acts_BF: Tensor, thr: Tensor, per_column: bool, capacity: int) -> tuple[Tensor, Tensor]:
    """Candidates (linear index int64 [P], value fp32 [P]) with a ≥ thr and a > 0; grows the buffer
    and reruns when the first guess of P was too small."""
    R, F = acts_BF.shape
    # big tiles: one atomic reservation per 16k entries keeps the shared counter uncontended
    block_r, block_c, warps = (16, 32, 4) if interpreting() else (64, 256, 8)
    grid = (triton.cdiv(R, block_r), triton.cdiv(F, block_c))
    capacity = max(capacity, 1024)
    for _ in range(2):
        counter = torch.zeros(1, dtype=torch.int32, device=acts_BF.device)
        out_idx = torch.empty(capacity, dtype=torch.int64, device=acts_BF.device)
        out_val = torch.empty(capacity, dtype=torch.float32, device=acts_BF.device)
        _compact_kernel[grid](acts_BF, thr, out_idx, out_val, counter, R, F, acts_BF.stride(0), capacity,
                              PER_COLUMN=per_column, BLOCK_R=block_r, BLOCK_C=block_c, num_warps=warps)
        count = int(counter.item())
        if count <= capacity:
            return out_idx[:count], out_val[:count]
        capacity = count
    raise RuntimeError("candidate count changed between two identical passes")  # unreachable


def _csr_from_linear(lin_N: Tensor, n_rows: int, n_cols: int) -> tuple[Tensor, Tensor]:
    lin_N = lin_N.sort().values
    return crow_from_rows(lin_N // n_cols, n_rows), lin_N % n_cols


def _check_acts(acts_BF: Tensor) -> None:
    check_device(acts_BF=acts_BF)
    check_matrix(acts_BF, "acts_BF", (None, None), dtypes=FLOAT_DTYPES)
    if acts_BF.numel() >= 2**31:
        raise ValueError(f"acts_BF has {acts_BF.numel()} entries; the kernel counts in int32 (< 2^31): split the batch")


def topm_global(acts_BF: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """CSR (crow_B1, cols_N) of the m largest positive activations of the whole batch."""
    _check_acts(acts_BF)
    n_rows, n_cols = acts_BF.shape
    flat = acts_BF.reshape(-1)
    numel = flat.numel()
    if m <= 0 or numel == 0:
        return crow_from_rows(flat.new_zeros(0, dtype=torch.int64), n_rows), flat.new_zeros(0, dtype=torch.int64)
    sample = flat[_sample_positions(numel, str(flat.device))].float()
    expected = m * sample.numel() / numel
    rank = int(SAFETY * expected + 4 * math.sqrt(expected) + 8)
    while True:
        if rank < sample.numel():
            thr = sample.topk(rank, sorted=False).values.min().clamp_min(0).reshape(1)
        else:
            thr = sample.new_zeros(1)  # all positives are candidates
        capacity = int(1.25 * min(rank, sample.numel()) * numel / sample.numel()) + 4096
        lin_P, val_P = _compact(acts_BF, thr, per_column=False, capacity=min(capacity, numel))
        if lin_P.numel() >= m or float(thr) <= 0:
            break
        rank *= 4  # the bound was above the M-th value: lower it
    if lin_P.numel() > m:
        lin_P = lin_P[val_P.topk(m, sorted=False).indices]
    return _csr_from_linear(lin_P, n_rows, n_cols)


@functools.lru_cache(maxsize=8)
def _sample_positions(numel: int, device: str) -> Tensor:
    """Fixed random positions per shape (seeded by it: deterministic, independent of the global RNG)."""
    gen = torch.Generator().manual_seed(numel)
    return torch.randint(numel, (min(SAMPLE_SIZE, numel),), generator=gen, device="cpu").to(device)


def _column_bounds(acts_BF: Tensor, cap_F: Tensor) -> Tensor:
    """t_f ≤ the cap_F[f]-th largest value of column f (group-maximum bound; 0 = take all positives)."""
    n_rows, n_cols = acts_BF.shape
    group = max(1, n_rows // max(128, 4 * int(cap_F.float().mean().ceil())))
    n_full = n_rows // group
    gmax_GF = acts_BF[: n_full * group].view(n_full, group, n_cols).amax(1).float()
    if n_full * group < n_rows:
        gmax_GF = torch.cat([gmax_GF, acts_BF[n_full * group:].amax(0, keepdim=True).float()])
    n_groups = gmax_GF.shape[0]
    small_F = (cap_F > 0) & (cap_F <= n_groups)
    thr_F = torch.where(cap_F > 0, 0.0, math.inf).to(torch.float32)
    top = int(torch.where(small_F, cap_F, 0).max()) if n_cols else 0
    if top > 0:
        kth_F = gmax_GF.topk(top, dim=0).values.gather(0, (cap_F.clamp(1, top) - 1).unsqueeze(0)).squeeze(0)
        thr_F = torch.where(small_F, kth_F.clamp_min(0), thr_F)
    return thr_F.contiguous()


def topm_per_column(acts_BF: Tensor, capacity_F: Tensor) -> tuple[Tensor, Tensor]:
    """CSR (crow_B1, cols_N) of each column's capacity_F[f] largest positive activations."""
    _check_acts(acts_BF)
    n_rows, n_cols = acts_BF.shape
    if capacity_F.shape != (n_cols,):
        raise ValueError(f"capacity_F must have shape [{n_cols}] (one capacity per feature), got {tuple(capacity_F.shape)}")
    cap_F = capacity_F.to(device=acts_BF.device, dtype=torch.int64).clamp(0, n_rows)
    thr_F = _column_bounds(acts_BF, cap_F)
    budget = int(cap_F.sum())
    lin_P, val_P = _compact(acts_BF, thr_F, per_column=True, capacity=2 * budget + 4096)
    cols_P = lin_P % n_cols
    order = torch.argsort(val_P, descending=True, stable=True)  # rank inside each column, by value
    order = order[torch.argsort(cols_P[order], stable=True)]
    counts_F = torch.bincount(cols_P, minlength=n_cols)
    starts_F = torch.cumsum(counts_F, 0) - counts_F
    sorted_cols = cols_P[order]
    rank = torch.arange(order.numel(), device=order.device) - starts_F[sorted_cols]
    keep = order[rank < cap_F[sorted_cols]]
    return _csr_from_linear(lin_P[keep], n_rows, n_cols)
