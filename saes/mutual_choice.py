"""Mutual Choice (Ayonrinde 2024, arXiv 2411.02124) and BatchTopK (Bussmann et al. 2024) SAEs.

    S = global top-M of ReLU(pre) over the whole B×F batch, M = k·B

Tokens and features share one budget, so the per-token L0 varies ("adaptive computation"). Both
papers use this selection; one implementation, two registered names.

Inference (specs/saes.md): a global threshold θ = EMA of the smallest selected activation during
training; in ``threshold`` mode z = ReLU(pre)·1[ReLU(pre) > θ] (JumpReLU form), batch-independent.
The trainer ends by setting θ to that statistic on the final weights (``TrainConfig.calibrate_thresholds``):
the EMA trails the weights by ~1/(1 − decay) steps, which on a short run is most of the run.
"""

from __future__ import annotations

import torch
from torch import Tensor

from superscope.kernels import dispatch
from superscope.kernels.threads import all_threads

from .base import BaseSAE, ForwardOutput, Selection
from .config import SAEConfig
from .global_selection import GlobalBatch
from .registry import register


@register("mutual_choice")
class MutualChoiceSAE(BaseSAE):
    """Global top-M selection; learned global threshold ``theta`` for single-token inference."""

    label, color, order = "Mutual Choice", "#d62728", 3
    batch_dependent = True
    global_rule = staticmethod(GlobalBatch.mutual_choice)

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        self.register_buffer("theta", torch.zeros((), dtype=torch.float32))
        self.register_buffer("theta_updates", torch.zeros((), dtype=torch.int64))

    def select(self, xc_BD: Tensor) -> Selection:
        # ReLU in place: every selected entry is > 0, where ReLU(pre) = pre, so the gather below gives pre_N
        with all_threads(xc_BD.shape[0] * self.cfg.d_sae):
            acts_BF = self.dense_preacts(xc_BD).clamp_min_(0)
        if self.batch_mode:
            crow_B1, cols_N = dispatch.topm_global(acts_BF, self.cfg.k * xc_BD.shape[0])
        else:
            crow_B1, cols_N = dispatch.threshold_select(acts_BF, self.theta.to(acts_BF.dtype))
        rows_N = torch.repeat_interleave(torch.arange(xc_BD.shape[0], device=xc_BD.device), crow_B1.diff(),
                                         output_size=cols_N.numel())
        return Selection(crow_B1, cols_N, acts_BF.reshape(-1).index_select(0, rows_N * acts_BF.shape[1] + cols_N))

    @torch.no_grad()
    def after_step(self, out: ForwardOutput, ema: float) -> None:
        values = out.codes.values_N.detach()
        values = values[values > 0]
        if values.numel() == 0:
            return
        smallest = values.min().float()
        decay = ema if int(self.theta_updates) > 0 else 0.0
        self.theta.mul_(decay).add_((1 - decay) * smallest)
        self.theta_updates += 1


@register("batchtopk")
class BatchTopKSAE(MutualChoiceSAE):
    """BatchTopK (Bussmann et al. 2024): the same global top-M selection and learned threshold."""

    label, color, order = "BatchTopK", "#9467bd", 1
