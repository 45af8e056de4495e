"""JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU
Sparse Autoencoders", arXiv 2407.14435; Anthropic, "Circuits Updates — January 2025", training update).

    pre = (s·x − b_dec) @ W_enc + b_enc
    z_f = pre_f · H(pre_f − θ_f),     θ_f = exp(log_threshold_f)   (a float32 parameter whatever cfg.dtype)
    L   = FVU + λ·S + λ_p·P           (S, P and their straight-through estimators: ``jumprelu_losses``)

A threshold select: a token's codes do not depend on the batch (row-local, no global rule). The selection
is ``kernels.threshold_pairs`` of the dense pre-activations; while training it keeps pre > θ − ε/2, so the
lower half of the estimator's window is present and gives θ its gradient. ``split_window`` parts it into the
codes (z > 0: the sparse encoder backward and sparse decode of every variant) and the window's lower half
(z = 0: its own sparse encoder backward and a gradient-only decode, ``jumprelu_losses.zero_decode``). At the
default ε the window holds ≈ 3 pairs per code, so a training step does ≈ 4× the sparse work of a TopK step.

Choices of ours (the papers leave them open or tune them for other data), all in cfg.json:
- Thresholds start at each latent's (1 − k/F) quantile of pre on the first training batch
  (``init_from_batch``), so every latent fires on ≈ k/F of the tokens and the mean L0 starts at k: the codes
  are sparse from the first step (a fixed small θ would fire on half the B×F pairs).
- L0-target mode (``jumprelu_sparsity_coef = None``, the default): after every training step
      log λ ← log λ + η·log(L0_batch / k),   η = 0.2, log λ clipped to [−20, 20],
  a multiplicative integral controller; it stops moving when the batch mean L0 equals k. η = 0.05 left the
  default run (layer 15, 156 steps of 4096 tokens, lr 1.5e-3) at a training L0 of 35.6 and held-out 39.5
  for k = 32; η = 0.2 brings the training L0 to 31–33 from step ~50 on (tests/saes/test_jumprelu_controller.py
  checks both gains against a plant fitted to that run). The default run's held-out L0 is 35.6 while the
  same SAE gives 31.2 on training-split batches: the controller sees the training distribution only. λ and the step count are buffers, so a resumed run continues the
  same trajectory.
- Dead latents: Anthropic's pre-activation loss is the recipe's remedy (``aux_loss="none"``); the trainer's
  default AuxK also runs on it. On the ground-truth toy both leave most latents dead and recover under half
  the true features (benchmarks/results/ground_truth_jumprelu.json: recovery 0.37 without AuxK, 0.42 with;
  TopK 1.0 in the same run) — JumpReLU needs longer training than these toy budgets.
- log θ as the parameter, as in the paper (SAELens 6 trains θ directly since its issue 494: with a
  small initial θ, Adam's lr-sized steps in log space move it slowly; our θ starts at the data's scale).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from superscope.kernels import SparseCodes, dispatch
from superscope.kernels.threads import all_threads

from .base import BaseSAE, ForwardOutput, Selection
from .config import SAEConfig
from .jumprelu_losses import jumprelu, pre_act_loss, step, tanh_sparsity, zero_decode
from .registry import register

CONTROLLER_RATE = 0.2
"""Integral gain η of the L0-target controller (per step, on log λ)."""
LOG_LAMBDA_LIMIT = 20.0
MIN_THRESHOLD = 1e-3
"""Smallest initial θ (a latent whose quantile is ≤ 0 on the first batch)."""


@register("jumprelu")
class JumpReLUSAE(BaseSAE):
    """Per-latent learned thresholds θ_f; trained with the STE, tanh (or L0) sparsity and pre-activation losses."""

    label, color, order = "JumpReLU", "#8c564b", 4
    batch_dependent = False  # row-local: z depends on the token alone (no global_rule)

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        self.log_threshold = nn.Parameter(torch.zeros(cfg.d_sae, dtype=torch.float32))
        lam = cfg.jumprelu_sparsity_coef
        self.register_buffer("log_sparsity_coef", torch.tensor(0.0 if lam is None else math.log(max(lam, 1e-30))))
        self.register_buffer("controller_steps", torch.zeros((), dtype=torch.int64))
        # the last training forward's (pre, cols) of the codes and of the window's lower half (the L0 loss), and
        # the window's (z = 0, cols) (the tanh loss's estimator)
        self.train_pre: list[tuple[Tensor, Tensor]] = []
        self.window_z_W: tuple[Tensor, Tensor] | None = None

    def _apply(self, fn, recurse=True):
        """``.to(dtype)`` casts every float parameter; θ stays float32 (the point of it, SAELens issue 728)."""
        out = super()._apply(fn, recurse)
        if self.log_threshold.dtype != torch.float32:
            self.log_threshold.data = self.log_threshold.data.float()
        return out

    # ---- thresholds ---------------------------------------------------------------------------
    @property
    def theta_F(self) -> Tensor:
        """θ_f = exp(log_threshold_f), float32 [F] (differentiable)."""
        return self.log_threshold.exp()

    @property
    def sparsity_coef(self) -> float:
        """λ now: the fixed ``jumprelu_sparsity_coef``, or the L0-target controller's value."""
        return math.exp(float(self.log_sparsity_coef))

    @torch.no_grad()
    def init_from_batch(self, x_scaled_BD: Tensor) -> None:
        """θ_f ← the midpoint between the m-th and (m+1)-th largest pre_f of the batch, m = max(1, round(k·B/F)):
        each latent fires on m of the B tokens (mean L0 ≈ k). Called by the trainer on the first batch."""
        xc_BD = x_scaled_BD.to(self.W_enc.dtype) - self.b_dec
        with all_threads(xc_BD.shape[0] * self.cfg.d_sae):
            pre_BF = self.dense_preacts(xc_BD).float()
        B = pre_BF.shape[0]
        m = min(B - 1, max(1, round(self.cfg.k * B / self.cfg.d_sae)))
        if m < 1:  # a one-token batch: nothing to split
            return
        top_2F = pre_BF.topk(m + 1, dim=0).values[m - 1:]
        self.log_threshold.copy_(top_2F.mean(0).clamp_min(MIN_THRESHOLD).log())

    # ---- selection and forward ----------------------------------------------------------------
    def select(self, xc_BD: Tensor) -> Selection:
        with all_threads(xc_BD.shape[0] * self.cfg.d_sae):
            pre_BF = self.dense_preacts(xc_BD)
        theta_F = self.theta_F.detach()
        lower_F = theta_F - self.cfg.jumprelu_bandwidth / 2 if self.training else theta_F
        return Selection(*dispatch.threshold_pairs(pre_BF, lower_F))  # float32 θ: compared in float32

    def forward(self, x: Tensor) -> ForwardOutput:
        """BaseSAE.forward with the JumpReLU (and its θ estimator) in place of the ReLU of the selected pairs.

        While training the selection is split into the codes (pre > θ) and the window's lower half
        (θ − ε/2 < pre ≤ θ, z = 0): each part goes through its own sparse encoder backward, the codes through
        the sparse decode, the window through the gradient-only ``zero_decode``."""
        self.check_input(x)
        x = x.to(self.W_enc.dtype)
        x_scaled = x * self.cfg.input_scale
        xc_BD = x_scaled - self.b_dec.detach()
        b_enc_F = self.b_enc - (self.b_dec - self.b_dec.detach()) @ self.W_enc.detach()  # b_dec's gradient (base.py)
        theta_F, eps, to_input = self.theta_F, self.cfg.jumprelu_bandwidth, self.cfg.jumprelu_ste_to_input
        sel = self.select(xc_BD)
        kept, window = split_window(sel, theta_F.detach()) if self.training else (sel, None)

        def jump(part: Selection) -> tuple[Tensor, Tensor]:
            pre_N = dispatch.selected_preacts(xc_BD, self.W_enc, b_enc_F, part.crow_B1, part.cols_N, part.pre_N)
            return pre_N, jumprelu(pre_N, theta_F, part.cols_N, eps, to_input)

        pre_N, values_N = jump(kept)
        x_hat_scaled = dispatch.sparse_decode(values_N, kept.crow_B1, kept.cols_N, self.W_dec) + self.b_dec
        keep_pre = self.training and torch.is_grad_enabled()
        self.train_pre = [(pre_N, kept.cols_N)] if keep_pre else []
        self.window_z_W = None
        if window is not None and window.cols_N.numel() > 0:
            pre_W, z_W = jump(window)
            self.window_z_W = (z_W, window.cols_N)
            self.train_pre += [(pre_W, window.cols_N)] if keep_pre else []
            x_hat_scaled = zero_decode(x_hat_scaled, z_W, window.crow_B1, window.cols_N, self.W_dec)
        codes = SparseCodes(kept.crow_B1, kept.cols_N, values_N, self.cfg.d_sae)
        return ForwardOutput(x_hat_scaled / self.cfg.input_scale, codes, x_scaled, x_hat_scaled)

    # ---- training -----------------------------------------------------------------------------
    def penalty(self, out: ForwardOutput, dead_F: Tensor) -> Tensor:
        """λ·S + λ_p·P of the batch, per token and divided by d (``jumprelu_losses``); the trainer adds it to L."""
        cfg, codes = self.cfg, out.codes
        B, d = out.x_scaled.shape
        dec_norm_F = self.W_dec.norm(dim=1)
        theta_F = self.theta_F
        if cfg.jumprelu_sparsity == "tanh":
            c = cfg.jumprelu_tanh_scale / math.sqrt(d)
            sparsity = tanh_sparsity(codes.values_N, codes.cols_N, dec_norm_F, c)
            if self.window_z_W is not None:  # value 0; the estimator's gradient to θ from the window's lower half
                sparsity = sparsity + tanh_sparsity(*self.window_z_W, dec_norm_F, c)
        else:
            if not self.train_pre:
                raise RuntimeError("the L0 sparsity loss needs the pre-activations of a training forward")
            sparsity = sum(step(pre_N, theta_F, cols_N, cfg.jumprelu_bandwidth, cfg.jumprelu_ste_to_input).sum()
                           for pre_N, cols_N in self.train_pre)
        total = self.sparsity_coef * sparsity.float()
        if cfg.jumprelu_pre_act_coef > 0:
            xc_BD = (out.x_scaled - self.b_dec).detach()  # as in the AuxK loss: no b_dec gradient from here
            total = total + cfg.jumprelu_pre_act_coef * pre_act_loss(xc_BD, self.W_enc, self.b_enc, theta_F,
                                                                     dec_norm_F, dead_F)
        return (total / (B * d)).to(out.x_hat_scaled.dtype)

    def after_step(self, out: ForwardOutput, ema: float) -> None:
        """L0-target mode: log λ ← log λ + η·log(L0_batch / k) after a training step (grad mode on), not on the
        trainer's no-grad θ calibration pass (nothing to calibrate: θ is a trained parameter)."""
        self.train_pre, self.window_z_W = [], None
        if self.cfg.jumprelu_sparsity_coef is not None or not torch.is_grad_enabled():
            return
        with torch.no_grad():
            l0 = float((out.codes.values_N.detach() > 0).sum()) / max(1, out.codes.n_rows)
            error = math.log(max(l0, 1e-3) / self.cfg.k)
            self.log_sparsity_coef.add_(CONTROLLER_RATE * error).clamp_(-LOG_LAMBDA_LIMIT, LOG_LAMBDA_LIMIT)
            self.controller_steps += 1


def split_window(sel: Selection, theta_F: Tensor) -> tuple[Selection, Selection]:
    """(codes, window's lower half) of a training selection: the pairs with pre > θ and those with pre ≤ θ, each
    row-major CSR. One compare, one cumsum for both row-pointer arrays, one nonzero per part."""
    above_N = sel.pre_N.float() > theta_F.index_select(0, sel.cols_N)
    kept_before_N1 = torch.zeros(above_N.numel() + 1, dtype=torch.int64, device=above_N.device)
    torch.cumsum(above_N, 0, out=kept_before_N1[1:])  # codes among the first n pairs
    crow_kept_B1 = kept_before_N1.index_select(0, sel.crow_B1)
    kept_K, below_W = above_N.nonzero().squeeze(1), (~above_N).nonzero().squeeze(1)

    def part(crow_B1: Tensor, index: Tensor) -> Selection:
        return Selection(crow_B1, sel.cols_N.index_select(0, index), sel.pre_N.index_select(0, index))
    return part(crow_kept_B1, kept_K), part(sel.crow_B1 - crow_kept_B1, below_W)
