"""Training batch streams over an activation source (anything with ``.batches`` and ``.n_tokens``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import Tensor


def epoch_batches(source: Any, batch_size: int, total_tokens: int, seed: int) -> Iterator[Tensor]:
    """Shuffled full batches over as many epochs as ``total_tokens`` needs (epoch e reshuffles with
    seed + 1000·e). Deterministic, so a resumed run and every rank of a distributed one see the same
    stream."""
    if source.n_tokens < batch_size:
        raise ValueError(f"only {source.n_tokens} activations at {source.hook}, fewer than one batch of {batch_size}")
    seen, epoch = 0, 0
    while seen < total_tokens:
        for x in source.batches(batch_size, shuffle=True, seed=seed + 1000 * epoch, drop_last=True):
            yield x
            seen += x.shape[0]
            if seen >= total_tokens:
                return
        epoch += 1
