"""Training losses (specs/saes.md "Losses"). All are computed in the scaled input space.

- L_rec = Σ‖x − x̂‖² / Σ‖x − x̄‖² over the batch (normalised MSE = batch FVU); for a Matryoshka SAE
  Σ_l w_l·FVU_l over its nested prefixes (``reconstruction_loss``, saes/matryoshka.py).
- AuxK (Gao et al. 2024, App. A.2): reconstruct the residual e = x − x̂ with the top-k_aux
  pre-activations among *dead* features, L_aux = ‖ê − e‖² / Σ‖e − ē‖², scaled by min(#dead/k_aux, 1).
- aux_zipf: the same recipe over dead *and under-used* features U (see ``zipf_aux_set``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from superscope.kernels import crow_uniform, dispatch
from superscope.kernels.threads import all_threads

from .base import BaseSAE, ForwardOutput
from .matryoshka import matryoshka_loss
from .zipf import fit_zipf_exponent, zipf_targets


def normalized_mse(x_BD: Tensor, x_hat_BD: Tensor) -> Tensor:
    """Σ‖x − x̂‖² / Σ‖x − x̄‖² (x̄ the batch mean)."""
    denom = (x_BD - x_BD.mean(0, keepdim=True)).pow(2).sum().clamp_min(1e-12)
    # one fused op forward and backward (vs sub/pow/sum and their backward): same values
    return F.mse_loss(x_hat_BD, x_BD, reduction="sum") / denom


def reconstruction_loss(sae: BaseSAE, out: ForwardOutput) -> Tensor:
    """L_rec of the step: the FVU, or for a Matryoshka SAE (``cfg.matryoshka_prefixes``) Σ_l w_l·FVU_l over
    its prefixes (saes/matryoshka.py), from the same sparse codes."""
    if sae.cfg.matryoshka_prefixes:
        return matryoshka_loss(sae, out)
    return normalized_mse(out.x_scaled, out.x_hat_scaled)


def aux_reconstruction_loss(sae: BaseSAE, out: ForwardOutput, aux_mask_F: Tensor, k_aux: int) -> Tensor:
    """AuxK recipe over the features in ``aux_mask_F``: per-token top-k_aux of their pre-activations,
    ê = z_aux @ W_dec (no b_dec), loss ‖ê − e‖² / Σ‖e − ē‖² · min(|A|/k_aux, 1). Zero if A is empty."""
    aux_idx_A = aux_mask_F.nonzero().squeeze(1)
    n_aux = aux_idx_A.numel()
    if n_aux == 0:
        return out.x_hat_scaled.new_zeros(())
    residual_BD = (out.x_scaled - out.x_hat_scaled).detach()
    xc_BD = (out.x_scaled - sae.b_dec).detach()
    with torch.no_grad(), all_threads(xc_BD.shape[0] * n_aux):
        pre_BA = torch.addmm(sae.b_enc[aux_idx_A], xc_BD, sae.W_enc[:, aux_idx_A])
        k = min(k_aux, n_aux)
        pre_BK, local_BK = pre_BA.topk(k, dim=1)
    with torch.no_grad():
        cols_BK, order_BK = aux_idx_A[local_BK].sort(dim=1)
        pre_BK = pre_BK.gather(1, order_BK)
    crow_B1 = crow_uniform(xc_BD.shape[0], k, device=xc_BD.device)
    cols_N = cols_BK.reshape(-1)
    pre_N = dispatch.selected_preacts(xc_BD, sae.W_enc, sae.b_enc, crow_B1, cols_N, pre_BK.reshape(-1))
    e_hat_BD = dispatch.sparse_decode(torch.relu(pre_N), crow_B1, cols_N, sae.W_dec)
    scale = min(n_aux / k_aux, 1.0)
    return scale * normalized_mse(residual_BD, e_hat_BD)


def auxk_loss(sae: BaseSAE, out: ForwardOutput, dead_mask_F: Tensor, k_aux: int) -> Tensor:
    """AuxK (Gao et al. 2024, App. A.2) over the dead features."""
    return aux_reconstruction_loss(sae, out, dead_mask_F, k_aux)


def zipf_aux_set(freq_F: Tensor, dead_mask_F: Tensor, gamma: float, s: float | None) -> Tensor:
    """U = {f : p_f < γ·p*_rank(f)} ∪ dead, p*_r = C·r^(−s) with Σ p*_r = Σ p_f."""
    total = float(freq_F.sum())
    if total <= 0 or gamma <= 0:
        return dead_mask_F.clone()
    exponent = fit_zipf_exponent(freq_F) if s is None else s
    # tied frequencies share their ranks' mean target (a stable sort would rank ties by feature index)
    target_F = zipf_targets(freq_F, exponent, total).to(freq_F.dtype)
    under_used = freq_F < gamma * target_F
    return under_used | dead_mask_F


def aux_zipf_loss(
    sae: BaseSAE, out: ForwardOutput, freq_F: Tensor, dead_mask_F: Tensor, k_aux: int,
    gamma: float = 0.5, s: float | None = 1.0,
) -> Tensor:
    """Zipf auxiliary loss — superscope's own definition of the idea in Ayonrinde 2024 (arXiv
    2411.02124), whose exact formula was not available to us (specs/saes.md):

    1. p_f = EMA of feature f's firing frequency;
    2. target p*_r = C·r^(−s) over ranks r of p sorted descending, s given (default 1) or fitted on
       ranks 1…F/2, C such that Σ p*_r = Σ p_f;
    3. auxiliary set U = {f : p_f < γ·p*_rank(f)} ∪ dead;
    4. the AuxK recipe with U in place of the dead set, scale min(|U|/k_aux, 1).

    With γ → 0 only the dead rule remains and it equals ``auxk_loss`` (tested).
    """
    return aux_reconstruction_loss(sae, out, zipf_aux_set(freq_F, dead_mask_F, gamma, s), k_aux)
