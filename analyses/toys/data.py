"""Toy-model data (Elhage et al. 2022 setting): sparse features and the hidden activations h = W f.

f_i ~ U[0, 1] with probability d = 1 − S, else 0, independently per feature. Letters: I toys, B
samples, F features, N neurons.
"""

from __future__ import annotations

import numpy as np
import torch


def sample_features(density: np.ndarray, n: int, F: int, rng: np.random.Generator, nonempty: bool) -> np.ndarray:
    """f [I, n, F]: f_i ~ U[0,1] w.p. density[I] else 0; with `nonempty`, exactly conditioned on f ≠ 0.

    Conditioning without rejection: the first active feature J has P(J = j | f ≠ 0) =
    (1 − d)^j d / (1 − (1 − d)^F), j < F (drawn by inverse CDF); features after J are independent
    Bernoulli(d) as before, features before J are off.
    """
    I = density.size
    d = np.asarray(density, dtype=np.float64)[:, None, None]
    u = rng.random((I, n, F))
    if not nonempty:
        active = u < d
    else:
        q = 1.0 - d  # P(a feature is off)
        v = rng.random((I, n, 1))
        with np.errstate(divide="ignore", invalid="ignore"):  # d = 1: log q = −inf, J = 0
            first = np.floor(np.log1p(-v * (1.0 - q ** F)) / np.log(q))
        first = np.clip(np.nan_to_num(first, nan=0.0), 0, F - 1)
        j = np.arange(F)
        active = (j == first) | ((j > first) & (u < d))
    return (active * rng.random((I, n, F))).astype(np.float32)


def hidden_batches(W_NF: torch.Tensor, density: float, n_tokens: int, batch: int, F: int, seed: int):
    """`n_tokens` non-empty hidden activations h = W f [B, N] of one toy, in batches."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_tokens, batch):
        f = sample_features(np.array([density]), min(batch, n_tokens - start), F, rng, nonempty=True)[0]
        yield torch.from_numpy(f) @ W_NF.T


def feature_batches(dens: np.ndarray, batch: int, F: int, seed: int):
    """Endless non-empty feature batches f [I, B, F] for all toys at once."""
    rng = np.random.default_rng(seed)
    while True:
        yield torch.from_numpy(sample_features(dens, batch, F, rng, nonempty=True))
