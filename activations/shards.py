"""Activation shards on disk: ``<folder>/shard_00000.safetensors`` … + ``manifest.json``.

Shard i holds contexts ``[i·C, (i+1)·C)`` of the harvest (C = ``contexts_per_shard``), so a shard is
a deterministic token range: an interrupted harvest resumes after its last complete shard. Each shard
stores ``acts [n, d]`` (``dtype``), ``token_ids`` / ``positions`` ``[n]`` int32, ``context_ids [n]``
int64 and ``contexts [C, context_len]`` int32. Shards and the manifest are written atomically
(``saes.atomic_io``: temp file in the same folder, fsync, ``os.replace``); the manifest is rewritten
after every shard and lists only complete shards, each with its byte size (a truncated file is
detected on load). Reading opens shards with ``safetensors.safe_open`` (memory-mapped) and slices
rows lazily.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from superscope.saes.atomic_io import write_json, write_safetensors

from .source import ActivationSource

__all__ = ["FORMAT", "MANIFEST", "STORE_DTYPES", "ShardSource", "ShardWriter", "read_manifest"]

MANIFEST = "manifest.json"
FORMAT = "superscope.activations"
VERSION = 1
STORE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_REQUIRED = ("format", "version", "hook", "d", "dtype", "context_len", "contexts_per_shard", "shards",
             "complete", "n_tokens")


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    write_json(folder / MANIFEST, manifest)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """Read and check ``folder/manifest.json``; clear errors for a missing, corrupt or foreign one."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {str(folder)!r}: not an activation folder written by "
                                "superscope harvest(..., out_dir=...)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt {path}: {exc}; delete the folder and harvest again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a superscope activation manifest (format != {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise ValueError(f"{path} has format version {manifest.get('version')}, this superscope reads {VERSION}")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing or manifest["dtype"] not in STORE_DTYPES:
        raise ValueError(f"corrupt {path}: missing fields {missing} or unknown dtype {manifest.get('dtype')!r}")
    return manifest


class ShardWriter:
    """Writes one hook's shards; ``settings`` (hook, d, dtype, model, corpus, seed, …) must match on resume."""

    def __init__(self, folder: str | Path, settings: dict[str, Any]):
        self.folder = Path(folder)
        self.settings = {"format": FORMAT, "version": VERSION, **settings}
        self.dtype = STORE_DTYPES[settings["dtype"]]
        self.manifest = self._open()

    def _open(self) -> dict[str, Any]:
        if (self.folder / MANIFEST).exists():
            old = read_manifest(self.folder)
            diff = sorted(k for k, v in self.settings.items() if k != "versions" and old.get(k) != v)
            if diff:
                raise ValueError(f"{self.folder} holds a harvest with other settings ({', '.join(diff)}); "
                                 "use a new out_dir or delete this one")
            kept = self._intact_prefix(old["shards"])
            if len(kept) < len(old["shards"]):  # a listed shard went missing or was cut: redo from there
                old.update(shards=kept, complete=False, n_tokens=sum(s["n_tokens"] for s in kept))
            return old
        if self.folder.exists() and any(not p.name.startswith(".") for p in self.folder.iterdir()):
            raise ValueError(f"{self.folder} exists, is not empty and has no {MANIFEST}; "
                             "use a new out_dir or delete this one")
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = {**self.settings, "shards": [], "n_tokens": 0, "complete": False}
        write_manifest(self.folder, manifest)
        return manifest

    def _intact_prefix(self, shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Shards 0, 1, … as long as each is listed in order and its file has the recorded size."""
        kept = []
        for i, entry in enumerate(shards):
            path = self.folder / entry["file"]
            if entry.get("index") != i or not path.is_file() or path.stat().st_size != entry["bytes"]:
                break
            kept.append(entry)
        return kept

    @property
    def done(self) -> int:
        """Number of complete shards (the next shard to write)."""
        return len(self.manifest["shards"])

    @property
    def complete(self) -> bool:
        return bool(self.manifest["complete"])

    def write(self, index: int, context_start: int, part: dict[str, Tensor]) -> None:
        """Write shard ``index`` (its rows and contexts) and record it in the manifest."""
        if index != self.done:
            raise ValueError(f"shard {index} written out of order (expected {self.done})")
        name = f"shard_{index:05d}.safetensors"
        tensors = {"acts": part["acts"].to(self.dtype).contiguous(),
                   "token_ids": part["token_ids"].to(torch.int32).contiguous(),
                   "positions": part["positions"].to(torch.int32).contiguous(),
                   "context_ids": part["context_ids"].to(torch.int64).contiguous(),
                   "contexts": part["contexts"].to(torch.int32).contiguous()}
        meta = {"hook": self.settings["hook"], "index": str(index)}
        write_safetensors(self.folder / name, tensors, metadata=meta)
        entry = {"index": index, "file": name, "context_start": context_start,
                 "n_contexts": int(tensors["contexts"].shape[0]), "n_tokens": int(tensors["acts"].shape[0]),
                 "bytes": (self.folder / name).stat().st_size}
        self.manifest["shards"].append(entry)
        self.manifest["n_tokens"] = sum(s["n_tokens"] for s in self.manifest["shards"])
        write_manifest(self.folder, self.manifest)

    def finish(self, extra: dict[str, Any] | None = None) -> None:
        """Mark the harvest complete."""
        self.manifest.update(extra or {})
        self.manifest["complete"] = True
        write_manifest(self.folder, self.manifest)


class ShardSource(ActivationSource):
    """Rows of a shard folder, read lazily from memory-mapped safetensors files."""

    def __init__(self, folder: str | Path, allow_incomplete: bool = False):
        self.folder = Path(folder)
        self.meta = read_manifest(self.folder)
        if not self.meta["complete"] and not allow_incomplete:
            raise ValueError(f"the harvest in {self.folder} did not finish ({len(self.meta['shards'])} shards "
                             "written); run harvest() again with the same out_dir to resume it")
        self.hook, self.d, self.context_len = self.meta["hook"], int(self.meta["d"]), int(self.meta["context_len"])
        self._handles: dict[int, Any] = {}
        for entry in self.meta["shards"]:
            self._check(entry)

    def _check(self, entry: dict[str, Any]) -> None:
        path = self.folder / entry["file"]
        if not path.is_file():
            raise FileNotFoundError(f"shard {path} listed in the manifest is missing; harvest again")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise ValueError(f"shard {path} is truncated or altered ({size} bytes, manifest says "
                             f"{entry['bytes']}); delete the folder and harvest again")

    def _handle(self, part: int) -> Any:
        if part not in self._handles:
            path = self.folder / self.meta["shards"][part]["file"]
            try:
                handle = safe_open(str(path), framework="pt")
            except (SafetensorError, OSError) as exc:
                raise ValueError(f"corrupt shard {path}: {exc}; delete the folder and harvest again") from None
            shape = handle.get_slice("acts").get_shape()
            if shape != [self.meta["shards"][part]["n_tokens"], self.d]:
                raise ValueError(f"corrupt shard {path}: acts shape {shape} disagrees with the manifest")
            self._handles[part] = handle
        return self._handles[part]

    def _part_lengths(self) -> list[int]:
        return [int(s["n_tokens"]) for s in self.meta["shards"]]

    def _read(self, part: int, start: int, stop: int, field: str) -> Tensor:
        t = self._handle(part).get_slice(field)[start:stop]
        return t.float() if field == "acts" else t.long()

    def _part_contexts(self, part: int) -> Tensor:
        return self._handle(part).get_tensor("contexts").long()
