"""One streaming pass of SAE codes → everything the dashboard shows about each feature.

Per feature f of an SAE, over the held-out rows (each firing is an entry (row, f, v > 0)):
  count_f, Σv (firing density = count_f / n_tokens, mean activation = Σv / count_f);
  a histogram of v over shared log-spaced bins (edges fixed from the first batch: any feature's
  scale fits, and one pass suffices);
  the top-K activations (``TopSlots`` keyed by v) with the feature's activations on the ±W tokens
  around each (so the dashboard can highlight the whole window);
  a uniform random sample of S firings (``TopSlots`` keyed by iid uniform keys: the S largest keys
  are a uniform sample without replacement), cut into quantile bands at the end.
All updates are vectorised over the batch's entries (segmented top-k, bincount); no loop over features.

Batches are cut at context boundaries (``context_aligned_batches``) so every window lies inside one batch.
Letters: B rows in the batch, F features, N firings, C candidates, K top slots, S sample slots,
W window width 2·window+1, H histogram bins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from superscope.analyses.features.topk import TopSlots, segment_topk


def context_aligned_batches(source: Any, batch_size: int, max_tokens: int | None = None) -> Iterator[dict[str, Tensor]]:
    """Corpus-order batches of ``source.rows`` (about ``batch_size`` rows) cut at context boundaries,
    each with ``start``: the global index of its first row. With ``max_tokens``, stops at the first
    context boundary at or after that many rows."""
    carry: dict[str, Tensor] | None = None
    start = 0
    for batch in source.rows(batch_size):
        buf = batch if carry is None else {k: torch.cat([carry[k], batch[k]]) for k in batch}
        ctx = buf["context_ids"]
        bounds = (ctx[1:] != ctx[:-1]).nonzero().squeeze(1) + 1  # first rows of the 2nd, 3rd, … context
        if max_tokens is not None:
            enough = bounds[bounds >= max_tokens - start]
            if enough.numel():
                yield {**{k: v[:int(enough[0])] for k, v in buf.items()}, "start": start}
                return
        if bounds.numel() == 0:  # one (maybe unfinished) context so far
            carry = buf
            continue
        cut = int(bounds[-1])
        yield {**{k: v[:cut] for k, v in buf.items()}, "start": start}
        carry, start = {k: v[cut:] for k, v in buf.items()}, start + cut
    if carry is not None and carry["acts"].shape[0]:
        yield {**carry, "start": start}


def window_index(context_ids_B: Tensor, positions_B: Tensor, window: int) -> tuple[Tensor, Tensor]:
    """Row of the token at offset o ∈ [−window, window] from each row, inside the same context:
    ``(idx_BW, ok_BW)``; ``ok`` is False where that token is not a row of this batch (outside the
    context, the BOS, or cut off)."""
    B = context_ids_B.numel()
    offs_W = torch.arange(-window, window + 1)
    idx_BW = torch.arange(B).unsqueeze(1) + offs_W
    inside = (idx_BW >= 0) & (idx_BW < B)
    idx_BW = idx_BW.clamp(0, max(B - 1, 0))
    ok_BW = inside & (context_ids_B[idx_BW] == context_ids_B.unsqueeze(1)) \
        & (positions_B[idx_BW] == positions_B.unsqueeze(1) + offs_W)
    return idx_BW, ok_BW


class FeatureAccumulator:
    """What the pass collects for one SAE (F features)."""

    def __init__(self, d_sae: int, top_k: int, sample_size: int, window: int, hist_bins: int,
                 hist_decades: float, seed: int):
        F, W = d_sae, 2 * window + 1
        self.F, self.H, self.decades = F, hist_bins, hist_decades
        self.n_tokens = 0
        self.count_F = torch.zeros(F, dtype=torch.int64)
        self.sum_F = torch.zeros(F, dtype=torch.float64)
        self.hist_FH = torch.zeros(F * hist_bins, dtype=torch.int64)
        self.edges_H1: Tensor | None = None
        payload = {"row": ((), torch.int64, -1), "win": ((W,), torch.float32, 0.0)}
        self.top = TopSlots(F, top_k, payload)
        self.sample = TopSlots(F, sample_size, {**payload, "act": ((), torch.float32, 0.0)})
        self.gen = torch.Generator().manual_seed(seed)

    def _edges(self, vals_N: Tensor) -> Tensor:
        if self.edges_H1 is None:
            hi = 4.0 * float(vals_N.max())
            self.edges_H1 = torch.logspace(torch.log10(torch.tensor(hi)) - self.decades,
                                           torch.log10(torch.tensor(hi)), self.H + 1)
        return self.edges_H1

    @torch.no_grad()
    def update(self, codes: Any, start: int, win_idx_BW: Tensor, win_ok_BW: Tensor) -> None:
        """Add one batch: its sparse ``codes`` (CSR), its first global row ``start`` and its window
        index (``window_index``)."""
        B = codes.n_rows
        self.n_tokens += B
        vals = codes.values_N.detach().float()
        fired = vals > 0
        rows_N, cols_N, vals_N = codes.rows()[fired], codes.cols_N[fired], vals[fired]
        if vals_N.numel() == 0:
            return
        self.count_F += torch.bincount(cols_N, minlength=self.F)
        self.sum_F += torch.bincount(cols_N, weights=vals_N.double(), minlength=self.F)
        edges = self._edges(vals_N)
        bin_N = (torch.searchsorted(edges, vals_N) - 1).clamp(0, self.H - 1)
        self.hist_FH += torch.bincount(cols_N * self.H + bin_N, minlength=self.F * self.H)
        # z[row, f] lookups for the windows: binary search in the firings sorted by row·F + f
        flat_N, order_N = torch.sort(rows_N * self.F + cols_N)
        vals_sorted_N = vals_N[order_N]

        def windows(idx: Tensor) -> Tensor:
            r, f = rows_N[idx], cols_N[idx]
            q_CW = win_idx_BW[r] * self.F + f.unsqueeze(1)
            pos_CW = torch.searchsorted(flat_N, q_CW).clamp(max=flat_N.numel() - 1)
            hit_CW = (flat_N[pos_CW] == q_CW) & win_ok_BW[r]
            return torch.where(hit_CW, vals_sorted_N[pos_CW], 0.0)

        # only firings that beat their feature's current K-th best (resp. sample key) can enter the
        # slots: filtering first keeps the sorts small once the slots have filled up
        for slots, keys_N, extra in ((self.top, vals_N, {}), (self.sample, None, {"act": vals_N})):
            if keys_N is None:
                keys_N = torch.rand(vals_N.numel(), generator=self.gen)
            cand = (keys_N > slots.threshold(cols_N)).nonzero().squeeze(1)
            idx, seg, rank = segment_topk(cols_N[cand], keys_N[cand], self.F, slots.k)
            idx = cand[idx]
            slots.offer(seg, rank, keys_N[idx], {"row": rows_N[idx] + start, "win": windows(idx),
                                                 **{k: v[idx] for k, v in extra.items()}})

    def result(self, n_bands: int, band_examples: int) -> dict[str, Tensor]:
        """The collected arrays (see ``features.FeatureData`` for their meaning)."""
        if self.n_tokens == 0:
            raise ValueError("the feature-data pass saw no held-out tokens; harvest held-out activations first")
        self.top.sort()
        count = self.count_F
        out = {
            "count_F": count, "density_F": count.double().div(self.n_tokens).float(),
            "mean_act_F": torch.where(count > 0, self.sum_F / count.clamp_min(1), 0).float(),
            "hist_FH": self.hist_FH.view(self.F, self.H).to(torch.int32),
            "hist_edges_H1": (self.edges_H1 if self.edges_H1 is not None
                              else torch.logspace(-self.decades, 0, self.H + 1)).float(),
            "top_acts_FK": torch.where(self.top.filled(), self.top.keys_SK, 0).float(),
            "top_rows_FK": self.top.data["row"], "top_win_FKW": self.top.data["win"],
        }
        out["max_act_F"] = out["top_acts_FK"][:, 0].clone()
        out.update(quantile_bands(self.sample, n_bands, band_examples))
        return out


def quantile_bands(sample: TopSlots, n_bands: int, per_band: int) -> dict[str, Tensor]:
    """Cut each feature's sorted sample into ``n_bands`` equal-count bands (band 0 = highest
    activations) and keep up to ``per_band`` evenly spaced examples of each.

    Returns band_acts_FBE, band_rows_FBE (−1 = none), band_win_FBEW, band_edges_FB2 ([hi, lo] per band)."""
    act_FS = torch.where(sample.filled(), sample.data["act"], -torch.inf)
    order_FS = act_FS.argsort(dim=1, descending=True)
    act_FS = act_FS.gather(1, order_FS)
    n_F = sample.filled().sum(1)
    j_B1 = torch.arange(n_bands).view(1, n_bands, 1)
    e_1E = torch.arange(per_band).view(1, 1, per_band)
    n = n_F.view(-1, 1, 1)
    lo = torch.div(j_B1 * n + n_bands - 1, n_bands, rounding_mode="floor")   # ceil(j·n/nb)
    hi = torch.div((j_B1 + 1) * n + n_bands - 1, n_bands, rounding_mode="floor")
    length = hi - lo
    pos = torch.where(length <= per_band, lo + e_1E, lo + torch.div(e_1E * length, per_band, rounding_mode="floor"))
    valid = e_1E < length
    pos = pos.clamp(0, sample.k - 1)
    F = act_FS.shape[0]
    flat = pos.reshape(F, -1)
    src = order_FS.gather(1, flat)
    acts = act_FS.gather(1, flat).reshape(pos.shape)
    rows = sample.data["row"].gather(1, src).reshape(pos.shape)
    win = sample.data["win"][torch.arange(F).unsqueeze(1), src].reshape(*pos.shape, -1)
    edge_hi = act_FS.gather(1, lo[..., 0].clamp(0, sample.k - 1))
    edge_lo = act_FS.gather(1, (hi[..., 0] - 1).clamp(0, sample.k - 1))
    has = length[..., 0] > 0
    return {"band_acts_FBE": torch.where(valid, acts, 0).float(), "band_rows_FBE": torch.where(valid, rows, -1),
            "band_win_FBEW": torch.where(valid.unsqueeze(-1), win, 0).float(),
            "band_edges_FB2": torch.stack([torch.where(has, edge_hi, 0), torch.where(has, edge_lo, 0)], -1).float()}
