"""Feature Choice SAE (Ayonrinde 2024, arXiv 2411.02124, §3).

    S[:, f] = top-m_f rows of column f of ReLU(pre),   Σ_f m_f = M = k·B

Each feature chooses the tokens it fires on, with a capacity m_f: ``uniform`` (m_f = ⌈c·M/F⌉) or
``zipf``:

    m_f ≈ t_f,   t_f = p*_{rank(f)},   p*_r = C·r^(−s),   Σ_r p*_r = M,   rank by demand δ_f (descending)

δ_f = EMA of the share of tokens whose top-k pre-activations contain f (what TopK would pick), with s
given or fitted on the head of the demand curve; features with equal demand share the mean target of
the ranks they tie over; t is rounded by largest remainder to integers m_f ≤ B with Σ m_f = M.
Demand, not firing frequency (specs/saes.md): under FC a feature fires exactly as often as its
capacity allows, so ranking on firing frequency feeds the capacities back into themselves (from uniform
capacities the frequencies tie, and a stable sort gave capacities by feature index).

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
from .global_selection import GlobalBatch
from .registry import register
from .zipf import fit_zipf_exponent, integer_capacities, zipf_targets


@register("feature_choice")
class FeatureChoiceSAE(BaseSAE):
    """Per-feature capacities; learned per-feature thresholds ``theta_F`` for inference."""

    label, color, order = "Feature Choice", "#2ca02c", 2
    batch_dependent = True
    global_rule = staticmethod(GlobalBatch.feature_choice)

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        self.register_buffer("theta_F", torch.zeros(cfg.d_sae, dtype=torch.float32))
        self.register_buffer("theta_updates", torch.zeros((), dtype=torch.int64))
        if cfg.capacity_mode == "zipf":
            self.register_buffer("demand_ema_F", torch.zeros(cfg.d_sae, dtype=torch.float32))
        self._last_capacity_F: Tensor | None = None

    def capacity_signal(self) -> Tensor:
        """The curve that ranks features and, when fitted, gives s: the *demand* EMA δ_f — how often f
        is among a token's top-k pre-activations — for a given s as for a fitted one.

        Not the firing frequency: FC fires each feature as often as its capacity allows, so frequency is
        a fixed point. Fitted on it, s ≈ 0 from uniform capacities and they stay uniform for good
        (measured: ground-truth recovery identical to ``uniform``); ranked on it with s given, the first
        step's tied frequencies gave capacities by feature index, and that order fed itself (issue 12:
        Spearman(capacity, −index) = 0.98). Demand is not set by the capacities. An SAE with no demand
        record yet (all zero: never trained) falls back to its firing-frequency EMA."""
        demand_F = self.demand_ema_F
        return demand_F if bool((demand_F > 0).any()) else self.freq_ema_F

    def capacities(self, n_rows: int) -> Tensor:
        """m_f for a batch of n_rows tokens (int64 [F], on the buffers' device); Σ m_f = k·n_rows
        unless capped by n_rows·F (uniform rounds up: Σ m_f = F·⌈c·M/F⌉ ≥ M)."""
        F, budget = self.cfg.d_sae, self.cfg.k * n_rows
        dev = self.theta_F.device
        if self.cfg.capacity_mode == "zipf":
            signal_F = self.capacity_signal()
            if bool((signal_F > 0).any()):
                s = self.cfg.zipf_exponent
                if s is None:
                    s = fit_zipf_exponent(signal_F)
                return integer_capacities(zipf_targets(signal_F, s, budget), budget, n_rows)
        per = min(n_rows, math.ceil(self.cfg.capacity_factor * budget / F))
        return torch.full((F,), per, dtype=torch.long, device=dev)

    def upgrade_saved(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """Files saved without a demand EMA (fitted s: before it existed; given s: before it ranked them
        too) ranked on the firing frequency: start the demand EMA from it, so they keep their capacities."""
        if self.cfg.capacity_mode == "zipf" and "demand_ema_F" not in tensors and "freq_ema_F" in tensors:
            tensors = {**tensors, "demand_ema_F": tensors["freq_ema_F"].float().clone()}
        return tensors

    def learns_demand(self) -> bool:
        """The demand EMA (zipf capacities) moves on training steps only (not in eval, nor in the no-grad
        θ calibration)."""
        return self.cfg.capacity_mode == "zipf" and self.training and torch.is_grad_enabled()

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
        col_min_F = torch.full((F,), torch.inf, device=values.device).scatter_reduce(
            0, codes.cols_N, torch.where(values > 0, values, torch.inf), reduce="amin"
        )
        kth_F = torch.where(count_F >= self._last_capacity_F.to(count_F), col_min_F, 0.0)
        kth_F = torch.where(torch.isfinite(kth_F), kth_F, 0.0)
        decay = ema if int(self.theta_updates) > 0 else 0.0
        self.theta_F.mul_(decay).add_((1 - decay) * kth_F)
        self.theta_updates += 1
