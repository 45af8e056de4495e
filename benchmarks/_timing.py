"""Shared timing helpers for the benchmarks: interleaved rounds, medians, ratios, tables, JSON.

Machine noise (other processes, frequency changes) hits whichever contender runs at that moment, so
contenders are timed round-robin — round r runs every contender once, in a rotated order — and the
median over rounds is reported. Only ratios measured in the same run are meaningful.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from superscope.saes.atomic_io import write_json as atomic_write_json


def interleaved(contenders: Mapping[str, Callable[[], Any]], rounds: int, warmup: int = 1,
                progress: bool = True) -> dict[str, list[float]]:
    """Seconds per call of each contender over ``rounds`` interleaved rounds (after ``warmup`` rounds)."""
    if rounds < 1:
        raise ValueError(f"rounds must be ≥ 1, got {rounds}")
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    total = (warmup + rounds) * len(names)
    with tqdm(total=total, desc="timing", disable=not progress, leave=False) as bar:
        for r in range(warmup + rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                gc.collect()
                start = time.perf_counter()
                contenders[name]()
                elapsed = time.perf_counter() - start
                if r >= warmup:
                    times[name].append(elapsed)
                bar.update(1)
    return times


def medians(times: Mapping[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(ts) for name, ts in times.items()}


def speedup(med: Mapping[str, float], fast: str, slow: str) -> float:
    """How many times faster ``fast`` is than ``slow`` (t_slow / t_fast)."""
    return med[slow] / med[fast]


def all_ratios(med: Mapping[str, float]) -> dict[str, float]:
    """t_a / t_b for every ordered pair a ≠ b, keyed "a/b"."""
    return {f"{a}/{b}": med[a] / med[b] for a in med for b in med if a != b}


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Results as sorted JSON, atomically (``saes.atomic_io``: temp file, fsync, rename)."""
    atomic_write_json(path, data, sort_keys=True)


def environment(device: str = "cpu") -> dict[str, Any]:
    """What the numbers were measured on (with ``device`` cuda…: the GPU and its TF32 setting)."""
    import platform

    import torch

    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
           "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name()
        env["allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return env
