"""Feature Choice SAE (Ayonrinde 2024, arXiv 2411.02124, §3).

    S[:, f] = top-m_f rows of column f of ReLU(pre),   Σ_f m_f = M = k·B

Each feature chooses the tokens it fires on, with a capacity m_f: ``uniform`` (m_f = ⌈c·M/F⌉) or
``zipf`` (m_f ∝ rank_f^(−s), rank by the running firing-frequency EMA, s fitted on the head of the
observed frequency curve unless given; normalised to Σ m_f = M, each m_f ≤ B).

Inference (specs/saes.md): per-feature thresholds θ_f = EMA of the m_f-th largest value of column f
during training; ``threshold`` mode uses z = ReLU(pre)·1[ReLU(pre) > θ_f]. As for MC, the trainer
ends by setting θ_f from the final weights on the last batch (``TrainConfig.calibrate_thresholds``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from superscope.kernels import dispatch
from superscope.kernels.threads import all_threads

from .base import BaseSAE, ForwardOutput, Selection
from .config import SAEConfig
from .registry import register
from .zipf import fit_zipf_exponent, integer_capacities, zipf_profile


@register("feature_choice")
class FeatureChoiceSAE(BaseSAE):
    """Per-feature capacities; learned per-feature thresholds ``theta_F`` for inference."""

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        self.register_buffer("theta_F", torch.zeros(cfg.d_sae, dtype=torch.float32))
        self.register_buffer("theta_updates", torch.zeros((), dtype=torch.int64))
        self._last_capacity_F: Tensor | None = None

    def capacities(self, n_rows: int) -> Tensor:
        """m_f for a batch of n_rows tokens (int64 [F]); Σ m_f = k·n_rows unless capped by n_rows·F."""
        F, budget = self.cfg.d_sae, self.cfg.k * n_rows
        if self.cfg.capacity_mode == "uniform" or not bool((self.freq_ema_F > 0).any()):
            per = min(n_rows, math.ceil(self.cfg.capacity_factor * budget / F))
            return torch.full((F,), per, dtype=torch.long)
        s = self.cfg.zipf_exponent
        if s is None:
            s = fit_zipf_exponent(self.freq_ema_F)
        by_rank = integer_capacities(zipf_profile(F, s, budget), budget, n_rows)
        dev = self.freq_ema_F.device
        by_rank = by_rank.to(dev)
        rank_of_F = torch.empty(F, dtype=torch.long, device=dev)
        rank_of_F[self.freq_ema_F.argsort(descending=True, stable=True)] = torch.arange(F, device=dev)
        return by_rank[rank_of_F]

    def select(self, xc_BD: Tensor) -> Selection:
        # ReLU in place: every selected entry is > 0, where ReLU(pre) = pre, so the gather below gives pre_N
        with all_threads(xc_BD.shape[0] * self.cfg.d_sae):
            acts_BF = self.dense_preacts(xc_BD).clamp_min_(0)
        if self.batch_mode:
            capacity_F = self.capacities(xc_BD.shape[0]).to(xc_BD.device)
            crow_B1, cols_N = dispatch.topm_per_column(acts_BF, capacity_F)
            self._last_capacity_F = capacity_F
        else:
            crow_B1, cols_N = dispatch.threshold_select(acts_BF, self.theta_F.to(acts_BF.dtype))
        rows_N = torch.repeat_interleave(torch.arange(xc_BD.shape[0], device=xc_BD.device), crow_B1.diff(),
                                         output_size=cols_N.numel())
        return Selection(crow_B1, cols_N, acts_BF.reshape(-1).index_select(0, rows_N * acts_BF.shape[1] + cols_N))

    @torch.no_grad()
    def after_step(self, out: ForwardOutput, ema: float) -> None:
        """θ_f ← EMA of the m_f-th largest activation of column f (0 when fewer than m_f fired)."""
        if self._last_capacity_F is None:
            return
        codes = out.codes
        values = codes.values_N.detach().float()
        F = self.cfg.d_sae
        count_F = torch.bincount(codes.cols_N, weights=(values > 0).float(), minlength=F)
        col_min_F = torch.full((F,), torch.inf).scatter_reduce(
            0, codes.cols_N, torch.where(values > 0, values, torch.inf), reduce="amin"
        )
        kth_F = torch.where(count_F >= self._last_capacity_F.float(), col_min_F, torch.zeros(F))
        kth_F = torch.where(torch.isfinite(kth_F), kth_F, torch.zeros(F))
        decay = ema if int(self.theta_updates) > 0 else 0.0
        self.theta_F.mul_(decay).add_((1 - decay) * kth_F)
        self.theta_updates += 1
