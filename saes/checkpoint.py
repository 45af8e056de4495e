"""Resumable training checkpoints: ``<out>/checkpoints/step_<n>/`` holds the SAE (cfg.json +
sae.safetensors, buffers included), the optimizer (optimizer.safetensors + JSON param groups) and
the trainer state; ``<out>/checkpoints/latest.json`` points at the newest complete one and is
replaced atomically only after the folder is fully written, so a kill at any point leaves the
previous checkpoint valid. Nothing is pickled."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from .atomic_io import read_json, read_safetensors, write_json, write_safetensors
from .base import BaseSAE
from .persistence import load_sae, save_sae

POINTER = "latest.json"


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            tensors[f"state.{pid}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, {"param_groups": sd["param_groups"]}


def save_checkpoint(folder: Path, sae: BaseSAE, opt: torch.optim.Optimizer, trainer_state: dict[str, Any]) -> Path:
    root = Path(folder) / "checkpoints"
    target = root / f"step_{trainer_state['step']:09d}"
    if target.exists():
        shutil.rmtree(target)
    save_sae(sae, target)
    tensors, groups = _optimizer_tensors(opt)
    write_safetensors(target / "optimizer.safetensors", tensors)
    write_json(target / "optimizer.json", groups)
    write_json(target / "trainer_state.json", trainer_state)
    write_json(root / POINTER, {"checkpoint": target.name})
    for old in root.glob("step_*"):
        if old.name != target.name:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = Path(folder) / "checkpoints" / POINTER
    if not pointer.is_file():
        return None
    target = pointer.parent / read_json(pointer, "checkpoint pointer")["checkpoint"]
    if not target.is_dir():
        raise FileNotFoundError(f"{pointer} points at a missing checkpoint {target}; delete {pointer.parent} to restart")
    return target


def load_checkpoint(target: Path, opt_factory) -> tuple[BaseSAE, torch.optim.Optimizer, dict[str, Any]]:
    """Restore (sae, optimizer, trainer_state); ``opt_factory(sae)`` builds a fresh optimizer."""
    sae = load_sae(target)
    opt = opt_factory(sae)
    tensors = read_safetensors(target / "optimizer.safetensors", "optimizer state")
    groups = read_json(target / "optimizer.json", "optimizer groups")
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": groups["param_groups"]})
    return sae, opt, read_json(target / "trainer_state.json", "trainer state")
