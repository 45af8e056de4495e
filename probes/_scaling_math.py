"""Fast exact sampling and a hand-written loss gradient for the scaling toy (probes/scaling_toy.py).

Sampling. Each (sample, feature) cell must be active independently with probability p_i. Drawing a
dense B×n uniform matrix wastes time: on average only Σ p_i = 1 cell per sample is active. Instead
draw a Poisson process: the number of events in cell (s, i) is Poisson(λ_i) with
λ_i = −ln(1 − p_i), independently per cell (Poisson splitting), so the cell is active —at least one
event— with probability 1 − e^{−λ_i} = p_i exactly. The total number of events is
Poisson(B Σλ), each event picks its feature ∝ λ and its sample uniformly; duplicates collapse.

Gradient. For one model, with only the A samples that have an active feature (an all-zero sample
has h = 0, y = ReLU(b): its loss Σ ReLU(b)² and gradient are added in closed form):
    h = x W [A, m],  pre = h Wᵀ + b [A, n],  y = ReLU(pre),  L = (1/B) Σ ‖y − x‖²
    G = ∂L/∂pre = (2/B)(y − x) ⊙ 1[pre > 0]
    ∂L/∂b = Σ_s G_s (+ zero-sample term),  ∂L/∂W = Gᵀ h + xᵀ (G W)
x is sparse (a few non-zeros per sample), so x W and xᵀ(G W) are gathers / index_adds; the three
dense products and ~4 passes over [A, n] are the whole cost (autograd needs 5 products and ~10
passes). Checked against autograd in tests/probes/test_scaling_toy.py.

Letters: B samples, A samples with an active feature, n features, m width, N active cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class SparseBatch:
    """A batch x [B, n] as its active cells; rows index the A non-empty samples (compacted)."""

    rows: Tensor  # [N] int64 in [0, A)
    cols: Tensor  # [N] int64 feature index
    vals: Tensor  # [N] float32 value, U(0, 2)
    n_active_rows: int  # A
    batch_size: int  # B (A plus the all-zero samples)

    def dense(self, n: int) -> Tensor:
        """The full x [B, n], empty samples last (for tests and reference code)."""
        x = torch.zeros(self.batch_size, n)
        x[self.rows, self.cols] = self.vals
        return x


def poisson_rates(p: np.ndarray) -> np.ndarray:
    """λ_i = −ln(1 − p_i), so that P(Poisson(λ_i) ≥ 1) = p_i."""
    if np.any(p >= 1) or np.any(p < 0):
        raise ValueError("feature probabilities must lie in [0, 1)")
    return -np.log1p(-p.astype(np.float64))


def sample_sparse(lam: np.ndarray, batch_size: int, rng: np.random.Generator) -> SparseBatch:
    """Exact Bernoulli(p_i)·U(0, 2) batch via the Poisson construction of the module docstring."""
    n = lam.size
    total = lam.sum()
    n_events = rng.poisson(batch_size * total)
    feats = rng.choice(n, size=n_events, p=lam / total)
    samples = rng.integers(0, batch_size, size=n_events)
    cells = np.unique(samples.astype(np.int64) * n + feats)
    rows_b, cols = np.divmod(cells, n)
    uniq_rows, rows = np.unique(rows_b, return_inverse=True)
    vals = 2.0 * rng.random(cells.size, dtype=np.float32)
    return SparseBatch(torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols.astype(np.int64)),
                       torch.from_numpy(vals), int(uniq_rows.size), batch_size)


def loss_and_grads(W_nm: Tensor, b_n: Tensor, x: SparseBatch) -> tuple[float, Tensor, Tensor]:
    """(L, ∂L/∂W, ∂L/∂b) of L = (1/B) Σ_s ‖ReLU(W Wᵀ x_s + b) − x_s‖², see module docstring."""
    n, m = W_nm.shape
    A, B = x.n_active_rows, x.batch_size
    vals_N1 = x.vals[:, None]
    h_Am = torch.zeros(A, m).index_add_(0, x.rows, vals_N1 * W_nm.index_select(0, x.cols))
    y_An = torch.addmm(b_n, h_Am, W_nm.T).clamp_(min=0)  # becomes G (up to 2/B) in place below
    flat = x.rows * n + x.cols
    y_sp = y_An.view(-1).index_select(0, flat)
    r_sp = y_sp - x.vals
    y_flat = y_An.view(-1)
    relu_b = b_n.clamp(min=0)
    loss = (torch.dot(y_flat, y_flat) - torch.dot(y_sp, y_sp) + torch.dot(r_sp, r_sp)
            + (B - A) * torch.dot(relu_b, relu_b)) / B
    # G/(2/B): y − x where pre > 0, else 0. Off the active cells x = 0, so G = y there already.
    y_flat.index_copy_(0, flat, torch.where(y_sp > 0, r_sp, torch.zeros_like(r_sp)))
    g_An = y_An
    scale = 2.0 / B
    grad_b = (torch.mv(g_An.T, torch.ones(A)) + (B - A) * relu_b) * scale
    gW_Am = g_An @ W_nm
    grad_W = (g_An.T @ h_Am).index_add_(0, x.cols, vals_N1 * gW_Am.index_select(0, x.rows)).mul_(scale)
    return float(loss), grad_W, grad_b


def reference_loss(W_nm: Tensor, b_n: Tensor, x_Bn: Tensor) -> Tensor:
    """The same loss with plain autograd ops on a dense batch (the spec; used by tests and evaluation)."""
    y_Bn = torch.relu((x_Bn @ W_nm) @ W_nm.T + b_n)
    return ((y_Bn - x_Bn) ** 2).sum(1).mean()
