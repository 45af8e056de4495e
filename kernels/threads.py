"""Intra-op thread policy for a CPU training step made of many small ops.

A step is one heavy encoder GEMM plus a few heavy kernels (selection passes over [B, F], the sparse
products) and dozens of small ops on [N], [F], [B, d] tensors. Each op large enough for PyTorch's
grain size opens an OpenMP parallel region. libgomp's idle workers spin between regions, so on a
machine with more runnable threads than cores (shared servers, CI) a worker is often descheduled when
the next region starts and every small region waits for it. Measured on a shared 2-core machine
(libgomp's default wait policy), a TopK step at d=576, F=4608, B=4096 took 971 ms without this policy
and 466 ms with it, and a toy step (d=64, F=1024, B=1024) 282 ms vs 8.6 ms; with
``OMP_WAIT_POLICY=PASSIVE`` both ways take the same (395 / 388 ms).

Inside ``small_ops_serial()`` every op runs on one thread — no region, nothing to wait for — and the
heavy kernels (≥ MIN_PARALLEL_WORK elements) opt back in with ``all_threads(work)``; at toy sizes the
whole step stays serial. Outside it ``all_threads`` does nothing. On a quiet machine the small ops lose
< 1 ms each. ``torch.set_num_threads`` is process-wide (~0.1 µs a call).

``torch_threads(n)`` is the plain form for a whole job (a toy training, the feature pass): ``n`` threads
inside the block, the previous count restored after it, even on an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_outer: int | None = None  # the thread count to use for heavy kernels while inside small_ops_serial
_heavy_depth = 0
MIN_PARALLEL_WORK = 1 << 22
"""Kernels touching fewer elements (or output elements, for a GEMM) stay on one thread (a few ms)."""


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` torch intra-op threads inside the block (None or 0: leave the setting alone); the previous
    count is restored on exit."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def small_ops_serial() -> Iterator[None]:
    """Run the enclosed ops on one intra-op thread, except inside ``all_threads()`` blocks."""
    global _outer
    if _outer is not None or torch.get_num_threads() == 1:
        yield
        return
    _outer = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(_outer)
        _outer = None


@contextmanager
def all_threads(work: int) -> Iterator[None]:
    """A heavy kernel touching ``work`` elements: use every intra-op thread even inside
    ``small_ops_serial()`` when work ≥ MIN_PARALLEL_WORK."""
    global _heavy_depth
    if _outer is None or _heavy_depth > 0 or work < MIN_PARALLEL_WORK:
        yield
        return
    _heavy_depth += 1
    torch.set_num_threads(_outer)
    try:
        yield
    finally:
        _heavy_depth -= 1
        torch.set_num_threads(1)
