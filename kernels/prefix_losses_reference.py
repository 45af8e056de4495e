"""Plain-torch reference for the Matryoshka prefix losses (dense math, autograd does the rest).

Letters: B tokens, D = d_in, F features, N selected pairs, L prefixes. This defines what the fast path
in ``prefix_losses.py`` must compute, values and every gradient (tests/kernels/test_prefix_losses.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .sparse_codes import SparseCodes


def prefix_fvus_reference(values_N: Tensor, crow_B1: Tensor, cols_N: Tensor, W_dec_FD: Tensor, b_dec_D: Tensor,
                          x_BD: Tensor, prefix_ends: tuple[int, ...]) -> Tensor:
    """FVU_l = Σ_b ‖x_b − (z_b[:F_l] · W_dec[:F_l] + b_dec)‖² / Σ_b ‖x_b − x̄‖² for each prefix end F_l → [L].

    The dense way: z as a [B, F] matrix, each prefix's reconstruction from its first F_l columns."""
    z_BF = SparseCodes(crow_B1, cols_N, values_N, W_dec_FD.shape[0]).to_dense()
    den = (x_BD - x_BD.mean(0, keepdim=True)).pow(2).sum().clamp_min(1e-12)
    fvus = [(x_BD - (z_BF[:, :end] @ W_dec_FD[:end] + b_dec_D)).pow(2).sum() / den for end in prefix_ends]
    return torch.stack(fvus)
