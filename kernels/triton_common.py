"""Shared plumbing of the Triton kernels: mode, argument checks, the transposed CSR, dot precision.

Letters: B tokens, D = d_in, F features, N selected pairs.
Kernels run on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1`` (Triton's numpy
interpreter, used by the tests). Launchers call ``check_*`` so that a bad argument is a one-line
``ValueError`` naming the fix instead of a crash or a silent wrong answer inside a kernel.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def interpreting() -> bool:
    """True when Triton runs kernels with its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def check_device(**tensors: Tensor) -> torch.device:
    """All tensors on one device: CUDA, or CPU under the interpreter."""
    devices = {t.device for t in tensors.values()}
    if len(devices) != 1:
        raise ValueError(f"Triton kernel arguments must share one device, got {sorted(map(str, devices))}")
    device = devices.pop()
    if interpreting():
        if device.type != "cpu":
            raise ValueError("under TRITON_INTERPRET=1 the Triton kernels take CPU tensors; move them with .cpu()")
    elif device.type != "cuda":
        raise ValueError(
            f"Triton kernels need CUDA tensors, got {device}; use superscope.kernels.dispatch (CPU path) "
            "or set TRITON_INTERPRET=1 to run them on the CPU interpreter"
        )
    return device


def check_matrix(t: Tensor, name: str, shape: tuple[int | None, int | None], dtypes=FLOAT_DTYPES) -> None:
    """2-D, row-major contiguous, expected shape (None = any) and a supported dtype."""
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
    for got, want, axis in zip(t.shape, shape, "01"):
        if want is not None and got != want:
            raise ValueError(f"{name} has size {got} on dim {axis}, expected {want} (shape {tuple(t.shape)})")
    if t.dtype not in dtypes:
        raise ValueError(f"{name} has dtype {t.dtype}; supported: {', '.join(map(str, dtypes))}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (row-major); pass {name}.contiguous()")


def check_vector(t: Tensor, name: str, size: int | None, dtypes) -> None:
    if t.ndim != 1 or (size is not None and t.numel() != size):
        raise ValueError(f"{name} must be 1-D of size {size}, got shape {tuple(t.shape)}")
    if t.dtype not in dtypes:
        raise ValueError(f"{name} has dtype {t.dtype}; supported: {', '.join(map(str, dtypes))}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous; pass {name}.contiguous()")


def check_csr(crow_B1: Tensor, cols_N: Tensor, n_rows: int | None = None) -> None:
    """int64 row pointers [B + 1] and int64 feature ids [N] (``SparseCodes`` layout)."""
    check_vector(crow_B1, "crow_B1", None if n_rows is None else n_rows + 1, (torch.int64,))
    check_vector(cols_N, "cols_N", None, (torch.int64,))
    if crow_B1.numel() < 1:
        raise ValueError("crow_B1 needs at least one entry (B + 1 row pointers)")


def dot_precision(dtype: torch.dtype) -> str:
    """``tl.dot`` input precision: fp32 follows torch's own TF32 switch (so kernel and reference agree,
    "ieee" = exact fp32 products); 16-bit inputs always run on the tensor cores with fp32
    accumulation (the setting only matters for fp32, "tf32" is Triton's default)."""
    if dtype == torch.float32 and (interpreting() or not torch.backends.cuda.matmul.allow_tf32):
        return "ieee"
    return "tf32"


class TransposedCSR(NamedTuple):
    """The selection regrouped by feature (CSC of the [B, F] pattern), for the scatter-free backward."""

    crow_F1: Tensor
    """int64 [F + 1]: feature f owns sorted entries crow_F1[f]:crow_F1[f+1]."""
    order_N: Tensor
    """int64 [N]: sorted position → original entry (a stable argsort of cols_N)."""
    rows_N: Tensor
    """int64 [N]: token row of each sorted entry."""
    cols_N: Tensor
    """int64 [N]: feature of each sorted entry (non-decreasing)."""


def transpose_csr(crow_B1: Tensor, cols_N: Tensor, n_features: int) -> TransposedCSR:
    """Regroup CSR entries by feature: one stable sort of N ids (no [B, F] tensor)."""
    n_rows, n = crow_B1.numel() - 1, cols_N.numel()
    rows_N = torch.repeat_interleave(
        torch.arange(n_rows, device=cols_N.device), crow_B1.diff(), output_size=n
    )
    order_N = torch.argsort(cols_N, stable=True)
    counts_F = torch.bincount(cols_N, minlength=n_features)
    crow_F1 = torch.zeros(n_features + 1, dtype=torch.int64, device=cols_N.device)
    torch.cumsum(counts_F, 0, out=crow_F1[1:])
    return TransposedCSR(crow_F1, order_N, rows_N[order_N], cols_N[order_N])


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()
