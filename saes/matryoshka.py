"""Matryoshka SAEs (Bussmann et al. 2025, "Learning Multi-Level Features with Matryoshka SAEs";
Nabeshima 2025; arXiv 2503.17547) for every selection rule.

Matryoshka is a training objective, not a selection rule. The codes z come from the variant's own
selection (TopK, BatchTopK / Mutual Choice, Feature Choice), once; with prefix sizes F_1 < … < F_L = F
of the latent order the loss is

    L_rec = Σ_l w_l · FVU(x, z[:, :F_l] · W_dec[:F_l] + b_dec)        (w_l = 1 by default)

computed on the sparse codes (``kernels.prefix_losses``: no dense [B, F] per prefix). The inner latents
must reconstruct alone, so they learn general features and the outer ones specific ones: a parent
feature is not absorbed into its children (less feature absorption). The saved latent order is the
prefix order (no permutation at save), so the first F_l latents are a working SAE of width F_l.

Any architecture gets the objective through ``SAEConfig.matryoshka_prefixes``; the classes below are
the registered names for it (default prefixes [F/16, F/8, F/4, F/2, F]). Compared with the reference
implementations users know:
- SAELens ``MatryoshkaBatchTopKTrainingSAE`` (sae_lens/saes/matryoshka_batchtopk_sae.py): loss = Σ over
  widths of the summed-over-d, mean-over-batch MSE (weights 1, not normalised by the variance), AuxK on
  the full residual by default, BatchTopK threshold learned as an EMA of the smallest positive code
  (lr 0.01), saved for inference as a JumpReLU with that global threshold — as ``interop.export_saelens``
  does with ours.
- dictionary_learning ``MatryoshkaBatchTopKTrainer`` (trainers/matryoshka_batch_top_k.py): groups given
  as fractions of F, weights 1/L each by default, the mean of the weighted level losses, AuxK on the full
  residual, threshold EMA (β = 0.999) from step 1000.
Ours: FVU-normalised prefix losses (the project's L_rec, specs/saes.md), weights configurable
(``matryoshka_weights``), AuxK on the full residual, the variant's own threshold statistic.
Colours: a darker shade of the flat counterpart's, so a figure pairs each with its flat variant.
"""

from __future__ import annotations

import torch
from torch import Tensor

from superscope.kernels.prefix_losses import prefix_fvus

from .base import BaseSAE, ForwardOutput
from .feature_choice import FeatureChoiceSAE
from .mutual_choice import BatchTopKSAE, MutualChoiceSAE
from .registry import register
from .topk import TopKSAE


def matryoshka_fvus(sae: BaseSAE, out: ForwardOutput) -> Tensor:
    """FVU of each prefix's reconstruction (scaled space) → [L]; the last is the SAE's plain FVU."""
    codes = out.codes
    return prefix_fvus(codes.values_N, codes.crow_B1, codes.cols_N, sae.W_dec, sae.b_dec, out.x_scaled,
                       tuple(sae.cfg.matryoshka_prefixes))


def matryoshka_loss(sae: BaseSAE, out: ForwardOutput) -> Tensor:
    """Σ_l w_l · FVU_l over ``sae.cfg.matryoshka_prefixes``."""
    fvus_L = matryoshka_fvus(sae, out)
    return (fvus_L * torch.tensor(sae.cfg.matryoshka_loss_weights, dtype=fvus_L.dtype, device=fvus_L.device)).sum()


@register("matryoshka_topk")
class MatryoshkaTopKSAE(TopKSAE):
    """TopK selection (per token) + Matryoshka prefix losses."""

    label, color, order = "Matryoshka TopK", "#0b4f6c", 4
    nested = True


@register("matryoshka_batchtopk")
class MatryoshkaBatchTopKSAE(BatchTopKSAE):
    """BatchTopK selection (global top-M) + Matryoshka prefix losses: the common Matryoshka SAE."""

    label, color, order = "Matryoshka BatchTopK", "#4b2a7b", 5
    nested = True


@register("matryoshka_mutual_choice")
class MatryoshkaMutualChoiceSAE(MutualChoiceSAE):
    """Mutual Choice selection + Matryoshka prefix losses."""

    label, color, order = "Matryoshka Mutual Choice", "#8b1a1a", 6
    nested = True


@register("matryoshka_feature_choice")
class MatryoshkaFeatureChoiceSAE(FeatureChoiceSAE):
    """Feature Choice selection (per-feature capacities) + Matryoshka prefix losses."""

    label, color, order = "Matryoshka Feature Choice", "#1b5e20", 7
    nested = True
