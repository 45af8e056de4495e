"""Kernels: selection (TopK / global top-M / per-column top-m_f), sparse encode/decode.

Every kernel has a plain-torch reference beside it; ``dispatch`` picks Triton on CUDA, the fast
torch path elsewhere, and the reference when ``SUPERSCOPE_KERNELS=reference``.
"""

if __name__ == "kernels":
    # Imported as the top-level `kernels` because the repository root is on sys.path: that name
    # belongs to the Hugging Face distribution transformers imports, so load it in our place
    # (superscope/shadowing.py says why and how). Ours is always `superscope.kernels`.
    from superscope.shadowing import defer_to_installed

    defer_to_installed(__name__, __file__)
else:
    from .dispatch import (
        backend_for,
        encode_topk,
        encoder_preacts,
        selected_preacts,
        sparse_decode,
        threshold_pairs,
        threshold_select,
        topm_global,
        topm_per_column,
    )
    from .sparse_codes import SparseCodes, crow_from_rows, crow_uniform

    __all__ = [
        "SparseCodes", "backend_for", "crow_from_rows", "crow_uniform", "encode_topk", "encoder_preacts",
        "selected_preacts", "sparse_decode", "threshold_pairs", "threshold_select", "topm_global", "topm_per_column",
    ]
