"""Checkpoints: `<stem>.safetensors` (weights) + `<stem>.json` (configs, method, metrics), atomic writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from superscope.saes.atomic_io import write_bytes, write_json

from .generator import GraphConfig
from .model import GPT, ModelConfig
from .tokens import Vocab

FORMAT = "superscope.bfs/1"
SHIPPED = Path(__file__).parent / "checkpoints"
"""Folder of the checkpoints committed with the package."""


def atomic_write_json(path: Path, obj) -> None:
    """``obj`` as JSON with sorted keys, written atomically (``saes.atomic_io``)."""
    write_json(path, obj, sort_keys=True)


@dataclass(frozen=True)
class Checkpoint:
    model: GPT
    graph: GraphConfig
    vocab: Vocab
    method: str
    """coconut | cot | nocot"""
    meta: dict
    """Everything else from the JSON: training config, recorded metrics, timings."""


def save_bfs_checkpoint(stem: str | Path, model: GPT, graph: GraphConfig, method: str, meta: dict) -> None:
    """Write `<stem>.safetensors` and `<stem>.json` (each atomically; weights first)."""
    stem = Path(stem)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    write_bytes(stem.with_suffix(".safetensors"), save_safetensors(state))
    atomic_write_json(stem.with_suffix(".json"), {
        "format": FORMAT, "method": method, "model": model.cfg.to_dict(),
        "graph": graph.__dict__.copy(), **meta,
    })


def resolve(name_or_path: str | Path) -> Path:
    """A stem: a shipped name ('coconut'), or a path with or without suffix."""
    p = Path(name_or_path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    if not p.with_suffix(".json").exists() and (SHIPPED / p.name).with_suffix(".json").exists():
        p = SHIPPED / p.name
    if not p.with_suffix(".json").exists():
        shipped = sorted(q.stem for q in SHIPPED.glob("*.json"))
        raise FileNotFoundError(f"no checkpoint {p}.json; pass a path or one of the shipped names {shipped}")
    return p


def load_bfs_checkpoint(name_or_path: str | Path = "coconut", device: str = "cpu") -> Checkpoint:
    """Load a checkpoint written by save_bfs_checkpoint (default: the shipped Coconut model)."""
    stem = resolve(name_or_path)
    meta = json.loads(stem.with_suffix(".json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{stem}.json is not a {FORMAT} checkpoint (format={meta.get('format')!r})")
    model = GPT(ModelConfig(**meta.pop("model")))
    model.load_state_dict(load_file(str(stem.with_suffix(".safetensors"))))
    graph = GraphConfig(**meta.pop("graph"))
    model.to(torch.device(device)).eval()
    return Checkpoint(model=model, graph=graph, vocab=Vocab(graph.n_node_tokens),
                      method=meta.pop("method"), meta=meta)
