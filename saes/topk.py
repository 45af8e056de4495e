"""TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders", §2.3).

    z = TopK_k(ReLU(pre))   — each token keeps its k largest pre-activations.

The encoder GEMM and the per-row top-k go through ``kernels.encode_topk`` (fused on CUDA), so the
dense [B, F] pre-activations need not reach memory.
"""

from __future__ import annotations

from torch import Tensor

from superscope.kernels import crow_uniform, dispatch
from superscope.kernels.threads import all_threads

from .base import BaseSAE, Selection
from .registry import register


@register("topk")
class TopKSAE(BaseSAE):
    """Per-token budget: every row has exactly k selected entries (values may be 0 after ReLU)."""

    label, color, order = "TopK", "#1f77b4", 0
    batch_dependent = False  # row-local: a token's codes do not depend on the batch (no global_rule)

    def select(self, xc_BD: Tensor) -> Selection:
        with all_threads(xc_BD.shape[0] * self.cfg.d_sae):
            pre_BK, idx_BK = dispatch.encode_topk(xc_BD, self.W_enc.detach(), self.b_enc.detach(), self.cfg.k)
        idx_BK, order_BK = idx_BK.sort(dim=1)  # CSR wants increasing columns within a row
        pre_BK = pre_BK.gather(1, order_BK)
        crow_B1 = crow_uniform(xc_BD.shape[0], self.cfg.k, device=xc_BD.device)
        return Selection(crow_B1, idx_BK.reshape(-1), pre_BK.reshape(-1))
