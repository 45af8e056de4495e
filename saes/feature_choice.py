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
        if self.fits_exponent:
            self.register_buffer("demand_ema_F", torch.zeros(cfg.d_sae, dtype=torch.float32))
        self._last_capacity_F: Tensor | None = None

    @property
    def fits_exponent(self) -> bool:
        """``zipf`` capacities with the exponent s fitted during training (zipf_exponent None)."""
        return self.cfg.capacity_mode == "zipf" and self.cfg.zipf_exponent is None

    def capacity_signal(self) -> Tensor:
        """The frequency curve that ranks features and, when fitted, gives s.

        Given s: the firing-frequency EMA (specs/saes.md). Fitted s: the *demand* EMA — how often each
        feature is among a token's top-k pre-activations (what TopK would pick). Fitting on the firing
        frequency is a fixed point: FC fires each feature as often as its capacity allows, so from
        uniform capacities the fit gives s ≈ 0 and the capacities stay uniform for good (measured:
        ground-truth recovery identical to ``uniform``). Demand is not set by the capacities."""
        return self.demand_ema_F if self.fits_exponent else self.freq_ema_F

    def capacities(self, n_rows: int) -> Tensor:
        """m_f for a batch of n_rows tokens (int64 [F]); Σ m_f = k·n_rows unless capped by n_rows·F."""
        F, budget = self.cfg.d_sae, self.cfg.k * n_rows
        signal_F = self.capacity_signal()
        if self.cfg.capacity_mode == "uniform" or not bool((signal_F > 0).any()):
            per = min(n_rows, math.ceil(self.cfg.capacity_factor * budget / F))
            return torch.full((F,), per, dtype=torch.long)
        s = self.cfg.zipf_exponent
        if s is None:
            s = fit_zipf_exponent(signal_F)
        by_rank = integer_capacities(zipf_profile(F, s, budget), budget, n_rows)
        dev = signal_F.device
        by_rank = by_rank.to(dev)
        rank_of_F = torch.empty(F, dtype=torch.long, device=dev)
        rank_of_F[signal_F.argsort(descending=True, stable=True)] = torch.arange(F, device=dev)
        return by_rank[rank_of_F]

    def upgrade_saved(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """Files from before the demand EMA ranked and fitted on the firing frequency: keep doing so."""
        if self.fits_exponent and "demand_ema_F" not in tensors and "freq_ema_F" in tensors:
            tensors = {**tensors, "demand_ema_F": tensors["freq_ema_F"].float().clone()}
        return tensors

    def learns_demand(self) -> bool:
        """The demand EMA moves on training steps only (not in eval, nor in the no-grad θ calibration)."""
        return self.fits_exponent and self.training and torch.is_grad_enabled()

    def demand_counts(self, acts_BF: Tensor) -> Tensor:
        """Per feature, the rows whose top-k positive activations include it (int64 [F])."""
        with all_threads(acts_BF.numel()):  # the step runs small ops on one thread (kernels/threads.py)
            vals_BK, idx_BK = acts_BF.topk(min(self.cfg.k, acts_BF.shape[1]), dim=1, sorted=False)
        return torch.bincount(idx_BK[vals_BK > 0], minlength=self.cfg.d_sae)

    @torch.no_grad()
    def update_demand(self, counts_F: Tensor, n_rows: int) -> None:
        """demand_ema_F ← EMA (decay threshold_ema; the first batch sets it) of counts_F / n_rows."""
        decay = self.cfg.threshold_ema if bool((self.demand_ema_F > 0).any()) else 0.0
        self.demand_ema_F.mul_(decay).add_((1 - decay) * counts_F.to(self.demand_ema_F) / n_rows)

    def select(self, xc_BD: Tensor) -> Selection:
        # ReLU in place: every selected entry is > 0, where ReLU(pre) = pre, so the gather below gives pre_N
        with all_threads(xc_BD.shape[0] * self.cfg.d_sae):
            acts_BF = self.dense_preacts(xc_BD).clamp_min_(0)
        if self.batch_mode:
            if self.learns_demand():
                self.update_demand(self.demand_counts(acts_BF), xc_BD.shape[0])
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
