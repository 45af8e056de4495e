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
