"""Automatic interpretability without an LLM API (specs/evals.md "Automatic interpretability").

Per latent of an SAE:
  * an input-centric explanation: the tokens (or previous-token/token pairs) its feature-data examples
    fire on, with a few short contexts (``explanations.token_explanations``), built from the
    explanation half of the held-out contexts (even context indices);
  * an output-centric explanation: the tokens its decoder direction promotes and suppresses through
    the final norm's scale and the unembedding, VocabProj (Gur-Arieh et al. 2025, arXiv 2501.08319);
  * a detection score of the input-centric explanation on the scoring half of the held-out contexts
    (odd context indices; no token of it was used to build the explanation): balanced accuracy and
    F1 at a 1:1 class ratio, as delphi's detection scorer reports them (``detection``);
  * optionally (``llm_explanations``) a one-line explanation written by the embedded
    SmolLM2-135M-Instruct from the contexts, greedy, for the first ``llm_max_latents`` scored latents.
    A 135M model writes weak, often generic or wrong descriptions: they are marked "llm" and are not scored.

The SAE-level numbers are the mean and median of the per-latent scores over the scored latents (those
with explanation examples and at least ``min_positives`` firings in the scoring half) and a histogram.
SAEBench's autointerp score is a mean detection accuracy of LLM explanations; ``autointerp_score`` here
is the mean balanced accuracy of the token-set explanations, a different (weaker, LLM-free) explainer.

The result file ``runs/<run>/evals/<hook>/<arch>/autointerp.json`` (``to_dict()``) carries the
per-latent scores under "per_latent", ``autointerp.details.json`` beside it (``details_file()``) the per-latent
explanations, contexts and VocabProj tokens; ``read_autointerp`` joins them for the feature browser.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from superscope.analyses.evals.context import EvalContext
from superscope.analyses.evals.detection import detection_counts
from superscope.analyses.evals.explanations import (
    explanation_half,
    key_text,
    llm_explanations,
    token_explanations,
    vocab_projection,
)
from superscope.analyses.features.storage import FeatureData
from superscope.analyses.runs.evals import details_path
from superscope.kernels.threads import small_ops_serial
from superscope.saes.atomic_io import read_json, write_json
from superscope.saes.result_repr import Headline, ResultRepr

METRIC = "autointerp"
EVALS_COMMAND = "superscope evals <run>"


@dataclass(frozen=True)
class AutointerpConfig:
    """Settings of the LLM-free automatic interpretability metric."""

    max_tokens: int = 16
    """Most keys (tokens, or token pairs) in a latent's input-centric explanation."""
    min_count: int = 1
    """A key beyond the most frequent one enters the explanation when at least this many explanation examples
    fire on it. (max_tokens, min_count) = (16, 1) was chosen on runs/default's layer-12 SAEs, not on the layer-15
    ones we report: mean balanced accuracy TopK / FC / MC 0.682 / 0.700 / 0.663 against 0.620 / 0.634 / 0.597
    for (8, 2) and 0.643 / 0.647 / 0.620 for (4, 1)."""
    use_previous_token: bool = False
    """Explain and detect with (previous token, token) pairs instead of single tokens."""
    n_vocab_tokens: int = 10
    """Promoted and suppressed tokens kept per latent (VocabProj)."""
    n_contexts: int = 3
    """Short contexts stored per latent (from its top explanation-half examples)."""
    context_window: int = 4
    """Tokens on each side of the firing token in a short context."""
    max_scoring_tokens: int | None = None
    """Score on at most this many scoring-half held-out tokens (corpus order); None = all."""
    min_positives: int = 2
    """A latent is scored only when it fires at least this often in the scoring half."""
    hist_bins: int = 20
    """Bins of the balanced-accuracy histogram over [0, 1]."""
    batch_size: int = 4096
    """Held-out rows per SAE batch."""
    llm_explanations: bool = False
    """Also let the embedded SmolLM2-135M-Instruct write a one-line explanation (slow, weak; marked "llm")."""
    llm_max_latents: int = 32
    """The LLM explains only the first this many scored latents."""
    llm_max_new_tokens: int = 24
    """Greedy tokens generated per LLM explanation."""

    def __post_init__(self) -> None:
        for name in ("max_tokens", "min_count", "n_vocab_tokens", "n_contexts", "min_positives", "hist_bins",
                     "batch_size", "llm_max_latents", "llm_max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"AutointerpConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.context_window < 0:
            raise ValueError(f"AutointerpConfig.context_window must be ≥ 0, got {self.context_window}")
        if self.max_scoring_tokens is not None and self.max_scoring_tokens < 1:
            raise ValueError("AutointerpConfig.max_scoring_tokens must be ≥ 1 or None, "
                             f"got {self.max_scoring_tokens}")

    @classmethod
    def quick(cls) -> AutointerpConfig:
        """The version `superscope run` runs: scores on at most 8,192 scoring-half tokens."""
        return cls(max_scoring_tokens=8192)


@dataclass(frozen=True, repr=False)
class AutointerpResult(ResultRepr):
    """Per-latent explanations and detection scores of one SAE, and their distribution.

    explanation[f]          input-centric explanation: token strings (or "prev→token"), most frequent first
    explanation_ids[f]      the keys behind them (token ids, or pair keys with use_previous_token)
    contexts[f]             short contexts of its top explanation-half examples, firing token in [[ ]]
    promoted[f] / suppressed[f]   VocabProj tokens, strongest first
    balanced_accuracy[f], f1[f]   detection scores (NaN: not scored)
    positives[f]            firings in the scoring half
    llm_explanation         {latent: one-line text} when llm_explanations was on (kind "llm")
    """

    hook: str
    architecture: str
    explanation: list[list[str]]
    explanation_ids: list[list[int]]
    contexts: list[list[str]]
    promoted: list[list[str]]
    suppressed: list[list[str]]
    balanced_accuracy: list[float]
    f1: list[float]
    positives: list[int]
    n_scoring_tokens: int
    n_explanation_examples: int
    hist_counts: list[int]
    hist_edges: list[float]
    vocab_proj_source: str
    config: dict[str, Any]
    seconds: float
    llm_explanation: dict[int, str] = field(default_factory=dict)

    @property
    def n_latents(self) -> int:
        return len(self.balanced_accuracy)

    def _scored(self, values: list[float]) -> list[float]:
        return [v for v in values if not math.isnan(v)]

    @property
    def n_scored(self) -> int:
        return len(self._scored(self.balanced_accuracy))

    def _stat(self, values: list[float], how: str) -> float:
        v = self._scored(values)
        if not v:
            return math.nan
        t = torch.tensor(v, dtype=torch.float64)
        return float(t.mean() if how == "mean" else t.quantile(0.5))

    @property
    def mean_balanced_accuracy(self) -> float:
        return self._stat(self.balanced_accuracy, "mean")

    @property
    def median_balanced_accuracy(self) -> float:
        return self._stat(self.balanced_accuracy, "median")

    @property
    def mean_f1(self) -> float:
        return self._stat(self.f1, "mean")

    @property
    def median_f1(self) -> float:
        return self._stat(self.f1, "median")

    def headline(self) -> list[Headline]:
        return [("balanced accuracy mean", self.mean_balanced_accuracy, "num"),
                ("median", self.median_balanced_accuracy, "num"), ("F1 mean", self.mean_f1, "num"),
                ("scored", self.n_scored, "count"), ("latents", self.n_latents, "count"),
                ("scoring tokens", self.n_scoring_tokens, "count"), ("seconds", self.seconds, "num")]

    def to_dict(self) -> dict[str, Any]:
        summary = {"autointerp_score": nan_none(self.mean_balanced_accuracy),
                   "mean_balanced_accuracy": nan_none(self.mean_balanced_accuracy),
                   "median_balanced_accuracy": nan_none(self.median_balanced_accuracy),
                   "mean_f1": nan_none(self.mean_f1), "median_f1": nan_none(self.median_f1)}
        return {
            "metric": METRIC, "hook": self.hook, "architecture": self.architecture, **summary,
            "n_latents": self.n_latents, "n_scored": self.n_scored, "n_scoring_tokens": self.n_scoring_tokens,
            "n_explanation_examples": self.n_explanation_examples,
            "histogram": {"counts": self.hist_counts, "edges": self.hist_edges},
            "tokens": {"explanation": "feature-data examples (top and quantile bands) in even held-out contexts",
                       "scoring": "every held-out token of the odd held-out contexts (up to max_scoring_tokens)",
                       "balancing": "positives and negatives weighted 1:1 (delphi's balanced sample, in expectation)"},
            "vocab_proj_source": self.vocab_proj_source, "config": self.config, "seconds": round(self.seconds, 3),
            "per_latent": {"balanced_accuracy": [nan_none(v) for v in self.balanced_accuracy],
                           "f1": [nan_none(v) for v in self.f1], "positives": self.positives},
            "llm_explanations": {"kind": "llm", "model": "embedded SmolLM2-135M-Instruct, greedy",
                                 "by_latent": {str(k): v for k, v in self.llm_explanation.items()}}
            if self.llm_explanation else None,
        }

    def details_file(self) -> dict[str, Any]:
        """The per-latent text columns (megabytes for a few thousand latents), stored beside the result in
        ``autointerp.details.json`` so the table and the plots read only the scores."""
        return {"metric": METRIC, "hook": self.hook, "architecture": self.architecture,
                "per_latent": {"explanation": self.explanation, "explanation_ids": self.explanation_ids,
                               "contexts": self.contexts, "promoted": self.promoted, "suppressed": self.suppressed}}

    def figure(self):
        """The distribution of per-latent balanced accuracy (and F1) over the scored latents."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for name, values in (("balanced accuracy", self.balanced_accuracy), ("F1 (1:1)", self.f1)):
            fig.add_histogram(x=self._scored(values), name=name, opacity=0.6,
                              xbins={"start": 0, "end": 1.0001, "size": 1 / self.config["hist_bins"]})
        fig.add_vline(x=0.5, line_dash="dot", annotation_text="chance")
        fig.update_layout(barmode="overlay", xaxis_title="detection score on held-out tokens",
                          yaxis_title="latents", height=320, margin={"t": 40, "b": 40},
                          title=f"{self.architecture}: token-set explanations, {self.n_scored} latents scored "
                                f"(mean balanced accuracy {self.mean_balanced_accuracy:.3f})")
        return fig


def nan_none(v: float) -> float | None:
    """JSON has no NaN: an unscored value is written as null."""
    return None if math.isnan(v) else round(v, 6)


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _require(path: Path | None, what: str, fix: str) -> Path:
    if path is None or not Path(path).exists():
        raise FileNotFoundError(f"autointerp needs {what} ({path if path is not None else 'not given'}): {fix}")
    return Path(path)


@torch.no_grad()
def evaluate_autointerp(sae: Any, context: EvalContext, config: AutointerpConfig | None = None) -> AutointerpResult:
    """Explain every latent of ``sae`` (from the feature data at ``context.features_dir(arch)``) and score the
    explanations on the scoring half of ``context.heldout_dir`` (see the module docstring).

    The sorts and lookups are many small ops: they run on one intra-op thread (``small_ops_serial``; on the
    shared 2-core machine a 74k-element sort took 0.9 s on two busy threads and 0.03 s on one), the SAE's
    encoder opts back into all threads."""
    with small_ops_serial():
        return _evaluate(sae, context, config)


def _evaluate(sae: Any, context: EvalContext, config: AutointerpConfig | None) -> AutointerpResult:
    from superscope.activations import load_activations

    config = config or AutointerpConfig()
    t0 = time.perf_counter()
    arch = sae.cfg.architecture
    folder = _require(context.features_dir(arch), f"the {arch} SAE's feature data",
                      "run `superscope run` with feature_data on, or write_feature_data(run, model)")
    fd = FeatureData(folder)
    if fd.n_features != sae.cfg.d_sae or fd.index.get("hook") != context.hook:
        raise ValueError(f"the feature data in {folder} is for {fd.index.get('hook')} with {fd.n_features} latents, "
                         f"the SAE reads {context.hook} with {sae.cfg.d_sae}; regenerate the feature data")
    source = load_activations(_require(context.heldout_dir, "held-out activations", "harvest them (superscope run)"))
    if source.d != sae.cfg.d_in:
        raise ValueError(f"held-out activations at {context.heldout_dir} have d={source.d}, "
                         f"the SAE d_in={sae.cfg.d_in}")
    ctx_R, _ = source.locations()
    expl = token_explanations(fd, explanation_half(ctx_R), config.max_tokens, config.min_count,
                              config.use_previous_token, config.n_contexts, config.context_window)
    mode, training = sae.cfg.inference_mode, sae.training
    try:  # "fires" as the feature data counted it (FC / MC: learned thresholds); the SAE is left as given
        sae.eval()
        if fd.index.get("inference_mode") in ("threshold", "batch"):
            sae.cfg.inference_mode = fd.index["inference_mode"]
        counts = detection_counts(sae, source, expl.keys_FM, config.use_previous_token, config.max_scoring_tokens,
                                  config.batch_size)
    finally:
        sae.cfg.inference_mode = mode
        sae.train(training)
    unscored = (expl.n_examples_F == 0) | (counts.positives_F < config.min_positives)
    bacc = torch.where(unscored, math.nan, counts.balanced_accuracy())
    f1 = torch.where(unscored, math.nan, counts.f1())
    proj = vocab_projection(sae, config.n_vocab_tokens, fd, model=None if _has_logits(fd, config) else context.model)
    decode = _decoder(fd, context, proj.promoted_FL, proj.suppressed_FL)
    keys = [[k for k in row if k >= 0] for row in expl.keys_FM.tolist()]
    scored = bacc[~bacc.isnan()]
    hist = torch.histogram(scored.float(), bins=config.hist_bins, range=(0.0, 1.0))
    result = AutointerpResult(
        hook=context.hook, architecture=arch,
        explanation=[[key_text(fd, k, config.use_previous_token) for k in row] for row in keys], explanation_ids=keys,
        contexts=expl.contexts, promoted=[[decode(t) for t in row] for row in proj.promoted_FL.tolist()],
        suppressed=[[decode(t) for t in row] for row in proj.suppressed_FL.tolist()],
        balanced_accuracy=bacc.tolist(), f1=f1.tolist(), positives=counts.positives_F.tolist(),
        n_scoring_tokens=counts.n_tokens, n_explanation_examples=int(expl.n_examples_F.sum()),
        hist_counts=[int(c) for c in hist.hist.tolist()], hist_edges=hist.bin_edges.tolist(),
        vocab_proj_source=proj.source, config=asdict(config), seconds=0.0)
    if config.llm_explanations:
        latents = [f for f in range(result.n_latents) if not math.isnan(result.balanced_accuracy[f])]
        latents = latents[:config.llm_max_latents]
        texts = llm_explanations(context.model, {f: result.contexts[f] for f in latents}, config.llm_max_new_tokens)
        result = replace(result, llm_explanation=texts)
    return replace(result, seconds=time.perf_counter() - t0)


def _has_logits(fd: FeatureData, config: AutointerpConfig) -> bool:
    a = fd.arrays.get("logit_top_ids_FL")
    return a is not None and a.shape[1] >= config.n_vocab_tokens


def _decoder(fd: FeatureData, context: EvalContext, *id_tensors):
    """Token id → string: the feature data's strings, the tokenizer for any id they lack."""
    ids = {int(i) for t in id_tensors for i in t.unique().tolist()}
    missing = sorted(i for i in ids if i not in fd.strings)
    extra = dict(zip(missing, context.tokenizer.batch_decode([[i] for i in missing]))) if missing else {}
    return lambda i: fd.strings.get(int(i), extra.get(int(i), f"<{int(i)}>"))


def autointerp_path(run_root: str | Path, hook: str, arch: str) -> Path:
    """``runs/<run>/evals/<hook>/<arch>/autointerp.json``."""
    return Path(run_root) / "evals" / hook / arch / f"{METRIC}.json"


def save_autointerp(result: AutointerpResult, run_root: str | Path) -> Path:
    """Write ``result.details_file()`` and ``result.to_dict()`` to their places in the run folder (atomically)."""
    path = autointerp_path(run_root, result.hook, result.architecture)
    write_json(details_path(path), result.details_file())
    return write_json(path, result.to_dict())


def read_autointerp(run_root: str | Path, hook: str, arch: str) -> dict[str, Any] | None:
    """The per-latent columns for the feature browser, or None when the run has no autointerp result for
    this SAE (make it with ``superscope evals <run>``).

    Returns {"feature", "detection_bacc", "detection_f1", "explanation", "promotes", "suppresses",
    "contexts", "llm_explanation"} (lists, one entry per latent) plus "summary" (the SAE-level numbers)."""
    path = autointerp_path(run_root, hook, arch)
    if not path.is_file():
        return None
    data = read_json(path, "autointerp result")
    per = data.get("per_latent") if isinstance(data, dict) else None
    error = (data.get("suite") or {}).get("error") if isinstance(data, dict) else None
    if error:
        raise ValueError(f"the autointerp evaluation of {hook}/{arch} failed ({error}); rerun `{EVALS_COMMAND}`")
    if not isinstance(per, dict) or "balanced_accuracy" not in per:
        raise ValueError(f"{path} is not an autointerp result (no per_latent columns); rerun `{EVALS_COMMAND}`")
    if "explanation" not in per:  # the text columns are in the details file (older results hold them inline)
        try:
            extra = read_json(details_path(path), "autointerp details").get("per_latent")
        except FileNotFoundError:
            extra = None
        if not isinstance(extra, dict) or "explanation" not in extra:
            raise ValueError(f"the autointerp details {details_path(path)} are missing or hold no per-latent "
                             f"explanations; rerun `{EVALS_COMMAND}`")
        per = {**per, **extra}
    n = len(per["balanced_accuracy"])
    llm = (data.get("llm_explanations") or {}).get("by_latent", {})
    return {"feature": list(range(n)), "detection_bacc": [_nan(v) for v in per["balanced_accuracy"]],
            "detection_f1": [_nan(v) for v in per["f1"]],
            "explanation": [" | ".join(repr(t) for t in row) for row in per["explanation"]],
            "promotes": [" ".join(repr(t) for t in row) for row in per["promoted"]],
            "suppresses": [" ".join(repr(t) for t in row) for row in per["suppressed"]],
            "contexts": per.get("contexts", [[] for _ in range(n)]),
            "llm_explanation": [llm.get(str(f), "") for f in range(n)],
            "summary": {k: data.get(k) for k in ("mean_balanced_accuracy", "median_balanced_accuracy", "mean_f1",
                                                 "median_f1", "n_scored", "n_latents", "n_scoring_tokens")}}
