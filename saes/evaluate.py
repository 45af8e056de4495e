"""Model-free SAE metrics (specs/saes.md "Metrics"), streamed over an evaluation set.

- FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖² with x̄ the mean over the whole eval set (the denominator is merged
  across batches with Chan et al.'s pairwise update, in float64); explained variance = 1 − FVU.
- L0: mean, spread, per-token histogram (FC/MC vary per token: report the distribution).
- silent fraction ``dead_frac`` (never fired on the eval set: on a short eval set this counts rare
  features too), dead in training ``dead_train_frac`` (the training rule, from the saved counters),
  dense fraction (fires on > 10 % of tokens), log10 feature-density histogram.
- SAEBench core extras (saes/core_metrics.py, definitions there): L2 ratio, relative reconstruction bias
  (shrinkage), cosine of x and x̂ (accumulated in the same pass), latents firing on > 1 % / > 10 % of
  tokens, mean max pairwise |cos| of decoder rows / encoder columns, encoder–decoder cosine per latent.
- Ground-truth recovery (synthetic data): per true feature the max signed cosine with any decoder row;
  MMCS = mean of those, and the fraction above 0.9.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from .base import BaseSAE
from .core_metrics import ReconstructionSums, dense_fraction, encoder_decoder_cosine, max_pairwise_cosine
from .result_repr import Headline, ResultRepr
from .stats import dead_in_training


@dataclass(frozen=True, repr=False)
class EvalResult(ResultRepr):
    """Metrics of one SAE on one evaluation set."""

    n_tokens: int
    fvu: float
    explained_variance: float
    mse: float
    l0_mean: float
    l0_std: float
    l0_hist: list[int]
    """l0_hist[i] = number of tokens with exactly i active features (last bin: ≥ len−1)."""
    dead_frac: float
    dense_frac: float
    log_density_edges: list[float]
    log_density_hist: list[int]
    """Histogram of log10(firing frequency) over features that fired at least once."""
    inference_mode: str
    dead_train_frac: float | None = None
    """Dead by the training rule (no fire in the last dead_tokens training tokens); None if not trained here."""
    l2_ratio: float = float("nan")
    """mean over tokens of ‖x̂‖ / ‖x‖ (SAEBench ``l2_ratio``)."""
    relative_reconstruction_bias: float = float("nan")
    """γ = argmin_γ E‖x̂/γ − x‖² = Σ‖x̂‖² / Σ x·x̂ over the eval set; < 1 = shrinkage (SAEBench name)."""
    cossim: float = float("nan")
    """mean over tokens of cos(x, x̂) (SAEBench ``cossim``)."""
    freq_over_1_percent: float = float("nan")
    """Share of latents firing on > 1 % of the eval tokens (SAEBench name)."""
    freq_over_10_percent: float = float("nan")
    """Share of latents firing on > 10 % of the eval tokens (SAEBench name; the same number as dense_frac)."""
    max_abs_cos_decoder_mean: float = float("nan")
    """Mean over latents of the max |cos| between its decoder row and any other (SAEBench's
    average_max_decoder_cosine_sim uses the signed cosine)."""
    max_abs_cos_encoder_mean: float = float("nan")
    """Mean over latents of the max |cos| between its encoder column and any other."""
    encoder_decoder_cosine_sim_mean: float = float("nan")
    """Mean over latents of cos(W_enc[:, f], W_dec[f])."""
    encoder_decoder_cosine_sim: list[float] = field(default_factory=list)
    """Per latent, cos(W_enc[:, f], W_dec[f]) (SAEBench per-feature ``encoder_decoder_cosine_sim``)."""

    def to_dict(self) -> dict:
        return asdict(self)

    def headline(self) -> list[Headline]:
        return [("FVU", self.fvu, "num"), ("explained variance", self.explained_variance, "pct"),
                ("MSE", self.mse, "num"), ("L0", (self.l0_mean, self.l0_std), "pm"),
                ("tokens", self.n_tokens, "count"), ("silent", self.dead_frac, "pct"),
                ("dead in training", self.dead_train_frac, "pct"), ("dense", self.dense_frac, "pct"),
                ("cos(x, x̂)", self.cossim, "num"), ("L2 ratio", self.l2_ratio, "num"),
                ("shrinkage γ", self.relative_reconstruction_bias, "num"),
                ("inference", self.inference_mode, "text"), ("l0_hist", self.l0_hist, "size"),
                ("log_density_hist", self.log_density_hist, "size")]


def fvu(x_BD: Tensor, x_hat_BD: Tensor) -> float:
    """Σ‖x − x̂‖² / Σ‖x − x̄‖² on one tensor (two-pass, float64)."""
    x, x_hat = x_BD.detach().double(), x_hat_BD.detach().double()
    return float(((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).detach())


class _VarianceAccumulator:
    """Σ‖x − x̄‖² over a stream (Chan, Golub & LeVeque 1979 pairwise merge)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, None, 0.0

    def add(self, x_BD: Tensor) -> None:
        x = x_BD.double()
        nb, mean_b = x.shape[0], x.mean(0)
        m2_b = float((x - mean_b).pow(2).sum())
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        delta = mean_b - self.mean
        total = self.n + nb
        self.m2 += m2_b + float(delta.pow(2).sum()) * self.n * nb / total
        self.mean = self.mean + delta * nb / total
        self.n = total


@torch.no_grad()
def evaluate(sae: BaseSAE, batches: Iterable[Tensor], max_l0_bin: int | None = None) -> EvalResult:
    """Stream the eval set once; returns an ``EvalResult``."""
    sae.eval()
    var, sq_err, n = _VarianceAccumulator(), 0.0, 0
    rec = ReconstructionSums()
    fired_F = torch.zeros(sae.cfg.d_sae, dtype=torch.int64)
    l0_all: list[Tensor] = []
    for x in batches:
        out = sae(x)
        var.add(x)
        sq_err += float((x.double() - out.x_hat.double()).pow(2).sum())
        rec = rec + ReconstructionSums.of(x, out.x_hat)
        n += x.shape[0]
        fired_F += out.codes.fired_counts().cpu()
        l0_all.append(out.codes.l0_per_row().cpu())
    if n == 0:
        raise ValueError("evaluation set is empty: no activation batches were given")
    l0 = torch.cat(l0_all).float()
    top = max_l0_bin or max(int(l0.max()) + 1, 2 * sae.cfg.k + 1)
    l0_hist = torch.bincount(l0.long().clamp(max=top), minlength=top + 1)
    density_F = fired_F.double() / n
    alive = density_F[density_F > 0]
    edges = torch.linspace(-8, 0, 33, dtype=torch.float64)
    log_hist = torch.histogram(alive.log10().clamp(-8, 0), bins=edges).hist if alive.numel() else torch.zeros(32)
    fvu_value = sq_err / var.m2 if var.m2 > 0 else float("nan")
    enc_dec_cos_F = encoder_decoder_cosine(sae.W_enc, sae.W_dec).cpu()
    return EvalResult(
        n_tokens=n, fvu=fvu_value, explained_variance=1 - fvu_value, mse=sq_err / n,
        l0_mean=float(l0.mean()), l0_std=float(l0.std()) if n > 1 else 0.0,
        l0_hist=[int(v) for v in l0_hist], dead_frac=float((fired_F == 0).double().mean()),
        dense_frac=float((density_F > 0.1).double().mean()),
        log_density_edges=[float(e) for e in edges], log_density_hist=[int(v) for v in log_hist],
        inference_mode="batch" if sae.batch_mode else "threshold", dead_train_frac=dead_in_training(sae),
        l2_ratio=rec.l2_ratio, relative_reconstruction_bias=rec.relative_reconstruction_bias, cossim=rec.cossim,
        freq_over_1_percent=dense_fraction(density_F, 0.01), freq_over_10_percent=dense_fraction(density_F, 0.1),
        max_abs_cos_decoder_mean=float(max_pairwise_cosine(sae.W_dec).mean()),
        max_abs_cos_encoder_mean=float(max_pairwise_cosine(sae.W_enc.T).mean()),
        encoder_decoder_cosine_sim_mean=float(enc_dec_cos_F.mean()),
        encoder_decoder_cosine_sim=[float(v) for v in enc_dec_cos_F],
    )


@dataclass(frozen=True, repr=False)
class RecoveryResult(ResultRepr):
    """How well the decoder recovers known ground-truth directions."""

    mmcs: float
    """Mean over true features of the max *signed* cosine with any decoder row (MMCS, Sharkey et al. 2022).
    Signed, not |cosine|: codes are non-negative (ReLU) and the true features fire with non-negative
    magnitudes, so a decoder row anti-parallel to a feature cannot reconstruct it and must not count."""
    frac_recovered: float
    """Share of true features with max signed cosine > threshold."""
    threshold: float
    max_cos_per_feature: list[float]
    """Per true feature, the max signed cosine with any decoder row."""

    def to_dict(self) -> dict:
        return asdict(self)

    def headline(self) -> list[Headline]:
        return [("MMCS", self.mmcs, "num"), (f"recovered (cos > {self.threshold:g})", self.frac_recovered, "pct"),
                ("true features", len(self.max_cos_per_feature), "count")]


@torch.no_grad()
def ground_truth_recovery(W_dec_FD: Tensor, true_features_TD: Tensor, threshold: float = 0.9) -> RecoveryResult:
    dec = torch.nn.functional.normalize(W_dec_FD.float(), dim=1)
    true = torch.nn.functional.normalize(true_features_TD.float(), dim=1)
    max_cos_T = (true @ dec.T).max(dim=1).values
    return RecoveryResult(float(max_cos_T.mean()), float((max_cos_T > threshold).float().mean()),
                          threshold, [float(v) for v in max_cos_T])
