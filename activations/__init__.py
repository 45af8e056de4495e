"""Where activations come from: models, corpora, harvesting, on-disk caches, toy data.

    from superscope.activations import load_model, harvest
    model = load_model()                                       # embedded SmolLM2-135M-Instruct
    acts = harvest(model, ["blocks.12.hook_resid_post"], n_tokens=200_000)
"""

from .capture import Capture, run_hooks
from .corpus import Corpus, CorpusNotAvailableError, iter_contexts
from .harvest import harvest, load_activations
from .hooks import d_model, hook_layer, n_layers, validate_hooks
from .models import DEFAULT_MODEL, ModelNotAvailableError, embedded_gguf_path, load_model, model_id
from .shards import ShardSource
from .source import ActivationSource, MemorySource
from .stream import stream_activations
from .toy import ToyConfig, ToySource

__all__ = [
    "DEFAULT_MODEL", "ActivationSource", "Capture", "Corpus", "CorpusNotAvailableError", "MemorySource",
    "ModelNotAvailableError", "ShardSource", "ToyConfig", "ToySource", "d_model", "embedded_gguf_path", "harvest",
    "hook_layer", "iter_contexts", "load_activations", "load_model", "model_id", "n_layers", "run_hooks",
    "stream_activations", "validate_hooks",
]
