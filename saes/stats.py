"""Per-feature firing statistics kept in the SAE's buffers (saved with it):

- ``tokens_since_fired_F``: tokens since feature f last fired (dead ⇔ ≥ dead_tokens);
- ``freq_ema_F``: EMA of the fraction of tokens on which f fires (aux_zipf, zipf capacities).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import BaseSAE, ForwardOutput


@torch.no_grad()
def update_firing_stats(sae: BaseSAE, out: ForwardOutput, ema: float) -> Tensor:
    """Update both statistics from one batch; returns the batch's per-feature fire counts."""
    counts_F = out.codes.fired_counts()
    n_tokens = out.codes.n_rows
    sae.tokens_since_fired_F.add_(n_tokens).masked_fill_(counts_F > 0, 0)
    sae.freq_ema_F.mul_(ema).add_((1 - ema) * counts_F.float() / n_tokens)
    return counts_F


def dead_mask(sae: BaseSAE, dead_tokens: int) -> Tensor:
    """Features that did not fire in the last ``dead_tokens`` tokens."""
    return sae.tokens_since_fired_F >= dead_tokens


def default_dead_tokens(batch_size: int, total_tokens: int) -> int:
    """specs/saes.md: 10M tokens, scaled down for small runs (a tenth of the run, at least one batch)."""
    return max(batch_size, min(10_000_000, total_tokens // 10))


def dead_in_training(sae: BaseSAE) -> float | None:
    """Share of features dead by the training rule when training ended (no fire in the last
    ``dead_tokens`` tokens), from the counters saved with the SAE; None for an SAE without a
    training record (e.g. imported from SAELens)."""
    t = sae.cfg.training
    if not t or "batch_size" not in t or "total_tokens" not in t:
        return None
    window = t.get("dead_tokens") or default_dead_tokens(int(t["batch_size"]), int(t["total_tokens"]))
    return float(dead_mask(sae, int(window)).double().mean())
