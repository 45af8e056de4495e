"""Plain-torch reference selection rules — the specification the fast paths must match.

Letters: B tokens, F features, K per-row budget, N selected (token, feature) pairs.
Every selection works on post-ReLU activations ``acts_BF = ReLU(pre_BF)`` and returns the
selected pairs as row-major sorted COO ``(rows_N, cols_N)``; entries with activation 0 are
dropped (ReLU(pre) = 0 contributes nothing, Gao et al. 2024 §2.3).

These are deliberately naive (flat ``torch.topk`` over B·F values); tests compare the fast paths
in ``selection.py`` against them.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _sorted_pairs(mask_BF: Tensor) -> tuple[Tensor, Tensor]:
    rows_N, cols_N = mask_BF.nonzero(as_tuple=True)
    return rows_N, cols_N


def topk_per_row_reference(acts_BF: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """TopK (Gao et al. 2024): each row keeps its k largest activations. Returns (values_BK, idx_BK)."""
    values_BK, idx_BK = acts_BF.topk(k, dim=1, sorted=False)
    return values_BK, idx_BK


def topm_global_reference(acts_BF: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """BatchTopK / Mutual Choice (Bussmann et al. 2024; Ayonrinde 2024): the m largest of B·F values."""
    flat = acts_BF.reshape(-1)
    m = min(m, flat.numel())
    _, idx = flat.topk(m, sorted=False)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[idx] = True
    mask &= flat > 0
    return _sorted_pairs(mask.view_as(acts_BF))


def topm_per_column_reference(acts_BF: Tensor, capacity_F: Tensor) -> tuple[Tensor, Tensor]:
    """Feature Choice (Ayonrinde 2024): column f keeps its capacity_F[f] largest activations."""
    n_rows = acts_BF.shape[0]
    cap_F = capacity_F.clamp(max=n_rows).to(torch.long)
    mask = torch.zeros_like(acts_BF, dtype=torch.bool)
    order_BF = acts_BF.argsort(dim=0, descending=True)
    rank_BF = torch.empty_like(order_BF)
    rank_BF.scatter_(0, order_BF, torch.arange(n_rows, device=acts_BF.device).unsqueeze(1).expand_as(order_BF).contiguous())
    mask = (rank_BF < cap_F.unsqueeze(0)) & (acts_BF > 0)
    return _sorted_pairs(mask)


def threshold_reference(acts_BF: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """JumpReLU-form inference: keep acts > θ (θ a scalar or per-feature [F])."""
    return _sorted_pairs(acts_BF > theta)
