"""Atomic file writes (temp file in the same folder, fsync, os.replace): a crash never leaves a
half-written file under the final name. safetensors for tensors, JSON for everything else, bytes or
text for other formats, ``write_folder`` for a folder written as one unit.

The one place in the package that writes files atomically: the other subpackages call these.
Temp files are named ``.<name>.<random>.tmp`` (the trainer and the harvest delete leftovers by that
pattern); a failed write removes its temp file and leaves the previous file, if any, untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


def _fsync(path: str | Path) -> None:
    """Flush a file's (or, on POSIX, a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_from_temp(path: Path, write: Callable[[str], None]) -> Path:
    """``write(tmp)`` fills a temp file beside ``path``; it is fsynced, then renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: str | Path, data: Any, sort_keys: bool = False) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=sort_keys)
            f.write("\n")
    return _replace_from_temp(Path(path), write)


def write_bytes(path: str | Path, data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
    return _replace_from_temp(Path(path), write)


def write_text(path: str | Path, text: str) -> Path:
    """``text`` as UTF-8."""
    return write_bytes(path, text.encode("utf-8"))


def write_folder(folder: str | Path, fill: Callable[[Path], None]) -> Path:
    """``fill(tmp)`` writes a temp folder beside ``folder``; every file and folder in it is fsynced, then
    it is renamed to ``folder``. Raises OSError (and removes the temp folder) when ``folder`` already
    exists and is not empty (e.g. a concurrent writer finished first)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        fill(tmp)
        for item in sorted(tmp.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # files before their folder
            if item.is_file() or os.name == "posix":  # a folder cannot be opened for fsync on Windows
                _fsync(item)
        if os.name == "posix":
            _fsync(tmp)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return _replace_from_temp(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {path} is not valid JSON ({err}); it is corrupt or not ours") from None


def read_safetensors(path: str | Path, what: str = "safetensors file") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{what} {path} is truncated or corrupt ({err}); re-create it") from None


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it (a log; a torn last line is dropped on reading)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL log, skipping a torn last line."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
