"""Save and load SAEs: ``cfg.json`` (SAEConfig + format/version) and ``sae.safetensors``.

Loading checks, in this order, that: the folder and both files exist; cfg.json is ours and not from a
newer version; the architecture is registered; the tensors file is intact; every tensor has the
shape the config implies. Each failure is one clear error naming the fix. Nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .atomic_io import read_json, read_safetensors, write_json, write_safetensors
from .config import SAEConfig
from .registry import sae_class

if TYPE_CHECKING:  # base imports this module (BaseSAE.save); the classes come through the registry
    from .base import BaseSAE

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae.safetensors"


def create_sae(cfg: SAEConfig) -> BaseSAE:
    """Instantiate the registered class for ``cfg.architecture``."""
    return sae_class(cfg.architecture)(cfg)


def _thresholds_summary(sae: BaseSAE) -> dict:
    state = dict(sae.named_buffers())
    if "theta" in state:
        return {"kind": "global", "theta": float(state["theta"])}
    if "theta_F" in state:
        t = state["theta_F"]
        return {"kind": "per_feature", "tensor": "theta_F", "mean": float(t.mean()), "max": float(t.max())}
    return {"kind": "none"}


def save_sae(sae: BaseSAE, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: p for name, p in sae.named_parameters()}
    tensors.update({name: b for name, b in sae.named_buffers()})
    write_safetensors(folder / WEIGHTS_FILE, tensors, metadata={"format": "superscope.sae"})
    write_json(folder / CFG_FILE, {**sae.cfg.to_dict(), "thresholds": _thresholds_summary(sae)})
    return folder


def load_sae(folder: str | Path, device: str | torch.device = "cpu") -> BaseSAE:
    """Load an SAE saved by ``save_sae`` (or a trainer run folder / checkpoint)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"SAE folder not found: {folder}")
    cfg_data = read_json(folder / CFG_FILE, "SAE config")
    if not isinstance(cfg_data, dict):
        raise ValueError(f"SAE config {folder / CFG_FILE} is not a JSON object")
    cfg = SAEConfig.from_dict(cfg_data, source=str(folder / CFG_FILE))
    sae = create_sae(cfg)
    tensors = sae.upgrade_saved(read_safetensors(folder / WEIGHTS_FILE, "SAE weights"))
    expected = dict(sae.state_dict())
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ValueError(f"{folder / WEIGHTS_FILE} lacks tensors {missing}: it was saved by another architecture")
    for name, ref in expected.items():
        if tensors[name].shape != ref.shape:
            raise ValueError(
                f"{folder / WEIGHTS_FILE}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                f"cfg.json implies {tuple(ref.shape)}; the files do not belong together"
            )
    sae.load_state_dict({k: tensors[k] for k in expected})
    return sae.to(device)
