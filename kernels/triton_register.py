"""Offers the Triton kernels to ``dispatch`` — called lazily on the first CUDA tensor.

Nothing is registered without CUDA or without an importable triton, so CPU-only installs never
import triton. ``encoder_preacts`` (the dense GEMM) is deliberately not offered: cuBLAS is the floor
that a Triton GEMM can only match (specs/kernels.md), so ``torch.addmm`` stays.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def register_all(register: Callable[[str, Callable], None]) -> list[str]:
    """Register every Triton implementation with ``register(name, fn)``; returns the names."""
    if not torch.cuda.is_available():
        return []
    try:
        import triton  # noqa: F401
    except ImportError:
        return []
    from . import triton_encode_topk, triton_selection, triton_sparse_decode, triton_sparse_encode_backward

    impls = {
        "encode_topk": triton_encode_topk.encode_topk,
        "topm_global": triton_selection.topm_global,
        "topm_per_column": triton_selection.topm_per_column,
        "selected_preacts": triton_sparse_encode_backward.selected_preacts,
        "sparse_decode": triton_sparse_decode.sparse_decode,
    }
    for name, fn in impls.items():
        register(name, fn)
    return list(impls)
