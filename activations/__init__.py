"""Where activations come from: models, corpora, harvesting, on-disk caches, toy data.

    from superscope.activations import load_model, harvest
    model = load_model()                                       # embedded SmolLM2-135M-Instruct
    acts = harvest(model, ["blocks.12.hook_resid_post"], n_tokens=200_000)
"""

from .corpus import Corpus, iter_contexts
from .harvest import harvest, load_activations
from .hooks import d_model, hook_layer, n_layers, validate_hooks
from .models import ModelNotAvailableError, load_model, model_id
from .source import ActivationSource
from .toy import ToyConfig, ToySource

__all__ = [
    "ActivationSource", "Corpus", "ModelNotAvailableError", "ToyConfig", "ToySource", "d_model", "harvest",
    "hook_layer", "iter_contexts", "load_activations", "load_model", "model_id", "n_layers", "validate_hooks",
]
