"""Batch-dependent selection over the GLOBAL batch when each rank holds a slice of it (data parallel).

Mutual Choice / BatchTopK keep the top-M of the whole B×F matrix (M = k·B) and Feature Choice the top-m_f
of each column over all B tokens, so a rank cannot select alone: its slice holds B/W rows. TopK is
per-row and stays local. The rule used here gives the same selection as one process holding the
whole batch (ties at the threshold aside, as in ``kernels.selection``):

1. Lower bound. Any member of the global top-M is in its own rank's local top-M, and with
   t_r = the ⌈M/W⌉-th largest local value (0 if the rank has fewer positives), t = min_r t_r
   (one all_reduce MIN) satisfies #{values ≥ t} ≥ W·⌈M/W⌉ ≥ M, so the M-th largest global value is ≥ t.
   Feature Choice does the same per column with m_f (an all_reduce MIN of F values).
2. Candidates. Each rank keeps its local top-M (top-m_f per column) with value ≥ t, typically
   ≈ M/W of them, and all ranks all_gather them (values, and the column for Feature Choice).
3. Selection. Every rank ranks the gathered candidates with the single-process rule — global top-M,
   or per-column top-m_f — breaking ties by (rank, position), and keeps the entries that are its own.

Traffic per step ≈ W·(M/W) = M values per rank: the size of the selection itself, never B×F.
Letters: B rows of this rank, F features, W ranks, N candidates, L padded candidates per rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor

from superscope.kernels import crow_from_rows, dispatch
from superscope.kernels.selection import _within_column_rank

from .base import BaseSAE, Selection
from .registry import sae_class


class GlobalBatch:
    """The process group and the size of the global batch of the current step."""

    def __init__(self, group: dist.ProcessGroup | None = None):
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        self.n_rows = 0
        """Rows of the global batch of the current step (set by the trainer before each forward)."""

    # ---- collectives ---------------------------------------------------------------------------
    def min_(self, t: Tensor) -> Tensor:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.MIN, group=self.group)
        return t

    def gather_ragged(self, *tensors_N: Tensor) -> tuple[list[Tensor], list[int]]:
        """All ranks' 1-D tensors (same length within a rank), concatenated in rank order; + counts."""
        n = torch.tensor([tensors_N[0].numel()], device=tensors_N[0].device)
        counts = [torch.zeros_like(n) for _ in range(self.world)]
        dist.all_gather(counts, n, group=self.group)
        counts = [int(c) for c in counts]
        width = max(counts)
        out = []
        for t in tensors_N:
            padded = t.new_zeros(width)
            padded[: t.numel()] = t
            parts = [torch.empty_like(padded) for _ in range(self.world)]
            dist.all_gather(parts, padded, group=self.group)
            out.append(torch.cat([p[:c] for p, c in zip(parts, counts)]))
        return out, counts

    def own(self, keep: Tensor, counts: list[int]) -> Tensor:
        """This rank's part of a mask over the gathered candidates."""
        start = sum(counts[: self.rank])
        return keep[start : start + counts[self.rank]]

    # ---- Mutual Choice / BatchTopK ---------------------------------------------------------------
    def topm(self, acts_BF: Tensor, m: int) -> tuple[Tensor, Tensor]:
        """CSR (crow_B1, cols_N) of this rank's entries among the global top-m positive activations."""
        n_rows, F = acts_BF.shape
        flat = acts_BF.reshape(-1)
        share = math.ceil(m / self.world)
        local_idx = _csr_to_flat(*dispatch.topm_global(acts_BF, share), F)
        t_r = flat[local_idx].min() if local_idx.numel() == share else flat.new_zeros(())
        t = self.min_(t_r.float().reshape(1))[0]
        keep = (flat >= t.to(flat.dtype)) & (flat > 0)
        idx_N = keep.nonzero().squeeze(1)
        if idx_N.numel() > m:  # only the local top-m can be in the global top-m
            idx_N = idx_N[flat[idx_N].topk(m, sorted=False).indices].sort().values
        (vals,), counts = self.gather_ragged(flat[idx_N].float())
        mine_N = self.own(_top_m_stable(vals, m), counts)
        idx_N = idx_N[mine_N]
        return crow_from_rows(idx_N // F, n_rows), idx_N % F

    def mutual_choice(self, sae: BaseSAE, xc_BD: Tensor) -> Selection:
        pre_BF = sae.dense_preacts(xc_BD)
        crow_B1, cols_N = self.topm(pre_BF.clamp_min(0), sae.cfg.k * self.n_rows)
        return _selection(pre_BF, crow_B1, cols_N)

    # ---- Feature Choice --------------------------------------------------------------------------
    def topm_per_column(self, acts_BF: Tensor, capacity_F: Tensor) -> tuple[Tensor, Tensor]:
        """CSR of this rank's entries among each column's global top-capacity_F[f] positive values."""
        n_rows, F = acts_BF.shape
        share_F = (capacity_F + self.world - 1) // self.world
        rows_s, cols_s = _csr_rows_cols(*dispatch.topm_per_column(acts_BF, share_F))
        vals_s = acts_BF[rows_s, cols_s].float()
        count_F = torch.bincount(cols_s, minlength=F)
        min_F = torch.full((F,), torch.inf, device=acts_BF.device).scatter_reduce(0, cols_s, vals_s, "amin")
        t_r_F = torch.where(share_F == 0, torch.inf, torch.where(count_F >= share_F, min_F, 0.0))
        t_F = self.min_(t_r_F)
        rows_c, cols_c = _csr_rows_cols(*dispatch.topm_per_column(acts_BF, capacity_F))
        vals_c = acts_BF[rows_c, cols_c].float()
        cand = vals_c >= t_F[cols_c]
        rows_c, cols_c, vals_c = rows_c[cand], cols_c[cand], vals_c[cand]
        (g_cols, g_vals), counts = self.gather_ragged(cols_c, vals_c)
        keep = _within_column_rank(g_cols, g_vals, capacity_F.to(g_cols.device), F)
        mine = self.own(keep, counts)
        linear_N = (rows_c[mine] * F + cols_c[mine]).sort().values  # CSR: row-major order
        return crow_from_rows(linear_N // F, n_rows), linear_N % F

    def feature_choice(self, sae: BaseSAE, xc_BD: Tensor) -> Selection:
        pre_BF = sae.dense_preacts(xc_BD)
        acts_BF = pre_BF.clamp_min(0)
        if sae.learns_demand():  # zipf capacities: demand counted over the GLOBAL batch
            counts_F = sae.demand_counts(acts_BF)
            dist.all_reduce(counts_F, group=self.group)
            sae.update_demand(counts_F, self.n_rows)
        capacity_F = sae.capacities(self.n_rows).to(xc_BD.device)  # capacities of the GLOBAL batch
        crow_B1, cols_N = self.topm_per_column(acts_BF, capacity_F)
        sae._last_capacity_F = capacity_F  # read by FeatureChoiceSAE.after_step (θ_f update)
        return _selection(pre_BF, crow_B1, cols_N)


def _top_m_stable(vals_N: Tensor, m: int) -> Tensor:
    """Mask of the m largest values; ties at the m-th value go to the earliest positions."""
    if vals_N.numel() <= m:
        return torch.ones_like(vals_N, dtype=torch.bool)
    theta = vals_N.topk(m, sorted=False).values.min()
    keep = vals_N > theta
    tied = vals_N == theta
    return keep | (tied & (tied.cumsum(0) <= m - int(keep.sum())))


def _csr_rows_cols(crow_B1: Tensor, cols_N: Tensor) -> tuple[Tensor, Tensor]:
    rows_N = torch.repeat_interleave(torch.arange(crow_B1.numel() - 1, device=cols_N.device), crow_B1.diff())
    return rows_N, cols_N


def _csr_to_flat(crow_B1: Tensor, cols_N: Tensor, n_cols: int) -> Tensor:
    rows_N, cols_N = _csr_rows_cols(crow_B1, cols_N)
    return rows_N * n_cols + cols_N


def _selection(pre_BF: Tensor, crow_B1: Tensor, cols_N: Tensor) -> Selection:
    rows_N, _ = _csr_rows_cols(crow_B1, cols_N)
    return Selection(crow_B1, cols_N, pre_BF[rows_N, cols_N])


SelectRule = Callable[[GlobalBatch, BaseSAE, Tensor], Selection]


def global_rule(architecture: str) -> SelectRule | None:
    """The variant's ``global_rule`` (None when it is row-local: each rank selects on its own rows); an
    error for a batch-dependent variant without one."""
    cls = sae_class(architecture)
    if not cls.batch_dependent:
        return None
    if cls.global_rule is None:
        raise ValueError(f"SAE architecture {architecture!r} is batch-dependent but has no data-parallel selection "
                         f"rule: set global_rule on {cls.__name__} (a GlobalBatch method, saes/global_selection.py)")
    return cls.global_rule
