"""Kernels: selection (TopK / global top-M / per-column top-m_f), sparse encode/decode.

Every kernel has a plain-torch reference beside it; ``dispatch`` picks Triton on CUDA, the fast
torch path elsewhere, and the reference when ``SUPERSCOPE_KERNELS=reference``.
"""

from .dispatch import (
    backend_for,
    encode_topk,
    encoder_preacts,
    selected_preacts,
    sparse_decode,
    threshold_select,
    topm_global,
    topm_per_column,
)
from .sparse_codes import SparseCodes, crow_from_rows, crow_uniform

__all__ = [
    "SparseCodes", "backend_for", "crow_from_rows", "crow_uniform", "encode_topk", "encoder_preacts",
    "selected_preacts", "sparse_decode", "threshold_select", "topm_global", "topm_per_column",
]
