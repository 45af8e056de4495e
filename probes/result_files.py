"""JSON helpers shared by the probes: JSON-safe conversion and atomic writes.

Results are written as JSON next to the run (DESIGN.md: "the run folder is the contract") through
``saes.atomic_io`` (temp file in the same folder, fsync, rename), so a reader never sees half a file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superscope.saes.atomic_io import write_json


def json_safe(obj: Any) -> Any:
    """Convert numbers, tensors, arrays, tuples and mappings to plain JSON types.

    Non-finite floats become None (JSON has no NaN/Infinity).
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return json_safe(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON; convert it to a number, list or dict first")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` made JSON-safe (non-finite floats → null) to `path` atomically (``saes.atomic_io``)."""
    return write_json(path, json_safe(obj))
