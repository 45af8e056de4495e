"""A shuffling buffer: mixes rows from a stream of chunks into random batches with bounded memory.

Rows of aligned tensors (e.g. activations [n, d] and token ids [n]) are pushed chunk by chunk. When
the buffer holds ``capacity`` rows it is permuted, everything but a random half is emitted in batches,
and the kept half waits to be mixed with the next chunks (the scheme of SAELens' mixing buffer).
Every pushed row is emitted exactly once; memory never exceeds ``capacity`` + one chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

__all__ = ["ShuffleBuffer", "sequential_batches", "shuffled_batches"]


class ShuffleBuffer:
    """Buffer of up to ``capacity`` rows of aligned tensors; ``push`` and ``flush`` yield batches."""

    def __init__(self, capacity: int, batch_size: int, seed: int = 0, drop_last: bool = False):
        if batch_size < 1 or capacity < batch_size:
            raise ValueError(f"need 1 <= batch_size <= capacity, got batch_size={batch_size}, capacity={capacity}")
        self.capacity, self.batch_size, self.drop_last = capacity, batch_size, drop_last
        self.gen = torch.Generator().manual_seed(seed)
        self._chunks: list[tuple[Tensor, ...]] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def _merged(self) -> tuple[Tensor, ...]:
        if len(self._chunks) == 1:
            return self._chunks[0]
        return tuple(torch.cat(parts) for parts in zip(*self._chunks))

    def push(self, *tensors: Tensor) -> Iterator[tuple[Tensor, ...]]:
        """Add a chunk (tensors with the same number of rows); yield batches once the buffer is full."""
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError("tensors pushed together must have the same number of rows")
        if n:
            self._chunks.append(tensors)
            self._rows += n
        if self._rows >= self.capacity:
            keep = self.capacity // 2
            yield from self._emit(self._rows - keep)

    def flush(self) -> Iterator[tuple[Tensor, ...]]:
        """Yield everything left, shuffled (the last batch may be short unless ``drop_last``)."""
        yield from self._emit(self._rows, final=True)

    def _emit(self, n_out: int, final: bool = False) -> Iterator[tuple[Tensor, ...]]:
        if not self._rows:
            return
        merged = self._merged()
        perm = torch.randperm(self._rows, generator=self.gen)
        n_out = n_out if final else n_out - n_out % self.batch_size  # whole batches until the end
        out = tuple(t[perm[:n_out]] for t in merged)
        rest = tuple(t[perm[n_out:]] for t in merged)
        self._chunks, self._rows = ([rest], rest[0].shape[0]) if rest[0].shape[0] else ([], 0)
        for start in range(0, n_out, self.batch_size):
            batch = tuple(t[start:start + self.batch_size] for t in out)
            if batch[0].shape[0] == self.batch_size or not self.drop_last:
                yield batch


def shuffled_batches(chunks: Iterable[tuple[Tensor, ...]], batch_size: int, capacity: int, seed: int = 0,
                     drop_last: bool = False) -> Iterator[tuple[Tensor, ...]]:
    """Random batches from a stream of chunks through a ``ShuffleBuffer``."""
    buffer = ShuffleBuffer(max(capacity, batch_size), batch_size, seed, drop_last)
    for chunk in chunks:
        yield from buffer.push(*chunk)
    yield from buffer.flush()


def sequential_batches(chunks: Iterable[tuple[Tensor, ...]], batch_size: int,
                       drop_last: bool = False) -> Iterator[tuple[Tensor, ...]]:
    """Batches of exactly ``batch_size`` rows (the last may be short) in stream order."""
    pending: list[tuple[Tensor, ...]] = []
    rows = 0
    for chunk in chunks:
        pending.append(chunk)
        rows += chunk[0].shape[0]
        if rows >= batch_size:
            merged = tuple(torch.cat(parts) for parts in zip(*pending))
            n_full = rows - rows % batch_size
            for start in range(0, n_full, batch_size):
                yield tuple(t[start:start + batch_size] for t in merged)
            rest = tuple(t[n_full:] for t in merged)
            pending, rows = ([rest], rest[0].shape[0]) if rest[0].shape[0] else ([], 0)
    if rows and not drop_last:
        yield tuple(torch.cat(parts) for parts in zip(*pending))
