"""Streaming construction of the token–feature bipartite graph (Zhang, Lin, Li 2025; specs/probes.md §2).

An edge (t, f) exists when feature f is active (z > 0) on at least one occurrence of token id t.
One pass over (token_ids_B, codes_BF) pairs fills a boolean table `[T, F]` whose rows are the T
distinct token ids seen so far (compact rows, grown by doubling), plus an occurrence count per token.
Memory is T·F bytes (e.g. 20k distinct tokens × 4608 features = 92 MB), independent of the stream
length.

Per batch the work is proportional to the batch's codes, not to the table: the active entries are
found as flat positions b·F + f, turned into edge keys row(t_b)·F + f (one int64 per (token, feature)
pair) and set in the flat table with one scatter; duplicates within or across batches just set the
same byte again. Finding the active entries of dense codes is the hot path (codes are ~1 % dense):
  1. compare a block of rows with 0 (z > 0, exact for any sign; numpy, so no per-call thread
     start-up) into a small bool buffer that stays in cache;
  2. read that buffer as 8-byte words and keep the non-zero words (`true_positions`);
  3. expand only those words to byte positions.
So the codes are read once and only ~5 % of the mask is looked at twice. `build()` finds the table's
edges the same way, already in row-major (CSR) order. The table reserves rows up to the largest
token id seen (np.zeros maps memory lazily, so untouched rows cost nothing) to avoid regrowth copies.

Letters: B tokens in a batch, F SAE features, T distinct token ids, N non-zero codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from superscope.saes.result_repr import Headline, ResultRepr

from ._codes import CooCodes, SignGuard, _as_tensor, as_codes, n_rows

CHUNK_BYTES = 1 << 20  # bool mask block per step of the dense path (fits the L2 cache)
RESERVE_BYTES = 1 << 30  # table rows reserved up front, up to the largest token id seen (lazily zeroed)


def true_positions(mask: np.ndarray) -> np.ndarray:
    """Ascending flat positions of the True entries of a C-contiguous bool array (= np.flatnonzero(mask)).

    Scans 8 bytes at a time: only the non-zero 8-byte words are expanded to their bytes, which is
    several times faster than `np.flatnonzero` when few entries are True.
    """
    flat = mask.reshape(-1)
    if flat.dtype != np.bool_:
        raise TypeError(f"true_positions needs a bool array, got {flat.dtype}")
    n8 = flat.size - flat.size % 8
    words = flat[:n8].view(np.uint64)
    hit = np.flatnonzero(words != 0)
    pos = np.flatnonzero(words[hit].view(np.bool_))  # the bytes of the non-zero words, in order
    out = hit[pos >> 3] * 8 + (pos & 7)
    if n8 < flat.size:
        out = np.concatenate([out, np.flatnonzero(flat[n8:]) + n8])
    return out


@dataclass(frozen=True, eq=False, repr=False)
class BuiltGraph(ResultRepr):
    """The finished graph: rows are distinct token ids in first-seen order."""

    token_ids: np.ndarray  # [T] int64 token id of each row
    counts: np.ndarray  # [T] int64 occurrences of each token
    edges: sp.csr_matrix  # [T, F] binary (uint8 data), 1 where the feature fired on the token at least once

    def headline(self) -> list[Headline]:
        return [("distinct tokens", self.token_ids.size, "count"), ("occurrences", int(self.counts.sum()), "count"),
                ("edges", self.edges.nnz, "count"), ("graph", self.edges, "size")]


class TokenFeatureGraphBuilder:
    """Accumulates edges and token counts batch by batch; `build()` returns a BuiltGraph."""

    def __init__(self, d_sae: int, initial_rows: int = 4096, sign_check: str = "first", chunk_rows: int | None = None):
        """`sign_check` is validated and kept for API compatibility: the graph compares z > 0 exactly
        in every mode (the comparison is as fast as a cast here). `chunk_rows`: rows per block of the
        dense path (None: CHUNK_BYTES of mask)."""
        if d_sae < 1:
            raise ValueError(f"d_sae must be >= 1, got {d_sae}")
        if chunk_rows is not None and chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self.d_sae = d_sae
        self.guard = SignGuard(sign_check)
        self.row_of = np.full(0, -1, dtype=np.int64)  # token id → compact row (−1: unseen)
        self.token_of = np.empty(initial_rows, dtype=np.int64)  # compact row → token id
        self.edges_TF = np.zeros((initial_rows, d_sae), dtype=np.bool_)
        self.counts_T = np.zeros(initial_rows, dtype=np.int64)
        self.n_rows = 0
        self.n_tokens = 0
        self._chunk = chunk_rows or max(1, CHUNK_BYTES // d_sae)  # rows per block of the dense path
        self._mask_buf = np.empty((self._chunk, d_sae), dtype=np.bool_)

    def _rows_for(self, tok_B: np.ndarray) -> np.ndarray:
        """Compact rows of the batch's token ids, assigning new rows to unseen ids (first-seen order)."""
        if int(tok_B.min()) < 0:
            raise ValueError("token ids must be non-negative")
        top = int(tok_B.max()) + 1
        if top > self.row_of.size:
            grown = np.full(max(top, 2 * self.row_of.size), -1, dtype=np.int64)
            grown[: self.row_of.size] = self.row_of
            self.row_of = grown
        uniq, first = np.unique(tok_B, return_index=True)
        unseen = self.row_of[uniq] < 0
        new = uniq[unseen][np.argsort(first[unseen], kind="stable")]  # in order of first occurrence
        if new.size:
            need = self.n_rows + new.size
            if need > self.edges_TF.shape[0]:
                # T ≤ largest id + 1, so reserving that many rows (up to RESERVE_BYTES) avoids regrowth;
                # np.zeros memory is mapped lazily, so only the rows in use are ever touched.
                reserve = min(top, max(1, RESERVE_BYTES // self.d_sae))
                self._grow(max(need, 2 * self.edges_TF.shape[0], reserve))
            self.row_of[new] = np.arange(self.n_rows, need)
            self.token_of[self.n_rows:need] = new
            self.n_rows = need
        return self.row_of[tok_B]

    def _grow(self, cap: int) -> None:
        """Grow the row capacity to `cap` (at least doubling: amortised O(T·F) copies in all)."""
        old = self.edges_TF.shape[0]
        edges = np.zeros((cap, self.d_sae), dtype=np.bool_)
        edges[: self.n_rows] = self.edges_TF[: self.n_rows]
        self.edges_TF = edges
        self.counts_T = np.concatenate([self.counts_T, np.zeros(cap - old, dtype=np.int64)])
        self.token_of = np.concatenate([self.token_of, np.empty(cap - old, dtype=np.int64)])

    def _active_dense(self, z_BF: np.ndarray) -> np.ndarray:
        """Flat positions b·F + f of the active codes (z > 0) of a dense batch, ascending."""
        B, F = z_BF.shape
        parts = []
        for start in range(0, B, self._chunk):
            block = z_BF[start:start + self._chunk]
            mask = self._mask_buf[: block.shape[0]]
            np.greater(block, 0, out=mask)  # numpy: single-threaded, no fork-join cost per block
            parts.append(true_positions(mask) + start * F)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def add(self, token_ids: Any, codes: Any) -> None:
        """Add a batch: token ids `[B]` (any shape, flattened) and their codes `[B, F]` (dense or sparse)."""
        tok_B = _as_tensor(token_ids, "token_ids").reshape(-1).long().cpu().numpy()
        z = as_codes(codes, self.d_sae)
        if tok_B.size != n_rows(z):
            raise ValueError(f"got {tok_B.size} token ids for {n_rows(z)} rows of codes; pass one id per code row")
        if tok_B.size == 0:
            return
        rows_B = self._rows_for(tok_B)
        self.counts_T += np.bincount(rows_B, minlength=self.counts_T.size)
        self.n_tokens += tok_B.size
        F = self.d_sae
        if isinstance(z, CooCodes):
            on = z.vals.cpu().numpy() > 0
            keys = rows_B[z.rows.cpu().numpy()[on]] * F + z.cols.cpu().numpy()[on]
        else:
            z = z.cpu()
            pos = self._active_dense((z if z.dtype in (torch.float16, torch.float32, torch.float64) else z.float()).numpy())
            b = pos // F
            keys = rows_B[b] * F + (pos - b * F)
        self.edges_TF.reshape(-1)[keys] = True  # one scatter; repeated keys set the same byte

    def build(self) -> BuiltGraph:
        """The graph so far as scipy CSR (rows in first-seen order)."""
        if self.n_tokens == 0:
            raise ValueError("empty stream: no (token_ids, codes) batches were given")
        T, F = self.n_rows, self.d_sae
        flat = true_positions(self.edges_TF[:T])  # row-major order = CSR order
        rows = flat // F
        indptr = np.zeros(T + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=T), out=indptr[1:])
        edges = sp.csr_matrix((np.ones(flat.size, dtype=np.uint8), flat - rows * F, indptr), shape=(T, F))
        return BuiltGraph(self.token_of[:T].copy(), self.counts_T[:T].copy(), edges)
