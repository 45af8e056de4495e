"""Zipf-law helpers shared by Feature Choice's zipf capacities and aux_zipf_loss.

A frequency curve sorted descending, p_(r) for rank r = 1…F, is modelled as p*_r = C·r^(−s).
Every tensor is made on the device of the input it comes from (the profile on the one asked for).
"""

from __future__ import annotations

import torch
from torch import Tensor


def fit_zipf_exponent(freq_F: Tensor, head_fraction: float = 0.5, default: float = 1.0) -> float:
    """Least-squares slope s of log p_(r) = log C − s·log r over the head (ranks 1…F·head_fraction)
    of the descending frequency curve, ignoring zero frequencies. ``default`` when too few points."""
    p_sorted = freq_F.float().sort(descending=True).values
    head = p_sorted[: max(2, int(len(p_sorted) * head_fraction))]
    ranks = torch.arange(1, len(head) + 1, dtype=torch.float64, device=head.device)
    keep = head > 0
    if int(keep.sum()) < 3:
        return default
    lx, ly = ranks[keep].log(), head[keep].double().log()
    lx_c = lx - lx.mean()
    slope = float((lx_c * (ly - ly.mean())).sum() / (lx_c * lx_c).sum())
    return max(0.0, -slope)


def zipf_profile(n: int, s: float, total: float, *, device: torch.device | str) -> Tensor:
    """p*_r = C·r^(−s), r = 1…n, with C such that Σ_r p*_r = total (float64, on ``device``)."""
    shape = torch.arange(1, n + 1, dtype=torch.float64, device=device).pow(-s)
    return shape * (total / shape.sum())


def zipf_targets(signal_F: Tensor, s: float, total: float) -> Tensor:
    """Per feature, the Zipf target of its rank by ``signal_F`` (descending), float64 [F]:

        t_f = mean of p*_r over the ranks r that f's tie group {g : signal_g = signal_f} occupies,

    p*_r = C·r^(−s), Σ_r p*_r = total (so Σ_f t_f = total). Equal signals get equal targets: the
    result does not depend on the order of the features (a stable sort would rank ties by index)."""
    order_R = signal_F.argsort(descending=True)
    _, group_R, size_G = torch.unique_consecutive(signal_F[order_R], return_inverse=True, return_counts=True)
    by_rank_R = zipf_profile(signal_F.numel(), s, total, device=signal_F.device)
    # group sums from a prefix sum over ranks (no atomic index_add_: data-parallel ranks must agree bit for bit)
    cum_R = torch.cat([by_rank_R.new_zeros(1), by_rank_R.cumsum(0)])
    end_G = size_G.cumsum(0)
    mean_G = (cum_R[end_G] - cum_R[end_G - size_G]) / size_G
    target_F = torch.empty_like(by_rank_R)
    target_F[order_R] = mean_G[group_R]
    return target_F


def integer_capacities(target_F: Tensor, total: int, cap: int) -> Tensor:
    """Round non-negative targets to integers ≤ cap summing to min(total, cap·F) (largest remainder),
    moving mass that exceeds the cap to the other features in proportion to their targets."""
    n = target_F.numel()
    total = min(int(total), cap * n)
    target = target_F.double().clamp_min(0)
    clipped = torch.zeros(n, dtype=torch.bool, device=target.device)
    for _ in range(n):
        free_mass = total - cap * int(clipped.sum())
        weights = torch.where(clipped, 0.0, target)
        if weights.sum() <= 0:
            weights = torch.where(clipped, 0.0, 1.0).double()
        scaled = weights / weights.sum() * free_mass
        scaled = torch.where(clipped, float(cap), scaled)
        over = (scaled > cap) & ~clipped
        if not bool(over.any()):
            break
        clipped |= over
    base = scaled.floor().clamp(max=cap)
    short = total - int(base.sum())
    if short > 0:
        room = (base < cap)
        frac = torch.where(room, scaled - base, -1.0)
        base[frac.topk(short).indices] += 1
    return base.long()
