"""The one dispatch point between kernel implementations.

- ``triton``: CUDA tensors with Triton installed (kernels registered by ``triton_*`` modules);
- ``cpu``: the fastest plain-torch path (``selection.py``, ``sparse_ops.py``) — also the fallback on
  CUDA when Triton is missing;
- ``reference``: the naive specs (``*_reference.py``); forced everywhere with
  ``SUPERSCOPE_KERNELS=reference``.

SAE modules call only the functions below.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from . import selection, selection_reference, sparse_ops, sparse_ops_reference

Backend = Literal["triton", "cpu", "reference"]
ENV_VAR = "SUPERSCOPE_KERNELS"

# name -> backend -> implementation; Triton modules add themselves here when importable.
_TRITON_IMPLS: dict[str, Callable] = {}


def register_triton(name: str, fn: Callable) -> None:
    """Called by Triton kernel modules to offer an implementation for CUDA tensors."""
    _TRITON_IMPLS[name] = fn


_TRITON_LOADED = False


def _load_triton() -> None:
    """Register the Triton kernels once, on the first CUDA tensor (CPU runs never import triton)."""
    global _TRITON_LOADED
    if not _TRITON_LOADED:
        _TRITON_LOADED = True
        from .triton_register import register_all

        register_all(register_triton)


def backend_for(t: Tensor) -> Backend:
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced not in ("", "auto", "reference", "cpu", "triton"):
        raise ValueError(f"{ENV_VAR}={forced!r} is not one of: auto, reference, cpu, triton")
    if forced == "reference":
        return "reference"
    if forced == "cpu":
        return "cpu"
    if t.is_cuda:
        _load_triton()
    if t.is_cuda and _TRITON_IMPLS:
        return "triton"
    if forced == "triton":
        raise RuntimeError(f"{ENV_VAR}=triton needs CUDA tensors and an importable triton")
    return "cpu"


def _pick(name: str, t: Tensor, cpu: Callable, reference: Callable) -> Callable:
    chosen = backend_for(t)
    if chosen == "triton" and name in _TRITON_IMPLS:
        return _TRITON_IMPLS[name]
    return reference if chosen == "reference" else cpu


def _dense_preacts(xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.addmm(b_enc_F, xc_BD, W_enc_DF)


def _encode_topk_torch(xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor, k: int):
    pre_BF = _dense_preacts(xc_BD, W_enc_DF, b_enc_F)
    return selection.topk_per_row(pre_BF, k)


def encoder_preacts(xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor) -> Tensor:
    """Dense pre-activations (no autograd): the one GEMM a step must pay."""
    return _pick("encoder_preacts", xc_BD, _dense_preacts, _dense_preacts)(xc_BD, W_enc_DF, b_enc_F)


def encode_topk(xc_BD: Tensor, W_enc_DF: Tensor, b_enc_F: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Fused encoder + per-row top-k of pre-activations: (pre_values_BK, indices_BK), no autograd."""
    return _pick("encode_topk", xc_BD, _encode_topk_torch, _encode_topk_torch)(xc_BD, W_enc_DF, b_enc_F, k)


def topm_global(acts_BF: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """Global top-m (BatchTopK / Mutual Choice) as CSR (crow_B1, cols_N)."""
    def ref(a, m_):
        rows, cols = selection_reference.topm_global_reference(a, m_)
        return selection._to_csr(rows, cols, a.shape[0])
    return _pick("topm_global", acts_BF, selection.topm_global, ref)(acts_BF, m)


def topm_per_column(acts_BF: Tensor, capacity_F: Tensor) -> tuple[Tensor, Tensor]:
    """Per-column top-m_f (Feature Choice) as CSR (crow_B1, cols_N)."""
    def ref(a, c):
        rows, cols = selection_reference.topm_per_column_reference(a, c)
        return selection._to_csr(rows, cols, a.shape[0])
    return _pick("topm_per_column", acts_BF, selection.topm_per_column, ref)(acts_BF, capacity_F)


def threshold_select(acts_BF: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """acts > θ as CSR (inference mode of MC / FC)."""
    return selection.threshold_select(acts_BF, theta)


def threshold_pairs(acts_BF: Tensor, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """acts > θ as CSR (crow_B1, cols_N) with the selected values_N (JumpReLU's select), no autograd."""
    def ref(a, t):
        rows, cols = selection_reference.threshold_reference(a, t)
        return selection._to_csr(rows, cols, a.shape[0]) + (a[rows, cols],)
    return _pick("threshold_pairs", acts_BF, selection.threshold_pairs, ref)(acts_BF, theta)


def selected_preacts(xc_BD, W_enc_DF, b_enc_F, crow_B1, cols_N, pre_N) -> Tensor:
    """Differentiable pre-activations at the selected pairs (sparse encoder backward)."""
    impl = _pick("selected_preacts", xc_BD, sparse_ops.selected_preacts,
                 sparse_ops_reference.selected_preacts_reference)
    return impl(xc_BD, W_enc_DF, b_enc_F, crow_B1, cols_N, pre_N)


def sparse_decode(values_N, crow_B1, cols_N, W_dec_FD) -> Tensor:
    """x̂ = S·W_dec for CSR codes (no b_dec); sparse backward."""
    impl = _pick("sparse_decode", W_dec_FD, sparse_ops.sparse_decode,
                 sparse_ops_reference.sparse_decode_reference)
    return impl(values_N, crow_B1, cols_N, W_dec_FD)
