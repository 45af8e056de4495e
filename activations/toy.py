"""Synthetic superposition with known ground truth (for SAE recovery tests and benchmarks).

x = Σ_i f_i · m_i · u_i + ε,   u_i ∈ R^d unit directions (F_true of them, F_true ≫ d allowed),
f_i ~ Bernoulli(p_i), p_i ∝ (i + 1)^(−zipf_exponent) scaled so Σ p_i = mean_active (capped at 1),
m_i the magnitude (|N(1, σ²)|, exponential or constant), ε ~ N(0, noise²·I).
Optional correlations: within blocks of ``corr_block`` consecutive features the firing decisions come
from a Gaussian copula with correlation ``correlation`` (marginals stay Bernoulli(p_i)).
Streams seeded batches; the same seed gives the same stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


@dataclass
class ToyConfig:
    """Ground-truth sparse source."""

    d: int = 64
    """Activation width."""
    n_features: int = 512
    """Number of true features F_true."""
    mean_active: float = 8.0
    """Expected number of active true features per sample (≈ k)."""
    zipf_exponent: float = 0.5
    """Firing probabilities p_i ∝ (i+1)^(−s)."""
    magnitude: Literal["halfnormal", "exponential", "constant"] = "halfnormal"
    """Distribution of the active magnitudes m_i (halfnormal: |N(1, 0.25²)|)."""
    correlation: float = 0.0
    """Gaussian-copula correlation of firing within a block (0 = independent)."""
    corr_block: int = 4
    """Block size for correlated firing."""
    noise: float = 0.0
    """Std of isotropic Gaussian noise added to x."""
    seed: int = 0
    """Seed of the dictionary and probabilities."""

    def __post_init__(self) -> None:
        if self.d <= 0 or self.n_features <= 0:
            raise ValueError("d and n_features must be positive")
        if not 0 < self.mean_active <= self.n_features:
            raise ValueError("mean_active must be in (0, n_features]")
        if not 0 <= self.correlation < 1:
            raise ValueError("correlation must be in [0, 1)")


class ToySource:
    """A seeded stream of synthetic activations with known features ``true_features`` [F_true, d]."""

    def __init__(self, cfg: ToyConfig):
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        directions = torch.randn(cfg.n_features, cfg.d, generator=gen)
        self.true_features = directions / directions.norm(dim=1, keepdim=True)
        shape = torch.arange(1, cfg.n_features + 1, dtype=torch.float64).pow(-cfg.zipf_exponent)
        self.probs = (shape / shape.sum() * cfg.mean_active).clamp(max=1.0).float()

    @property
    def d(self) -> int:
        return self.cfg.d

    def _firing(self, n: int, gen: torch.Generator) -> Tensor:
        cfg = self.cfg
        if cfg.correlation == 0:
            return torch.rand(n, cfg.n_features, generator=gen) < self.probs
        shared = torch.randn(n, -(-cfg.n_features // cfg.corr_block), generator=gen)
        shared = shared.repeat_interleave(cfg.corr_block, dim=1)[:, : cfg.n_features]
        own = torch.randn(n, cfg.n_features, generator=gen)
        latent = cfg.correlation**0.5 * shared + (1 - cfg.correlation) ** 0.5 * own
        uniform = 0.5 * (1 + torch.erf(latent / 2**0.5))
        return uniform < self.probs

    def _magnitudes(self, n: int, gen: torch.Generator) -> Tensor:
        shape = (n, self.cfg.n_features)
        if self.cfg.magnitude == "constant":
            return torch.ones(shape)
        if self.cfg.magnitude == "exponential":
            return -torch.rand(shape, generator=gen).clamp_min(1e-12).log()
        return (1 + 0.25 * torch.randn(shape, generator=gen)).abs()

    def sample(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """(x [n, d], coefficients [n, F_true])."""
        coeff = self._firing(n, gen).float() * self._magnitudes(n, gen)
        x = coeff @ self.true_features
        if self.cfg.noise > 0:
            x = x + self.cfg.noise * torch.randn(n, self.cfg.d, generator=gen)
        return x, coeff

    def batches(self, batch_size: int, n_batches: int | None = None, seed: int = 1) -> Iterator[Tensor]:
        """Yield ``n_batches`` (or endless) float32 batches [batch_size, d]; seeded."""
        gen = torch.Generator().manual_seed(seed)
        i = 0
        while n_batches is None or i < n_batches:
            yield self.sample(batch_size, gen)[0]
            i += 1
