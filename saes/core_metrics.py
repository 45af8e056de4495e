"""SAEBench's core metrics beyond FVU / L0 / CE / KL (Karvonen et al. 2025, "SAEBench", arXiv 2503.09532,
core eval: ``sae_bench/evals/core/main.py``). Field names follow SAEBench where the definition is the same.

Shape letters: T tokens, D = d_in, F = d_sae (latents), C a chunk of latents.

Per token (accumulated over a stream with ``ReconstructionSums``, one pass):
- L2 ratio        = mean_t ‖x̂_t‖ / ‖x_t‖   (SAEBench ``l2_ratio``; a token with ‖x_t‖ < 1e-4 is divided by 1,
  as SAEBench does, so a zero input cannot make it infinite).
- relative reconstruction bias γ = argmin_γ E‖x̂/γ − x‖² = E[x̂·x̂] / E[x·x̂]
  (Rajamanoharan et al. 2024, Gated SAEs, arXiv 2404.16014, eq. 10; SAEBench
  ``relative_reconstruction_bias``). γ < 1 means the SAE shrinks its reconstructions, the bias an L1
  penalty causes (Wright & Sharkey 2024, "Addressing Feature Suppression in SAEs"); γ = 1: no shrinkage.
  Here both expectations are sums over the whole eval set; SAEBench averages per-batch ratios, which
  depends on the batch size (identical on one batch).
- cosine similarity = mean_t cos(x_t, x̂_t)  (SAEBench ``cossim``; a zero vector gives cosine 0, not NaN).

Per latent (from firing counts or the weights):
- dense latents: share of latents firing on > 1 % / > 10 % of tokens (SAEBench ``freq_over_1_percent``,
  ``freq_over_10_percent``).
- max pairwise |cosine|: for each decoder row W_dec[f] (encoder column W_enc[:, f]) the max |cos| with any
  other row (column); its mean over latents. SAEBench's ``max_decoder_cosine_sim`` is the *signed* max
  (``absolute=False`` here); |cos| also flags anti-parallel pairs.
- encoder–decoder cosine per latent: cos(W_enc[:, f], W_dec[f]) (SAEBench ``encoder_decoder_cosine_sim``);
  1 for a tied SAE (W_enc = W_decᵀ).

Every function takes its device from its inputs; the sums are kept in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

ZERO_NORM = 1e-4
"""SAEBench's guard: a token with ‖x‖ below this is divided by 1 in the L2 ratio."""


def l2_ratio_per_token(x_TD: Float[Tensor, "T D"], x_hat_TD: Float[Tensor, "T D"]) -> Float[Tensor, " T"]:
    """‖x̂_t‖ / ‖x_t‖ per token (float64); ‖x_t‖ < 1e-4 is replaced by 1 (SAEBench)."""
    norm_in_T = x_TD.double().norm(dim=-1)
    norm_in_T = torch.where(norm_in_T.abs() < ZERO_NORM, torch.ones_like(norm_in_T), norm_in_T)
    return x_hat_TD.double().norm(dim=-1) / norm_in_T


def cosine_per_token(x_TD: Float[Tensor, "T D"], x_hat_TD: Float[Tensor, "T D"]) -> Float[Tensor, " T"]:
    """cos(x_t, x̂_t) per token (float64); 0 where either vector is zero."""
    return torch.nn.functional.cosine_similarity(x_TD.double(), x_hat_TD.double(), dim=-1, eps=1e-12)


@dataclass(frozen=True)
class ReconstructionSums:
    """Sums over tokens from which the per-token metrics follow; add the sums of each batch (one pass)."""

    n_tokens: int = 0
    l2_ratio_sum: float = 0.0
    """Σ_t ‖x̂_t‖ / ‖x_t‖."""
    cossim_sum: float = 0.0
    """Σ_t cos(x_t, x̂_t)."""
    x_hat_sq_sum: float = 0.0
    """Σ_t ‖x̂_t‖²."""
    x_dot_x_hat_sum: float = 0.0
    """Σ_t x_t · x̂_t."""

    @classmethod
    def of(cls, x_TD: Float[Tensor, "T D"], x_hat_TD: Float[Tensor, "T D"]) -> ReconstructionSums:
        x, x_hat = x_TD.detach().double(), x_hat_TD.detach().double()
        sums = torch.stack([l2_ratio_per_token(x, x_hat).sum(), cosine_per_token(x, x_hat).sum(),
                            x_hat.pow(2).sum(), (x * x_hat).sum()]).tolist()  # one device sync
        return cls(x.shape[0], *sums)

    def __add__(self, other: ReconstructionSums) -> ReconstructionSums:
        return ReconstructionSums(self.n_tokens + other.n_tokens, self.l2_ratio_sum + other.l2_ratio_sum,
                                  self.cossim_sum + other.cossim_sum, self.x_hat_sq_sum + other.x_hat_sq_sum,
                                  self.x_dot_x_hat_sum + other.x_dot_x_hat_sum)

    @property
    def l2_ratio(self) -> float:
        """mean_t ‖x̂_t‖ / ‖x_t‖ (NaN on no tokens)."""
        return self.l2_ratio_sum / self.n_tokens if self.n_tokens else float("nan")

    @property
    def cossim(self) -> float:
        """mean_t cos(x_t, x̂_t) (NaN on no tokens)."""
        return self.cossim_sum / self.n_tokens if self.n_tokens else float("nan")

    @property
    def relative_reconstruction_bias(self) -> float:
        """γ = Σ‖x̂‖² / Σ x·x̂ (NaN where Σ x·x̂ = 0)."""
        return self.x_hat_sq_sum / self.x_dot_x_hat_sum if self.x_dot_x_hat_sum else float("nan")


def l2_ratio(x_TD: Float[Tensor, "T D"], x_hat_TD: Float[Tensor, "T D"]) -> float:
    """mean_t ‖x̂_t‖ / ‖x_t‖."""
    return ReconstructionSums.of(x_TD, x_hat_TD).l2_ratio


def cosine_similarity(x_TD: Float[Tensor, "T D"], x_hat_TD: Float[Tensor, "T D"]) -> float:
    """mean_t cos(x_t, x̂_t)."""
    return ReconstructionSums.of(x_TD, x_hat_TD).cossim


def relative_reconstruction_bias(x_TD: Float[Tensor, "T D"], x_hat_TD: Float[Tensor, "T D"]) -> float:
    """γ = argmin_γ E‖x̂/γ − x‖² = E‖x̂‖² / E[x·x̂] (shrinkage: γ < 1)."""
    return ReconstructionSums.of(x_TD, x_hat_TD).relative_reconstruction_bias


def dense_fraction(density_F: Float[Tensor, " F"], threshold: float) -> float:
    """Share of latents whose firing frequency (fires / tokens) is > ``threshold`` (0.01, 0.1 in SAEBench)."""
    return float((density_F > threshold).double().mean())


@torch.no_grad()
def max_pairwise_cosine(vectors_FD: Float[Tensor, "F D"], absolute: bool = True,
                        chunk: int = 1024) -> Float[Tensor, " F"]:
    """Per latent f: max over g ≠ f of |cos(v_f, v_g)| (signed cos if ``absolute`` is False, as SAEBench).

    Pass decoder rows as ``W_dec`` [F, D] and encoder columns as ``W_enc.T``. Computed ``chunk`` rows at a
    time, so memory is chunk × F (F = 4608: 19 MB per chunk in float32, not the 85 MB F × F matrix).
    NaN where F < 2 (no other latent); a zero vector has cosine 0 with everything.
    """
    v_FD = torch.nn.functional.normalize(vectors_FD.detach().float(), dim=1)
    n = v_FD.shape[0]
    max_F = torch.empty(n, dtype=v_FD.dtype, device=v_FD.device)
    for start in range(0, n, chunk):
        sims_CF = v_FD[start:start + chunk] @ v_FD.T
        if absolute:
            sims_CF = sims_CF.abs()
        rows_C = torch.arange(sims_CF.shape[0], device=v_FD.device)
        sims_CF[rows_C, rows_C + start] = float("-inf")  # not itself
        max_F[start:start + chunk] = sims_CF.max(dim=1).values
    return max_F.masked_fill_(max_F == float("-inf"), float("nan"))


@torch.no_grad()
def encoder_decoder_cosine(W_enc_DF: Float[Tensor, "D F"], W_dec_FD: Float[Tensor, "F D"]) -> Float[Tensor, " F"]:
    """cos(W_enc[:, f], W_dec[f]) per latent: how far the encoder direction of f is from its decoder direction."""
    return torch.nn.functional.cosine_similarity(W_enc_DF.detach().float().T, W_dec_FD.detach().float(),
                                                 dim=1, eps=1e-12)
