"""Matryoshka prefix losses on the sparse codes, all prefixes in one pass (no dense [B, F] tensor).

Letters: B tokens, D = d_in, F features, N selected pairs, L prefixes with ends F_1 < … < F_L.
Matryoshka SAEs (Bussmann et al. 2025; Nabeshima 2025; arXiv 2503.17547) train on

    Σ_l w_l · FVU_l,   FVU_l = Σ_b ‖x_b − x̂_b^(l)‖² / Σ_b ‖x_b − x̄‖²,   x̂^(l) = z[:, :F_l]·W_dec[:F_l] + b_dec.

The codes are (values, indices), so x̂^(l) is a partial sum over the selected pairs with index < F_l.
Each pair (b, f) belongs to exactly one bucket j (F_{j−1} ≤ f < F_j); sorting the pairs by (bucket, token)
turns them into a CSR matrix of L·B "bags", and one sparse decode gives every bucket's partial
reconstruction Δ_j [L, B, D]; the prefixes are their cumulative sum over j:

    x̂^(l) = b_dec + Σ_{j ≤ l} Δ_j.

Cost: one extra decode of the N pairs (the same work as the forward's decode) plus O(L·B·D) elementwise;
the backward is the sparse decode's own (SDDMM for the values, Sᵀ·G for W_dec) on the bucketed pattern.
SAELens' MatryoshkaBatchTopKTrainingSAE and dictionary_learning's MatryoshkaBatchTopKTrainer decode
each level from a dense [B, F] code matrix (dense slices); the values are the same (tested against the
dense reference in ``prefix_losses_reference.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import dispatch
from .prefix_losses_reference import prefix_fvus_reference
from .sparse_ops import sparse_decode

Decode = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def bucket_by_prefix(crow_B1: Tensor, cols_N: Tensor, prefix_ends: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """(order_N, crow_bags) — the pairs reordered by (prefix bucket, token) and the row pointers of the
    L·B bags (bag j·B + b holds token b's pairs with F_{j−1} ≤ f < F_j). Pairs with f ≥ F_L are dropped.

    Within a bag the pairs keep their (row-major, increasing-column) order: the sort is stable."""
    n_rows, L = crow_B1.numel() - 1, len(prefix_ends)
    ends_L = torch.tensor(prefix_ends, dtype=cols_N.dtype, device=cols_N.device)
    bucket_N = torch.bucketize(cols_N, ends_L, right=True)  # j with F_{j−1} ≤ f < F_j
    rows_N = torch.repeat_interleave(torch.arange(n_rows, device=cols_N.device), crow_B1.diff(),
                                     output_size=cols_N.numel())
    bag_N = bucket_N * n_rows + rows_N
    keep_N = bucket_N < L
    if not bool(keep_N.all()):
        bag_N = torch.where(keep_N, bag_N, L * n_rows)
    order_N = torch.argsort(bag_N, stable=True)
    if not bool(keep_N.all()):
        order_N = order_N[: int(keep_N.sum())]
    crow_bags = torch.zeros(L * n_rows + 1, dtype=torch.int64, device=cols_N.device)
    torch.cumsum(torch.bincount(bag_N[order_N], minlength=L * n_rows), 0, out=crow_bags[1:])
    return order_N, crow_bags


def check_prefix_ends(prefix_ends: tuple[int, ...], n_features: int) -> tuple[int, ...]:
    ends = tuple(int(e) for e in prefix_ends)
    if not ends or any(b <= a for a, b in zip(ends, ends[1:])) or ends[0] <= 0 or ends[-1] > n_features:
        raise ValueError(f"prefix ends must be strictly increasing in (0, {n_features}], got {list(prefix_ends)}")
    return ends


def prefix_fvus(values_N: Tensor, crow_B1: Tensor, cols_N: Tensor, W_dec_FD: Tensor, b_dec_D: Tensor,
                x_BD: Tensor, prefix_ends: tuple[int, ...]) -> Tensor:
    """The dispatch point (as ``kernels.dispatch``): the dense reference under ``SUPERSCOPE_KERNELS=reference``,
    else the bucketed sparse path with the backend's sparse decode (Triton on CUDA, embedding_bag on CPU)."""
    if dispatch.backend_for(W_dec_FD) == "reference":
        ends = check_prefix_ends(prefix_ends, W_dec_FD.shape[0])
        return prefix_fvus_reference(values_N, crow_B1, cols_N, W_dec_FD, b_dec_D, x_BD, ends)
    return prefix_fvus_sparse(values_N, crow_B1, cols_N, W_dec_FD, b_dec_D, x_BD, prefix_ends, dispatch.sparse_decode)


def prefix_fvus_sparse(values_N: Tensor, crow_B1: Tensor, cols_N: Tensor, W_dec_FD: Tensor, b_dec_D: Tensor,
                       x_BD: Tensor, prefix_ends: tuple[int, ...], decode: Decode = sparse_decode) -> Tensor:
    """FVU of every prefix's reconstruction → [L], differentiable in values, W_dec, b_dec and x.

    ``decode`` is the sparse decode to use (``kernels.dispatch.sparse_decode`` picks Triton on CUDA)."""
    ends = check_prefix_ends(prefix_ends, W_dec_FD.shape[0])
    n_rows, D, L = x_BD.shape[0], x_BD.shape[1], len(ends)
    if crow_B1.numel() != n_rows + 1:
        raise ValueError(f"codes have {crow_B1.numel() - 1} rows but x has {n_rows}; pass the batch the codes encode")
    order_N, crow_bags = bucket_by_prefix(crow_B1, cols_N, ends)
    delta_LBD = decode(values_N.index_select(0, order_N), crow_bags, cols_N.index_select(0, order_N),
                       W_dec_FD).view(L, n_rows, D)
    resid_LBD = (x_BD - b_dec_D) - delta_LBD.cumsum(0)
    den = (x_BD - x_BD.mean(0, keepdim=True)).pow(2).sum().clamp_min(1e-12)
    return resid_LBD.pow(2).sum(dim=(1, 2)) / den
