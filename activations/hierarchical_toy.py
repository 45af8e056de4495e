"""Synthetic activations with hierarchical features, where feature absorption is measurable.

Nabeshima 2025 (the Matryoshka SAE toy) and Chanin et al. 2024 ("A is for Absorption", arXiv 2409.14507):
each of P parent features has C children; a child fires only together with its parent, at most one child
per parent at a time (mutually exclusive), so "parent fires whenever a child fires":

    parent p fires ~ Bernoulli(parent_prob);  given that, child (p, c) fires with prob child_prob / C each
    x = Σ_p f_p·m_p·u_p + Σ_(p,c) f_pc·m_pc·u_pc        (u unit directions in R^d, m ~ |N(1, 0.25²)|)

Feature absorption (Chanin et al. 2024): a flat sparse dictionary saves L0 by folding the parent's
direction into each child's latent (u_p + u_pc), so the latent that tracks the parent stays silent
exactly when a child fires. ``absorption_rate`` measures it directly: for each parent, its best-matching
latent (largest cosine of a decoder row with u_p), and the share of the samples with a child firing in
which that latent is silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor


@dataclass
class HierarchicalToyConfig:
    """Parents with mutually exclusive children (a child implies its parent)."""

    d: int = 32
    """Activation width."""
    n_parents: int = 16
    """Number of parent features P."""
    children: int = 4
    """Children per parent C (P·C child features)."""
    parent_prob: float = 0.15
    """Firing probability of each parent."""
    child_prob: float = 0.6
    """Probability that one of a firing parent's children fires too (each child child_prob / C)."""
    seed: int = 0
    """Seed of the directions."""

    def __post_init__(self) -> None:
        if self.d <= 0 or self.n_parents <= 0 or self.children <= 0:
            raise ValueError("d, n_parents and children must be positive")
        if not (0 < self.parent_prob <= 1 and 0 <= self.child_prob <= 1):
            raise ValueError("parent_prob must be in (0, 1] and child_prob in [0, 1]")


class HierarchicalSample(NamedTuple):
    """A batch and its ground truth."""

    x: Tensor
    """[n, d] activations."""
    parents: Tensor
    """[n, P] bool: which parents fire."""
    child: Tensor
    """[n, P] int64: the firing child of each parent (−1: none)."""


class HierarchicalToySource:
    """Seeded stream of hierarchical activations; ``parent_directions`` [P, d], ``child_directions`` [P, C, d]."""

    def __init__(self, cfg: HierarchicalToyConfig):
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        dirs = torch.randn(cfg.n_parents * (1 + cfg.children), cfg.d, generator=gen)
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        self.parent_directions = dirs[: cfg.n_parents]
        self.child_directions = dirs[cfg.n_parents:].reshape(cfg.n_parents, cfg.children, cfg.d)

    @property
    def d(self) -> int:
        return self.cfg.d

    @property
    def true_features(self) -> Tensor:
        """Every true direction [P·(1 + C), d]: the parents, then the children parent by parent."""
        return torch.cat([self.parent_directions, self.child_directions.reshape(-1, self.cfg.d)])

    def sample(self, n: int, gen: torch.Generator) -> HierarchicalSample:
        cfg = self.cfg
        parents = torch.rand(n, cfg.n_parents, generator=gen) < cfg.parent_prob
        has_child = parents & (torch.rand(n, cfg.n_parents, generator=gen) < cfg.child_prob)
        which = torch.randint(0, cfg.children, (n, cfg.n_parents), generator=gen)
        child = torch.where(has_child, which, -1)
        m_parent = (1 + 0.25 * torch.randn(n, cfg.n_parents, generator=gen)).abs() * parents
        m_child = (1 + 0.25 * torch.randn(n, cfg.n_parents, generator=gen)).abs() * has_child
        child_dirs = self.child_directions[torch.arange(cfg.n_parents), which.clamp_min(0)]  # [n, P, d]
        x = m_parent @ self.parent_directions + torch.einsum("np,npd->nd", m_child, child_dirs)
        return HierarchicalSample(x, parents, child)

    def batches(self, batch_size: int, n_batches: int | None = None, seed: int = 1) -> Iterator[Tensor]:
        """Yield ``n_batches`` (or endless) float32 batches [batch_size, d]; seeded."""
        gen = torch.Generator().manual_seed(seed)
        i = 0
        while n_batches is None or i < n_batches:
            yield self.sample(batch_size, gen).x
            i += 1


class AbsorptionResult(NamedTuple):
    """Absorption of the parents by their children in one SAE."""

    rate: float
    """Share of child firings (over all parents) in which the parent's best latent is silent."""
    parent_alone_recall: float
    """Share of parent-only firings (no child) in which the parent's best latent fires."""
    parent_cosine: float
    """Mean cosine of each parent's best latent with its direction."""


@torch.no_grad()
def absorption_rate(sae, parent_directions: Tensor, sample: HierarchicalSample) -> AbsorptionResult:
    """Feature absorption measured on ground truth (see the module docstring); ``sae`` encodes in its current
    mode. ``parent_directions`` [P, d]: the source's (``HierarchicalToySource.parent_directions``)."""
    W_dec_FD = torch.nn.functional.normalize(sae.W_dec.detach().float(), dim=1)
    cos_PF = parent_directions.to(W_dec_FD) @ W_dec_FD.T
    best_P = cos_PF.argmax(dim=1)
    z_NF = sae.encode(sample.x.to(W_dec_FD.device))
    fires_NP = (z_NF[:, best_P] > 0).cpu()
    child_fired_NP = sample.child >= 0
    alone_NP = sample.parents & ~child_fired_NP
    rate = float((~fires_NP & child_fired_NP).sum() / child_fired_NP.sum().clamp_min(1))
    recall = float((fires_NP & alone_NP).sum() / alone_NP.sum().clamp_min(1))
    return AbsorptionResult(rate, recall, float(cos_PF.max(dim=1).values.mean()))
