"""What every metric of the evaluation suite may read about one (hook, SAE) pair: the shared inputs.

A metric module (``analyses/evals/<metric>.py``) exposes a frozen ``<Metric>Config`` (with
``quick()`` for the version ``superscope run`` runs), an ``evaluate_<metric>(sae, context, config)``
returning a frozen result dataclass with ``to_dict()`` (SAEBench's field names where the metric exists
there), ``figure()`` and a short repr, and ``METRIC = "<metric>"``: the result file is
``runs/<run>/evals/<hook>/<arch>/<METRIC>.json``.

The model is loaded lazily and once per context (the suite passes one context to every SAE of a hook),
so a metric that needs no model never pays for loading it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass
class EvalContext:
    """The inputs shared by the SAEs of one hook.

    hook            the hook the SAEs read (``blocks.15.hook_resid_post``)
    load_model      returns the TransformerLens bridge (called at most once, see ``model``)
    cache_dir       where a metric caches what it derives from the model alone (activations of probing
                    texts, ...), shared by every SAE of the hook: ``runs/<run>/evals/cache/<hook>/``;
                    None: no caching
    heldout_dir     the held-out activation shards of the hook (``runs/<run>/heldout/<hook>``), or None
    features_root   ``runs/<run>/features/<hook>/`` (per-architecture feature data), or None
    sae_folder      the folder of the SAE being evaluated (its metrics.json, ...), or None; the suite gives each
                    SAE ``context.for_sae(folder)``, which shares the loaded model
    """

    hook: str
    load_model: Callable[[], Any]
    cache_dir: Path | None = None
    heldout_dir: Path | None = None
    features_root: Path | None = None
    sae_folder: Path | None = None
    _model: Any = field(default=None, repr=False)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self.load_model()
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def cache_path(self, *parts: str) -> Path | None:
        """A path inside the cache folder (its parent created), or None when the context has no cache."""
        if self.cache_dir is None:
            return None
        path = self.cache_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def for_sae(self, folder: Path | None) -> EvalContext:
        """This context for the SAE in ``folder``; the model is loaded once and shared by both."""
        shared = self

        def load() -> Any:
            return shared.model
        return replace(self, sae_folder=folder, load_model=load, _model=self._model)

    def features_dir(self, arch: str) -> Path | None:
        """The SAE's feature data: ``<sae folder>/features/`` when it has one there (the L0 sweep's SAEs),
        else ``<features_root>/<arch>``."""
        if self.sae_folder is not None and (Path(self.sae_folder) / "features" / "index.json").is_file():
            return Path(self.sae_folder) / "features"
        return None if self.features_root is None else self.features_root / arch
