"""Segmented top-k over sparse entries: the vectorised core of the feature-data pass.

Entries are (segment, key) pairs, e.g. (feature f, activation v) for every firing of a batch. For
each segment we want the k entries with the largest keys — for all F features at once, with no
Python loop over features. Keys are non-negative floats, whose IEEE-754 bit patterns sort like the
numbers, so one int64 sort on  segment·2³¹ + (2³¹−1 − bits(key))  orders entries by segment, then by
key descending; an entry's rank in its segment is its sorted position minus the segment's start.
Cost O(N log N) for N entries, against O(B·F) for a dense top-k over a [B, F] code matrix.

``TopSlots`` keeps the running top K per segment; a batch's candidates (at most K per segment,
already ranked) are merged with a dense top-k over the [T, 2K] keys of the T touched segments.

Letters: N entries, S segments (features), K slots per segment, T touched segments.
"""

from __future__ import annotations

import torch
from torch import Tensor

_LOW31 = (1 << 31) - 1


def segment_topk(seg_N: Tensor, key_N: Tensor, n_seg: int, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Indices of the ``k`` largest keys (non-negative floats) of every segment.

    Returns ``(idx_M, seg_M, rank_M)``: entry ``idx_M[i]`` is number ``rank_M[i]`` (0 = largest key)
    of segment ``seg_M[i]``. Segments with fewer than k entries keep them all.
    """
    if seg_N.numel() == 0:
        empty = torch.empty(0, dtype=torch.int64, device=seg_N.device)
        return empty, empty, empty
    bits_N = key_N.float().contiguous().view(torch.int32).to(torch.int64)
    order_N = torch.argsort(seg_N * (1 << 31) + (_LOW31 - bits_N))
    seg_sorted_N = seg_N[order_N]
    counts_S = torch.bincount(seg_sorted_N, minlength=n_seg)
    starts_S = torch.cumsum(counts_S, 0) - counts_S
    rank_N = torch.arange(order_N.numel(), device=seg_N.device) - starts_S[seg_sorted_N]
    keep = rank_N < k
    return order_N[keep], seg_sorted_N[keep], rank_N[keep]


class TopSlots:
    """For each of S segments, the K entries with the largest keys seen so far, with payloads.

    ``keys_SK`` (−inf where empty; unsorted within a row, see ``sort``) and payload tensors
    ``data[name]`` of shape ``[S, K, ...]`` (``fill`` where empty). A merge decides, per touched
    segment, which K of (current slots + batch candidates) survive with a dense top-k over [T, 2K]
    keys; entering candidates then overwrite the evicted slots in place, so payload rows are written
    only for the entries that actually enter.
    """

    def __init__(self, n_seg: int, k: int, payloads: dict[str, tuple[tuple[int, ...], torch.dtype, float]]):
        self.n_seg, self.k = n_seg, k
        self.keys_SK = torch.full((n_seg, k), -torch.inf)
        self.min_S = torch.full((n_seg,), -torch.inf)
        self.data = {name: torch.full((n_seg, k, *shape), fill, dtype=dtype)
                     for name, (shape, dtype, fill) in payloads.items()}

    def threshold(self, seg_N: Tensor) -> Tensor:
        """The K-th best key of each entry's segment (−inf while it has free slots): only keys above
        it can enter."""
        return self.min_S[seg_N]

    def offer(self, seg_C: Tensor, rank_C: Tensor, key_C: Tensor, payload_C: dict[str, Tensor]) -> None:
        """Merge a batch's candidates: candidate c is number ``rank_C[c]`` (< K) of segment ``seg_C[c]``
        within the batch (as ``segment_topk`` returns them). Only the top K per segment stay."""
        if seg_C.numel() == 0:
            return
        K = self.k
        touched_T = (torch.bincount(seg_C, minlength=self.n_seg) > 0).nonzero().squeeze(1)
        slot_S = torch.full((self.n_seg,), -1, dtype=torch.int64)
        slot_S[touched_T] = torch.arange(touched_T.numel())
        t_C = slot_S[seg_C]
        T = touched_T.numel()
        new_TK = torch.full((T, K), -torch.inf)
        new_TK[t_C, rank_C] = key_C.float()
        cand_TK = torch.full((T, K), -1, dtype=torch.int64)
        cand_TK[t_C, rank_C] = torch.arange(seg_C.numel())
        old_TK = self.keys_SK[touched_T]
        keep_T2K = torch.zeros(T, 2 * K, dtype=torch.bool)
        keep_T2K.scatter_(1, torch.cat([old_TK, new_TK], 1).topk(K, dim=1).indices, True)
        enter_TK = keep_T2K[:, K:] & (cand_TK >= 0)
        evict_TK = ~keep_T2K[:, :K]
        # pair the j-th entering candidate of a row with the j-th evicted slot of that row
        t_in, r_in = enter_TK.nonzero(as_tuple=True)
        t_out, s_out = evict_TK.nonzero(as_tuple=True)
        n_in = enter_TK.sum(1)
        j_out = torch.arange(t_out.numel()) - (torch.cumsum(evict_TK.sum(1), 0) - evict_TK.sum(1))[t_out]
        use = j_out < n_in[t_out]
        t_out, s_out = t_out[use], s_out[use]  # same (row-major) order as (t_in, r_in)
        seg_out = touched_T[t_out]
        c_in = cand_TK[t_in, r_in]
        self.keys_SK[seg_out, s_out] = new_TK[t_in, r_in]
        for name, t in self.data.items():
            t[seg_out, s_out] = payload_C[name][c_in].to(t.dtype)
        self.min_S[touched_T] = self.keys_SK[touched_T].min(1).values

    def sort(self) -> None:
        """Order every row's slots by key, largest first (empty slots last)."""
        order_SK = self.keys_SK.argsort(dim=1, descending=True)
        self.keys_SK = self.keys_SK.gather(1, order_SK)
        rows = torch.arange(self.n_seg).unsqueeze(1)
        self.data = {name: t[rows, order_SK] for name, t in self.data.items()}

    def filled(self) -> Tensor:
        """bool [S, K]: which slots hold an entry."""
        return torch.isfinite(self.keys_SK)
