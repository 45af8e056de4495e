"""Data-dependent initialisation: input scale and geometric-median b_dec (Gao et al. 2024, App. A)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def input_scale_for(x_BD: Tensor) -> float:
    """Constant s with E‖s·x‖² = d_in, estimated on x."""
    mean_sq = float(x_BD.double().pow(2).sum(1).mean())
    if not math.isfinite(mean_sq) or mean_sq <= 0:
        raise ValueError("cannot estimate the input scale: activations are all zero or not finite")
    return math.sqrt(x_BD.shape[1] / mean_sq)


@torch.no_grad()
def geometric_median(x_BD: Tensor, max_iter: int = 100, tol: float = 1e-6) -> Tensor:
    """Weiszfeld's algorithm: argmin_m Σ_b ‖x_b − m‖, ≤ max_iter iterations from the mean."""
    x = x_BD.double()
    median = x.mean(0)
    for _ in range(max_iter):
        dist_B = (x - median).norm(dim=1).clamp_min(1e-12)
        weights = 1.0 / dist_B
        new = (weights[:, None] * x).sum(0) / weights.sum()
        moved = float((new - median).norm())
        median = new
        if moved <= tol * max(1.0, float(median.norm())):
            break
    return median.to(x_BD.dtype)
