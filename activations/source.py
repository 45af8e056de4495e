"""Activation sources: the object ``harvest`` returns for each hook, and what trainers and probes read.

An ``ActivationSource`` holds the activations of one hook as rows, one per harvested token position,
in corpus order, split into parts (shards on disk, or chunks in memory). Each row has

    acts [d] (float32 on read) · token_ids (the token at that position) · context_ids · positions

and the source keeps the contexts themselves ``[n_contexts, context_len]`` so any row can be shown
in its context (dashboard top examples). BOS positions are not rows unless harvested with keep_bos.

``batches`` streams float32 ``[B, d]`` tensors, shuffled through a bounded ``ShuffleBuffer`` (blocks
of rows are read in a seeded random order, then mixed); ``pairs`` streams ``(token_ids [B], acts [B, d])``.
Iterating a source yields ``batches(4096, shuffle=True, seed=0)``, so ``train(cfg, source)`` works.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from .buffer import sequential_batches, shuffled_batches

__all__ = ["FIELDS", "ActivationSource", "MemorySource"]

FIELDS = ("acts", "token_ids", "context_ids", "positions")
_BLOCK_ROWS = 2048  # rows read at a time; the shuffle order is over blocks, then rows mix in the buffer


class ActivationSource:
    """Rows of one hook's activations (abstract: subclasses say how parts are stored and read)."""

    hook: str
    d: int
    context_len: int
    meta: dict[str, Any]
    default_batch_size = 4096

    # ---- storage interface -------------------------------------------------------------------
    def _part_lengths(self) -> list[int]:
        raise NotImplementedError

    def _read(self, part: int, start: int, stop: int, field: str) -> Tensor:
        raise NotImplementedError

    def _part_contexts(self, part: int) -> Tensor:
        raise NotImplementedError

    # ---- public API --------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        """Number of rows (token positions) held."""
        return sum(self._part_lengths())

    def __len__(self) -> int:
        return self.n_tokens

    def __iter__(self) -> Iterator[Tensor]:
        return self.batches(self.default_batch_size, shuffle=True, seed=0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hook={self.hook!r}, d={self.d}, n_tokens={self.n_tokens})"

    def _chunks(self, fields: tuple[str, ...], shuffle: bool, seed: int) -> Iterator[tuple[Tensor, ...]]:
        blocks = [(p, s, min(s + _BLOCK_ROWS, n)) for p, n in enumerate(self._part_lengths())
                  for s in range(0, n, _BLOCK_ROWS)]
        if shuffle:
            random.Random(seed).shuffle(blocks)
        for part, start, stop in blocks:
            yield tuple(self._read(part, start, stop, f) for f in fields)

    def _stream(self, fields: tuple[str, ...], batch_size: int, shuffle: bool, seed: int, drop_last: bool,
                buffer_tokens: int) -> Iterator[tuple[Tensor, ...]]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        chunks = self._chunks(fields, shuffle, seed)
        if shuffle:
            return shuffled_batches(chunks, batch_size, buffer_tokens, seed, drop_last)
        return sequential_batches(chunks, batch_size, drop_last)

    def batches(self, batch_size: int = 4096, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                buffer_tokens: int = 2**16) -> Iterator[Float[Tensor, "batch d"]]:
        """One pass over all rows as float32 ``[B, d]`` batches. Shuffled through a buffer of
        ``buffer_tokens`` rows (memory ≈ buffer_tokens·d·4 bytes) unless ``shuffle=False`` (corpus order)."""
        yield from (acts for (acts,) in self._stream(("acts",), batch_size, shuffle, seed, drop_last, buffer_tokens))

    def pairs(self, batch_size: int = 4096, shuffle: bool = False, seed: int = 0,
              buffer_tokens: int = 2**16) -> Iterator[tuple[Int[Tensor, " batch"], Float[Tensor, "batch d"]]]:
        """One pass as ``(token_ids [B] int64, acts [B, d] float32)``; corpus order unless ``shuffle``."""
        yield from self._stream(("token_ids", "acts"), batch_size, shuffle, seed, False, buffer_tokens)

    def rows(self, batch_size: int = 4096) -> Iterator[dict[str, Tensor]]:
        """Corpus-order batches of every field: ``{"acts", "token_ids", "context_ids", "positions"}``."""
        for batch in self._stream(FIELDS, batch_size, False, 0, False, batch_size):
            yield dict(zip(FIELDS, batch))

    def _field(self, field: str) -> Tensor:
        parts = [self._read(p, 0, n, field) for p, n in enumerate(self._part_lengths())]
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)

    def token_ids(self) -> Int[Tensor, " n_tokens"]:
        """Token id of every row (int64), aligned with the rows of ``batches(shuffle=False)``."""
        return self._field("token_ids")

    def locations(self) -> tuple[Int[Tensor, " n_tokens"], Int[Tensor, " n_tokens"]]:
        """(context index, position in context) of every row; ``contexts()[c, p]`` is the row's token."""
        return self._field("context_ids"), self._field("positions")

    def contexts(self) -> Int[Tensor, "n_contexts context_len"]:
        """All harvested contexts (int64 token ids, BOS first), indexed by ``context_ids``."""
        parts = [self._part_contexts(p) for p in range(len(self._part_lengths()))]
        return torch.cat(parts) if parts else torch.empty(0, self.context_len, dtype=torch.int64)


class MemorySource(ActivationSource):
    """Rows kept in memory, as a list of parts ``{field: tensor}`` plus each part's contexts."""

    def __init__(self, hook: str, d: int, context_len: int, parts: list[dict[str, Tensor]],
                 meta: dict[str, Any] | None = None):
        self.hook, self.d, self.context_len, self.meta = hook, d, context_len, dict(meta or {})
        for part in parts:
            missing = {*FIELDS, "contexts"} - set(part)
            if missing:
                raise ValueError(f"part lacks fields {sorted(missing)}")
            if part["acts"].ndim != 2 or part["acts"].shape[1] != d:
                raise ValueError(f"acts must be [n, {d}], got {list(part['acts'].shape)}")
        self.parts = parts

    def _part_lengths(self) -> list[int]:
        return [p["acts"].shape[0] for p in self.parts]

    def _read(self, part: int, start: int, stop: int, field: str) -> Tensor:
        t = self.parts[part][field][start:stop]
        return t.float() if field == "acts" else t.long()

    def _part_contexts(self, part: int) -> Tensor:
        return self.parts[part]["contexts"].long()
