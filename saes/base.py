"""The small base class every SAE variant shares (specs/saes.md "Shared forward").

    pre = (s·x − b_dec) @ W_enc + b_enc      s = input_scale (E‖s·x‖² = d_in)
    z   = S ⊙ ReLU(pre)                       S ∈ {0,1}^{B×F}: the variant's selection
    x̂   = (z @ W_dec + b_dec) / s

Variants implement only ``select`` (which pairs (b, f) are kept). Codes are carried sparse
(``SparseCodes``, CSR); the dense encoder GEMM is the only dense op of a step (specs/kernels.md).
Letters: B tokens, D = d_in, F = d_sae, N selected pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from superscope.kernels import SparseCodes, dispatch

from .config import SAEConfig
from .persistence import save_sae


class Selection(NamedTuple):
    """Which pairs a variant keeps: CSR pattern + their pre-activations (no autograd)."""

    crow_B1: Tensor
    cols_N: Tensor
    pre_N: Tensor


class ForwardOutput(NamedTuple):
    """What ``forward`` returns."""

    x_hat: Float[Tensor, "batch d_in"]
    """Reconstruction in the input's units (scale undone)."""
    codes: SparseCodes
    """Sparse codes z (CSR); ``codes.to_dense()`` gives [B, F]; values carry autograd."""
    x_scaled: Float[Tensor, "batch d_in"]
    """Input times input_scale (the space the losses are computed in)."""
    x_hat_scaled: Float[Tensor, "batch d_in"]
    """Reconstruction in scaled units."""


class BaseSAE(nn.Module):
    """Owns parameters, encode / decode / forward, validation and save / load.

    A variant also states what it is, as class attributes (checked by ``registry.register``): ``label``,
    ``color``, ``order`` (report and dashboard), ``batch_dependent`` and ``global_rule`` (see registry.py).
    """

    architecture: str = ""
    """The registered name (set by ``registry.register``)."""
    label: ClassVar[str]
    color: ClassVar[str]
    order: ClassVar[int]
    batch_dependent: ClassVar[bool]
    global_rule: ClassVar[Callable[..., Selection] | None] = None
    """(GlobalBatch, sae, xc_BD) → this rank's Selection over the global batch; None when row-local."""

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        if cfg.architecture != self.architecture:
            raise ValueError(f"{type(self).__name__} got a config for {cfg.architecture!r}")
        self.cfg = cfg
        dtype = getattr(torch, cfg.dtype)
        D, F = cfg.d_in, cfg.d_sae
        self.W_enc = nn.Parameter(torch.empty(D, F, dtype=dtype))
        self.b_enc = nn.Parameter(torch.zeros(F, dtype=dtype))
        self.W_dec = nn.Parameter(torch.empty(F, D, dtype=dtype))
        self.b_dec = nn.Parameter(torch.zeros(D, dtype=dtype))
        self.register_buffer("freq_ema_F", torch.zeros(F, dtype=torch.float32))
        self.register_buffer("tokens_since_fired_F", torch.zeros(F, dtype=torch.int64))
        self.reset_parameters(seed=0)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def config(cls, **kwargs) -> SAEConfig:
        """``MutualChoiceSAE.config(d_in=576, d_sae=4608, k=32)`` → an SAEConfig for this variant."""
        return SAEConfig(architecture=cls.architecture, **kwargs)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Gao et al. 2024 §2.2/App. A: W_dec rows random unit vectors, W_enc = W_decᵀ, biases 0."""
        gen = torch.Generator().manual_seed(seed)
        W = torch.randn(self.cfg.d_sae, self.cfg.d_in, generator=gen)
        W /= W.norm(dim=1, keepdim=True)
        self.W_dec.copy_(W)
        self.W_enc.copy_(W.T)
        self.b_enc.zero_()
        self.b_dec.zero_()

    # ---- the variant's part -------------------------------------------------------------------
    def select(self, xc_BD: Tensor) -> Selection:
        """Return the selected pairs for centred, scaled inputs xc = s·x − b_dec."""
        raise NotImplementedError

    def after_step(self, out: ForwardOutput, ema: float) -> None:
        """Update learned inference state (thresholds, capacities) after a training step."""

    def upgrade_saved(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """Tensors saved by an earlier version → this version's names (the identity by default)."""
        return tensors

    # ---- forward ------------------------------------------------------------------------------
    def check_input(self, x: Tensor) -> None:
        if not torch.is_floating_point(x):
            raise TypeError(f"SAE input must be a floating-point tensor, got {x.dtype}")
        if x.ndim != 2 or x.shape[-1] != self.cfg.d_in:
            raise ValueError(
                f"SAE expects activations of shape [batch, {self.cfg.d_in}] (d_in), got {tuple(x.shape)}; "
                "check the hook and the SAE's d_in"
            )
        if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
            raise ValueError("SAE input contains NaN or Inf activations; clean the activation source")

    def forward(self, x: Float[Tensor, "batch d_in"]) -> ForwardOutput:
        self.check_input(x)
        x = x.to(self.W_enc.dtype)
        x_scaled = x * self.cfg.input_scale
        # b_dec's encoder-side gradient, ∂pre[b, f]/∂b_dec = −W_enc[:, f], goes through an exactly-zero
        # bias shift rather than a [B, D] gradient of xc (the backward then skips the S·W_encᵀ product
        # unless x itself requires grad): same values, same gradients.
        xc_BD = x_scaled - self.b_dec.detach()
        b_shift_F = (self.b_dec - self.b_dec.detach()) @ self.W_enc.detach()
        sel = self.select(xc_BD)
        pre_N = dispatch.selected_preacts(xc_BD, self.W_enc, self.b_enc - b_shift_F, sel.crow_B1, sel.cols_N, sel.pre_N)
        codes = SparseCodes(sel.crow_B1, sel.cols_N, torch.relu(pre_N), self.cfg.d_sae)
        x_hat_scaled = dispatch.sparse_decode(codes.values_N, codes.crow_B1, codes.cols_N, self.W_dec) + self.b_dec
        return ForwardOutput(x_hat_scaled / self.cfg.input_scale, codes, x_scaled, x_hat_scaled)

    @torch.no_grad()
    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        """Dense codes z [B, F] (the variant's selection in its current mode)."""
        return self.forward(x).codes.to_dense()

    def decode(self, z: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "batch d_in"]:
        """x̂ = (z @ W_dec + b_dec) / s."""
        return (z.to(self.W_dec.dtype) @ self.W_dec + self.b_dec) / self.cfg.input_scale

    def dense_preacts(self, xc_BD: Tensor) -> Tensor:
        return dispatch.encoder_preacts(xc_BD, self.W_enc.detach(), self.b_enc.detach())

    @property
    def batch_mode(self) -> bool:
        """MC/FC select within the batch while training, and in eval when inference_mode='batch'."""
        return self.training or self.cfg.inference_mode == "batch"

    # ---- decoder constraint (Gao et al. 2024 App. A) -----------------------------------------
    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        """Remove the gradient component parallel to each decoder row before the step: g_f −= (g_f·u_f) u_f
        with u_f = W_dec[f] / ‖W_dec[f]‖, so the step cannot change a row's norm to first order. The rows are
        unit-norm in training, but the unit direction is taken explicitly so the projection holds for any row."""
        if self.W_dec.grad is not None:
            g_FD = self.W_dec.grad
            u_FD = torch.nn.functional.normalize(self.W_dec, dim=1)
            g_FD -= (g_FD * u_FD).sum(dim=1, keepdim=True) * u_FD

    # ---- persistence --------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write cfg.json + sae.safetensors atomically into ``folder``."""
        return save_sae(self, folder)
