"""Sparse SAE codes in compressed-row (CSR) form, shared by every variant and kernel.

Letters: B tokens, F features, N selected (token, feature) pairs.
A selection is the set of pairs (b, f) with S[b, f] = 1; the codes are z[b, f] = ReLU(pre[b, f]) on it.
Stored row-major: ``crow_B1`` (row pointers, B + 1), ``cols_N`` (feature ids), ``values_N``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class SparseCodes(NamedTuple):
    """Codes of a batch in CSR form; ``values_N`` carries autograd when produced by a forward."""

    crow_B1: Tensor
    """int64 [B + 1] row pointers: row b owns entries crow[b]:crow[b+1]."""
    cols_N: Tensor
    """int64 [N] feature index of each entry, row-major order."""
    values_N: Tensor
    """float [N] activation of each entry (ReLU(pre) at the selected pairs)."""
    n_features: int
    """F, the dictionary width."""

    @property
    def n_rows(self) -> int:
        return self.crow_B1.numel() - 1

    def rows(self) -> Tensor:
        """int64 [N] row index of each entry."""
        counts_B = self.crow_B1.diff()
        return torch.repeat_interleave(torch.arange(self.n_rows, device=counts_B.device), counts_B)

    def l0_per_row(self) -> Tensor:
        """Number of non-zero codes per token (selected entries with activation > 0)."""
        active_N = (self.values_N > 0).to(torch.int64)
        return torch.zeros(self.n_rows, dtype=torch.int64, device=active_N.device).index_add_(
            0, self.rows(), active_N
        )

    def fired_counts(self) -> Tensor:
        """int64 [F]: on how many tokens of the batch each feature is non-zero."""
        active = self.values_N.detach() > 0
        return torch.bincount(self.cols_N[active], minlength=self.n_features)

    def to_dense(self) -> Tensor:
        """Dense codes [B, F] (differentiable in values)."""
        dense_BF = self.values_N.new_zeros(self.n_rows, self.n_features)
        return dense_BF.index_put((self.rows(), self.cols_N), self.values_N)


def crow_from_rows(rows_N: Tensor, n_rows: int) -> Tensor:
    """Row pointers for sorted row indices."""
    counts_B = torch.bincount(rows_N, minlength=n_rows)
    crow_B1 = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows_N.device)
    torch.cumsum(counts_B, 0, out=crow_B1[1:])
    return crow_B1


def crow_uniform(n_rows: int, k: int, device: torch.device | None = None) -> Tensor:
    """Row pointers when every row holds exactly k entries (TopK)."""
    return torch.arange(0, n_rows * k + 1, k, dtype=torch.int64, device=device)
