"""Superposition entropy: the effective number of features an SAE finds at one site.

Bereska et al. 2025, "Superposition as Lossy Compression" (specs/probes.md §1). Over a dataset of
token positions s, feature i's share of the total SAE activation mass is

    p_i = Σ_s |z_is| / Σ_j Σ_s |z_js|,   H = −Σ_i p_i ln p_i,   F_eff = exp(H) ∈ [1, F],

and the superposition ratio is ψ = F_eff / N with N the neurons at the site (d_in of the SAE, i.e.
d_model for the residual stream). ψ > 1: the layer simulates more features than it has neurons.

Absolute values depend on the SAE's width and sparsity, so the result records the SAE configuration:
compare only SAEs of identical configuration.

Streaming: per batch only the mass vector `[F]` is kept; batches are pooled into at most `max_blocks`
bootstrap blocks (adjacent blocks merge pairwise when the limit is reached), so memory is
O(max_blocks · F) whatever the stream length. The CI resamples blocks with replacement and is the
basic bootstrap interval (probes/estimators.py `bootstrap_interval`): it corrects for the plug-in
entropy's low bias, so it may lie above F_eff when many features are rare.

Letters: B tokens in a batch, F SAE features, K bootstrap blocks, R bootstrap resamples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import torch
from torch import Tensor

from superscope.saes.result_repr import Headline, ResultRepr

from ._codes import (
    SignGuard,
    activation_batches,
    as_codes,
    batch_mass,
    encode_stream,
    n_rows,
    sae_config,
    sae_dims,
)
from .estimators import bootstrap_interval, effective_count, entropy_nats


@dataclass(frozen=True, repr=False)
class EffectiveFeatures(ResultRepr):
    """Effective features of one SAE on one activation stream (one layer / site, one architecture)."""

    f_eff: float  # exp(H), effective number of features, in [1, d_sae]
    entropy: float  # H in nats
    psi: float | None  # F_eff / n_neurons, superposition ratio (None when n_neurons is unknown)
    n_neurons: int | None  # N, neurons at the site
    d_sae: int  # F, SAE width
    n_tokens: int  # tokens pooled
    n_alive: int  # features with non-zero mass
    ci_level: float  # level of the bootstrap interval, e.g. 0.95
    f_eff_ci: tuple[float, float] | None  # basic block-bootstrap CI of F_eff (bias-corrected: may exclude f_eff; None: < 2 blocks)
    psi_ci: tuple[float, float] | None  # the same CI divided by N
    n_bootstrap: int  # R, resamples
    n_blocks: int  # K, bootstrap blocks the stream was pooled into
    curve_tokens: tuple[int, ...]  # convergence curve: tokens seen ...
    curve_f_eff: tuple[float, ...]  # ... and F_eff at that point
    sae_config: dict = field(default_factory=dict)  # configuration of the SAE measured (compare like with like)
    label: str = ""  # e.g. "blocks.3.hook_resid_post/topk"

    def to_dict(self) -> dict:
        """JSON-safe dict of every field."""
        from .result_files import json_safe

        return json_safe({k: getattr(self, k) for k in self.__dataclass_fields__})

    def headline(self) -> list[Headline]:
        level = f"{self.ci_level:.0%} CI"
        return [("label", self.label or "—", "text"), ("F_eff", self.f_eff, "num"), (level, self.f_eff_ci, "num"),
                ("ψ", self.psi, "num"), (f"ψ {level}", self.psi_ci, "num"), ("H (nats)", self.entropy, "num"),
                ("neurons", self.n_neurons, "count"), ("d_sae", self.d_sae, "count"),
                ("alive", self.n_alive, "count"), ("tokens", self.n_tokens, "count"),
                ("curve", self.curve_f_eff, "size")]

    def figure(self) -> go.Figure:
        """Convergence curve F_eff vs tokens seen, with the final bootstrap CI as a band."""
        fig = go.Figure()
        fig.add_scatter(x=list(self.curve_tokens), y=list(self.curve_f_eff), mode="lines+markers", name="F_eff")
        if self.f_eff_ci is not None:
            fig.add_hrect(y0=self.f_eff_ci[0], y1=self.f_eff_ci[1], opacity=0.2, line_width=0,
                          annotation_text=f"{self.ci_level:.0%} CI", fillcolor="royalblue")
        psi = f", ψ = {self.psi:.2f}" if self.psi is not None else ""
        fig.update_layout(title=f"Effective features {self.label}: F_eff = {self.f_eff:.1f}{psi}",
                          xaxis_title="tokens seen", yaxis_title="F_eff = exp(H)", xaxis_type="log")
        return fig


class MassAccumulator:
    """Streams per-feature mass; keeps ≤ max_blocks bootstrap blocks and a log-spaced convergence curve."""

    def __init__(self, d_sae: int, max_blocks: int = 256, curve_growth: float = 1.2, sign_check: str = "first"):
        if d_sae < 1:
            raise ValueError(f"d_sae must be >= 1, got {d_sae}")
        if max_blocks < 2 or max_blocks % 2:
            raise ValueError(f"max_blocks must be an even number >= 2, got {max_blocks}")
        self.d_sae = d_sae
        self.guard = SignGuard(sign_check)
        self.max_blocks = max_blocks
        self.blocks_KF = torch.zeros(max_blocks, d_sae, dtype=torch.float64)
        self.total_F = torch.zeros(d_sae, dtype=torch.float64)
        self.block = 0  # index of the block being filled
        self.in_block = 0  # batches already in that block
        self.per_block = 1  # batches per block (doubles at every merge)
        self.n_tokens = 0
        self.curve_growth = curve_growth
        self.next_curve = 1
        self.curve: list[tuple[int, float]] = []

    def add(self, codes: Any) -> None:
        """Add one batch of codes (dense `[B, F]`, the kernels' CSR SparseCodes, a sparse triple, or CooCodes)."""
        z = as_codes(codes, self.d_sae)
        mass_F = batch_mass(z, self.d_sae, self.guard)
        self.n_tokens += n_rows(z)
        self.total_F += mass_F
        self.blocks_KF[self.block] += mass_F
        self.in_block += 1
        if self.in_block == self.per_block:
            self.block, self.in_block = self.block + 1, 0
            if self.block == self.max_blocks:
                self._merge()
        if self.n_tokens >= self.next_curve and float(self.total_F.sum()) > 0:
            self.curve.append((self.n_tokens, effective_count(self.total_F)))
            self.next_curve = max(self.n_tokens + 1, int(self.n_tokens * self.curve_growth))

    def _merge(self) -> None:
        half = self.max_blocks // 2
        self.blocks_KF[:half] = self.blocks_KF[0::2] + self.blocks_KF[1::2]
        self.blocks_KF[half:] = 0
        self.block, self.per_block = half, self.per_block * 2

    def used_blocks(self) -> Tensor:
        """The non-empty blocks `[K, F]` (the last one may hold fewer batches)."""
        k = self.block + (1 if self.in_block else 0)
        return self.blocks_KF[:k]

    def bootstrap(self, n_bootstrap: int, seed: int) -> Tensor:
        """F_eff of R resamples of the blocks with replacement, `[R]` (empty when < 2 blocks)."""
        blocks_KF = self.used_blocks()
        K = blocks_KF.shape[0]
        if K < 2 or n_bootstrap < 1:
            return torch.empty(0, dtype=torch.float64)
        gen = torch.Generator().manual_seed(seed)
        idx_RK = torch.randint(0, K, (n_bootstrap, K), generator=gen)
        counts_RK = torch.zeros(n_bootstrap, K, dtype=torch.float64).scatter_add_(1, idx_RK, torch.ones(n_bootstrap, K, dtype=torch.float64))
        mass_RF = counts_RK @ blocks_KF
        return torch.exp(entropy_nats(mass_RF))

    def result(self, n_neurons: int | None, n_bootstrap: int = 200, ci_level: float = 0.95, seed: int = 0,
               sae_cfg: dict | None = None, label: str = "") -> EffectiveFeatures:
        """Summarise the stream so far as an EffectiveFeatures result."""
        if self.n_tokens == 0:
            raise ValueError("empty stream: no tokens were given; pass at least one non-empty batch of codes")
        f_eff = effective_count(self.total_F)
        if not self.curve or self.curve[-1][0] != self.n_tokens:
            self.curve.append((self.n_tokens, f_eff))
        boot_R = self.bootstrap(n_bootstrap, seed)
        ci = bootstrap_interval(boot_R, f_eff, ci_level) if boot_R.numel() else None
        psi = f_eff / n_neurons if n_neurons else None
        psi_ci = (ci[0] / n_neurons, ci[1] / n_neurons) if (ci is not None and n_neurons) else None
        return EffectiveFeatures(
            f_eff=f_eff, entropy=float(entropy_nats(self.total_F)), psi=psi, n_neurons=n_neurons,
            d_sae=self.d_sae, n_tokens=self.n_tokens, n_alive=int((self.total_F > 0).sum()),
            ci_level=ci_level, f_eff_ci=ci, psi_ci=psi_ci, n_bootstrap=int(boot_R.numel()),
            n_blocks=int(self.used_blocks().shape[0]), curve_tokens=tuple(t for t, _ in self.curve),
            curve_f_eff=tuple(f for _, f in self.curve), sae_config=dict(sae_cfg or {}), label=label)


def effective_features_from_codes(code_batches: Iterable[Any], d_sae: int, n_neurons: int | None = None, *,
                                  n_bootstrap: int = 200, ci_level: float = 0.95, max_blocks: int = 256,
                                  seed: int = 0, sae_cfg: dict | None = None, label: str = "",
                                  sign_check: str = "first") -> EffectiveFeatures:
    """Effective features from precomputed codes.

    `code_batches` yields dense codes `[B, d_sae]` (tensor or array), the kernels' CSR SparseCodes
    (`sae(x).codes`), torch sparse tensors, or sparse triples `(rows, cols, vals[, n_rows])`. Raises ValueError on a width other than `d_sae` or an
    empty stream. `sign_check`: "first" checks the first dense batch for negative codes and then
    trusts the sign (SAE codes are ReLU outputs), "every" checks each batch (see _codes.SignGuard).
    """
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be in (0, 1), got {ci_level}")
    acc = MassAccumulator(d_sae, max_blocks=max_blocks, sign_check=sign_check)
    for codes in code_batches:
        acc.add(codes)
    return acc.result(n_neurons, n_bootstrap, ci_level, seed, sae_cfg, label)


def effective_features(sae: Any, batches: Any, n_neurons: int | None = None, n_bootstrap: int = 200, *,
                       ci_level: float = 0.95, max_tokens: int | None = None, batch_size: int = 4096,
                       max_blocks: int = 256, seed: int = 0, label: str = "",
                       block_tokens: int | None = 256) -> EffectiveFeatures:
    """Effective features F_eff and superposition ratio ψ of `sae` on an activation stream.

    `batches`: an iterable of activations `[B, d_in]`, or an ActivationSource (anything with
    `.batches(batch_size, shuffle=False)`). `n_neurons` defaults to the SAE's d_in. Works with
    superscope SAEs and `sae_lens.SAE` (duck-typed on `.encode` and `.cfg`).
    `block_tokens`: the bootstrap resamples blocks of this many consecutive tokens (None: one block
    per batch). The SAE still encodes whole batches, so Mutual / Feature Choice select over the batch
    as in training; only the bookkeeping is finer (8k held-out tokens in batches of 4096 would give
    2 blocks, too few for a CI).
    """
    if block_tokens is not None and block_tokens < 1:
        raise ValueError(f"block_tokens must be >= 1 or None, got {block_tokens}")
    d_in, d_sae = sae_dims(sae)
    stream = encode_stream(sae, activation_batches(batches, batch_size), d_in, max_tokens)
    if block_tokens is not None:
        stream = (block for z_BF in stream for block in z_BF.split(block_tokens))
    return effective_features_from_codes(
        stream, d_sae, n_neurons if n_neurons is not None else d_in, n_bootstrap=n_bootstrap,
        ci_level=ci_level, max_blocks=max_blocks, seed=seed, sae_cfg=sae_config(sae), label=label)
