"""Where activations come from: models, corpora, harvesting, on-disk caches, toy data.

    from superscope.activations import load_model, harvest
    model = load_model()                                       # embedded SmolLM2-135M-Instruct
    acts = harvest(model, ["blocks.12.hook_resid_post"], n_tokens=200_000)

The names below load their module on first use (PEP 562), so ``superscope.activations.hooks`` (read by
the report and the dashboard) does not import TransformerLens (~9 s on a busy 2-core machine). No
exported name may also be a submodule's name: importing the submodule would set the package
attribute to the module (``harvest`` the function lives in ``harvesting.py`` for that reason).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Capture": "capture", "run_hooks": "capture",
    "Corpus": "corpus", "CorpusNotAvailableError": "corpus", "iter_contexts": "corpus",
    "harvest": "harvesting", "load_activations": "harvesting",
    "d_model": "hooks", "hook_layer": "hooks", "n_layers": "hooks", "validate_hooks": "hooks",
    "DEFAULT_MODEL": "models", "ModelNotAvailableError": "models", "embedded_gguf_path": "models",
    "load_model": "models", "model_id": "models",
    "ShardSource": "shards",
    "ActivationSource": "source", "MemorySource": "source",
    "stream_activations": "stream",
    "ToyConfig": "toy", "ToySource": "toy",
}
__all__ = [
    "DEFAULT_MODEL", "ActivationSource", "Capture", "Corpus", "CorpusNotAvailableError", "MemorySource",
    "ModelNotAvailableError", "ShardSource", "ToyConfig", "ToySource", "d_model", "embedded_gguf_path", "harvest",
    "hook_layer", "iter_contexts", "load_activations", "load_model", "model_id", "n_layers", "run_hooks",
    "stream_activations", "validate_hooks",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


if TYPE_CHECKING:
    from .capture import Capture, run_hooks
    from .corpus import Corpus, CorpusNotAvailableError, iter_contexts
    from .harvesting import harvest, load_activations
    from .hooks import d_model, hook_layer, n_layers, validate_hooks
    from .models import DEFAULT_MODEL, ModelNotAvailableError, embedded_gguf_path, load_model, model_id
    from .shards import ShardSource
    from .source import ActivationSource, MemorySource
    from .stream import stream_activations
    from .toy import ToyConfig, ToySource
