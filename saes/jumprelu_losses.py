"""JumpReLU's straight-through estimators and training losses, on the sparse codes
(Rajamanoharan et al. 2024, "Jumping Ahead", arXiv 2407.14435, §4; Anthropic, "Circuits Updates — January 2025",
the dictionary-learning training update).

Rectangle kernel K(u) = 1[|u| < 1/2], bandwidth ε; per latent f a threshold θ_f > 0:

    JumpReLU:  z = pre·H(pre − θ)      ∂z/∂θ ≈ −(θ/ε)·K((pre − θ)/ε)      (paper eq. 11: θ stands for pre in the window)
    Step:      H(pre − θ)              ∂H/∂θ ≈ −(1/ε)·K((pre − θ)/ε)
    ∂z/∂pre = H(pre − θ), plus +(θ/ε)·K(...) (∂H/∂pre = +(1/ε)·K(...)) when the STE also reaches the input, as in
    Anthropic's update (``ste_to_input``); DeepMind gives the estimator to θ alone.

Both act on the selected pairs only (CSR entries N, their columns cols_N): the selection keeps every pair with
pre > θ − ε/2, so the window's lower half is present (at z = 0) and θ gets its whole gradient without a dense
[B, F] tensor. Thresholds and their gradients are float32 whatever the pre-activation dtype (SAELens issue 728:
bf16 thresholds barely move under Adam's lr-sized steps).

Loss terms (per token, averaged over the batch, divided by d so λ weighs the same against L_rec = FVU at any
width when E‖s·x‖² = d, the input scaling; the /√d in the tanh measures z in units of ‖s·x‖ ≈ √d, so c
does not depend on the width either — without it c·θ ≫ 1 at d = 576 and the tanh is flat where θ sits):

    S = Σ_f tanh(c·|z_f|·‖W_dec,f‖/√d)         Anthropic's tanh sparsity (or Σ_f H(pre_f − θ_f), the L0)
    P = Σ_{f dead} ReLU(θ_f − pre_f)·‖W_dec,f‖  Anthropic's pre-activation loss, on dead latents as SAELens does
"""

from __future__ import annotations

import torch
from torch import Tensor

from superscope.kernels.threads import all_threads


def rectangle_window(pre_N: Tensor, theta_N: Tensor, bandwidth: float) -> Tensor:
    """K((pre − θ)/ε) = 1[|pre − θ| < ε/2] (float32)."""
    return ((pre_N.float() - theta_N).abs() < bandwidth / 2).float()


class JumpReLUFunction(torch.autograd.Function):
    """z_N = pre_N·H(pre_N − θ[cols_N]); gradients: see the module docstring. θ_F is float32 [F]."""

    @staticmethod
    def forward(ctx, pre_N: Tensor, theta_F: Tensor, cols_N: Tensor, bandwidth: float, ste_to_input: bool) -> Tensor:
        theta_N = theta_F.index_select(0, cols_N)
        above_N = pre_N.float() > theta_N
        ctx.save_for_backward(pre_N, theta_N, cols_N, above_N)
        ctx.bandwidth, ctx.ste_to_input, ctx.n_features = bandwidth, ste_to_input, theta_F.shape[0]
        return pre_N * above_N.to(pre_N.dtype)

    @staticmethod
    def backward(ctx, grad_N: Tensor):
        pre_N, theta_N, cols_N, above_N = ctx.saved_tensors
        ste_N = theta_N / ctx.bandwidth * rectangle_window(pre_N, theta_N, ctx.bandwidth) * grad_N.float()
        grad_theta_F = torch.zeros(ctx.n_features, dtype=torch.float32, device=grad_N.device).index_add_(0, cols_N, -ste_N)
        grad_pre_N = grad_N * above_N.to(grad_N.dtype)
        if ctx.ste_to_input:
            grad_pre_N = grad_pre_N + ste_N.to(grad_N.dtype)
        return grad_pre_N, grad_theta_F, None, None, None


class StepFunction(torch.autograd.Function):
    """H(pre_N − θ[cols_N]) with the rectangle-kernel STE (the L0 of the selected pairs)."""

    @staticmethod
    def forward(ctx, pre_N: Tensor, theta_F: Tensor, cols_N: Tensor, bandwidth: float, ste_to_input: bool) -> Tensor:
        theta_N = theta_F.index_select(0, cols_N)
        ctx.save_for_backward(pre_N, theta_N, cols_N)
        ctx.bandwidth, ctx.ste_to_input, ctx.n_features = bandwidth, ste_to_input, theta_F.shape[0]
        return (pre_N.float() > theta_N).to(pre_N.dtype)

    @staticmethod
    def backward(ctx, grad_N: Tensor):
        pre_N, theta_N, cols_N = ctx.saved_tensors
        ste_N = rectangle_window(pre_N, theta_N, ctx.bandwidth) * grad_N.float() / ctx.bandwidth
        grad_theta_F = torch.zeros(ctx.n_features, dtype=torch.float32, device=grad_N.device).index_add_(0, cols_N, -ste_N)
        grad_pre_N = ste_N.to(grad_N.dtype) if ctx.ste_to_input else None
        return grad_pre_N, grad_theta_F, None, None, None


def jumprelu(pre_N: Tensor, theta_F: Tensor, cols_N: Tensor, bandwidth: float, ste_to_input: bool = False) -> Tensor:
    """See ``JumpReLUFunction``."""
    return JumpReLUFunction.apply(pre_N, theta_F, cols_N, bandwidth, ste_to_input)


def step(pre_N: Tensor, theta_F: Tensor, cols_N: Tensor, bandwidth: float, ste_to_input: bool = False) -> Tensor:
    """See ``StepFunction``."""
    return StepFunction.apply(pre_N, theta_F, cols_N, bandwidth, ste_to_input)


def tanh_sparsity(values_N: Tensor, cols_N: Tensor, dec_norm_F: Tensor, scale: float) -> Tensor:
    """Σ over the selected pairs of tanh(c·z·‖W_dec,f‖) (unselected pairs have z = 0 and add 0).

    z ≥ 0 (θ > 0), so |z| = z; written without the absolute value because its derivative at z = 0 (torch:
    sign(0) = 0) would cut the estimator's gradient from the window's lower half, where z = 0: from
    there the loss reaches θ with ∂/∂z tanh(c·z·‖W‖) = c·‖W‖, the right derivative (as SAELens does)."""
    return torch.tanh(scale * values_N * dec_norm_F.index_select(0, cols_N).to(values_N.dtype)).sum()


def pre_act_loss(xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor, theta_F: Tensor, dec_norm_F: Tensor,
                 dead_F: Tensor) -> Tensor:
    """Σ_b Σ_{f dead} ReLU(θ_f − pre_bf)·‖W_dec,f‖ — pre computed for the dead columns only ([B, #dead])."""
    dead_A = dead_F.nonzero().squeeze(1)
    if dead_A.numel() == 0:
        return theta_F.new_zeros(())
    pre_BA = torch.addmm(b_enc_F.index_select(0, dead_A), xc_BD, W_enc_DF.index_select(1, dead_A))
    gap_BA = torch.relu(theta_F.index_select(0, dead_A) - pre_BA.float())
    return (gap_BA * dec_norm_F.index_select(0, dead_A).float()).sum()


class ZeroDecode(torch.autograd.Function):
    """x̂ + z_W·W_dec for the window's lower half, where z_W = 0: forward returns x̂ unchanged (a view) and gives
    W_dec no gradient; backward passes ∂L/∂x̂ through and gives each pair (b, f) of the window ∂L/∂z = g_b·W_dec,f
    (a sampled product over those pairs only). Keeping them out of the codes spares the decode and ∂W_dec their
    work; passing x̂ through spares a [B, d] zero tensor and its addition."""

    @staticmethod
    def forward(ctx, x_hat_BD: Tensor, z_W: Tensor, crow_B1: Tensor, cols_W: Tensor, W_dec_FD: Tensor) -> Tensor:
        ctx.save_for_backward(crow_B1, cols_W, W_dec_FD)
        return x_hat_BD.view_as(x_hat_BD)

    @staticmethod
    def backward(ctx, grad_BD: Tensor):
        crow_B1, cols_W, W_dec_FD = ctx.saved_tensors
        grad_W = None
        if ctx.needs_input_grad[1]:
            pattern = torch.sparse_csr_tensor(crow_B1, cols_W, torch.zeros(cols_W.numel(), device=cols_W.device),
                                              (crow_B1.numel() - 1, W_dec_FD.shape[0]), check_invariants=False)
            # float32: torch's CPU sampled_addmm has no bf16 kernel
            with all_threads(cols_W.numel() * grad_BD.shape[1]):
                grad_W = torch.sparse.sampled_addmm(pattern, grad_BD.float().contiguous(),
                                                    W_dec_FD.detach().float().T).values().to(grad_BD.dtype)
        return grad_BD, grad_W, None, None, None


def zero_decode(x_hat_BD: Tensor, z_W: Tensor, crow_B1: Tensor, cols_W: Tensor, W_dec_FD: Tensor) -> Tensor:
    """See ``ZeroDecode``."""
    return ZeroDecode.apply(x_hat_BD, z_W, crow_B1, cols_W, W_dec_FD)
