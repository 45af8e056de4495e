"""Run a block with a given number of torch intra-op threads.

The toy trainings here are many small tensor operations; each parallel op pays a fork-join cost that,
on a busy 2-core machine, was measured at ~15 ms, 10-100x the op itself. One thread avoids it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily use `n` torch intra-op threads (None: leave the setting alone)."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
