"""Learning-rate rule and schedule (Gao et al. 2024 §2.4 / App. A)."""

from __future__ import annotations

import math


def default_lr(d_sae: int) -> float:
    """lr = 2e-4 / sqrt(F / 2^14)."""
    return 2e-4 / math.sqrt(d_sae / 2**14)


def default_warmup(total_steps: int) -> int:
    """1000 steps, scaled down to 5 % of the run for short runs."""
    return max(1, min(1000, total_steps // 20))


def lr_factor(step: int, total_steps: int, warmup_steps: int, decay_fraction: float) -> float:
    """Linear warm-up over ``warmup_steps``, constant, then linear decay to 0 over the last fraction."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    decay_start = int(total_steps * (1 - decay_fraction))
    if step < decay_start or decay_fraction == 0:
        return warm
    remaining = max(0, total_steps - step)
    return warm * remaining / max(1, total_steps - decay_start)
