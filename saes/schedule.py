"""Learning-rate rule and schedule (Gao et al. 2024 §2.4 / App. A)."""

from __future__ import annotations

import math

LONG_RUN_STEPS = 2500
"""Runs of at least this many steps get Gao et al.'s lr unchanged; shorter runs get more (``default_lr``)."""


def default_lr(d_sae: int, total_steps: int | None = None) -> float:
    """lr = 2e-4 / √(F / 2¹⁴) · max(1, √(LONG_RUN_STEPS / total_steps)).

    The first factor is Gao et al. 2024's rule, fitted on runs of thousands of steps. A short run (a
    notebook's 50 steps, the main job's 40-160) is still far from its optimum at that lr: Adam moves a
    weight by about lr per step, so how far a run gets grows with lr · steps. The second factor raises
    the lr of a short run by the square root of its shortfall, not all of it, since the step noise grows
    with the lr. LONG_RUN_STEPS = 2500 puts the rule at the main job's measured lr (1.5e-3 at F = 4608
    and 157 steps; analyses/pipeline/config.py). Measured on the README's notebook example (Mutual Choice,
    F = 4608, k = 32, 200k tokens of layer 12 = 49 steps), FVU on its training tokens / on 8k held-out
    tokens: Gao's 3.8e-4: 0.545 / 0.614; this rule's 2.7e-3: 0.191 / 0.314 (1.5e-3: 0.166 / 0.382;
    5e-3: 0.132 / 0.276 with 9.6 % of the features dead). total_steps=None: Gao's rule alone.
    """
    lr = 2e-4 / math.sqrt(d_sae / 2**14)
    if total_steps is None:
        return lr
    return lr * max(1.0, math.sqrt(LONG_RUN_STEPS / max(1, total_steps)))


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
