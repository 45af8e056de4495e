"""Sparse probing (specs/evals.md): can a few SAE latents classify what the model represents?

Gurnee et al. 2023 ("Finding Neurons in a Haystack", k-sparse probing); SAEBench's sparse_probing eval
(Karvonen et al. 2025, arXiv 2503.09532); Kantamneni et al. 2025 ("Are Sparse Autoencoders Useful?",
arXiv 2502.16681), whose ``sae-probes`` datasets we read (probing_data.py).

Per binary dataset, a class-balanced train/test split of texts; one activation per text at the SAE's hook
(its last token by default, or the mean over its tokens; text_activations.py), cached once per hook and
shared by every SAE. Then

    dense:  logistic regression on x ∈ R^d                        → llm_test_accuracy
            on the k residual channels with the largest |μ⁺ − μ⁻|   → llm_top_k_test_accuracy (SAEBench's baseline)
    SAE:    z = encode(x) ∈ R^F; on all F latents                  → sae_test_accuracy
            on the k latents with the largest |μ⁺_f − μ⁻_f|        → sae_top_k_test_accuracy

where μ^± are class means on the training split only (SAEBench ``get_top_k_mean_diff_mask``) and the
probe is scikit-learn's L2 logistic regression (C = 1, max_iter = 1000, SAEBench's settings), fitted on
the train split and scored by accuracy on the test split. The result JSON mirrors SAEBench's output:
``eval_result_metrics`` {llm, sae} (means over datasets) and ``eval_result_details`` (one per dataset).

The SAE encodes the pooled activation (specs/evals.md: one activation per text, then the SAE), so the
cache holds one vector per text whatever the SAE; SAEBench instead mean-pools the per-token latents,
which "mean" here does not do (see ``SparseProbingConfig.pooling`` for why "last" is the default).
Batch-dependent SAEs (Feature / Mutual Choice, BatchTopK) encode in ``threshold`` mode by default (their
learned thresholds θ: each text's codes depend on that text alone). Batch mode over a few hundred pooled
texts would hand each Feature Choice latent ⌈k·B/F⌉ ≈ 2 texts, so no latent could separate a class.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from superscope.analyses.evals.context import EvalContext
from superscope.analyses.evals.probing_data import (
    DEFAULT_DATASETS,
    QUICK_DATASETS,
    ProbingSplit,
    dataset_path,
    read_dataset,
    split_dataset,
)
from superscope.analyses.evals.text_activations import POOLINGS, Pooling, text_activations
from superscope.saes.result_repr import Headline, ResultRepr

__all__ = ["METRIC", "DatasetProbing", "SparseProbingConfig", "SparseProbingResult", "evaluate_sparse_probing",
           "probe_accuracy", "probe_dataset", "summary", "top_k_by_mean_diff"]

METRIC = "sparse_probing"


@dataclass(frozen=True)
class SparseProbingConfig:
    """k-sparse probing on sae-probes datasets (SAEBench sparse_probing)."""

    datasets: tuple[str, ...] = DEFAULT_DATASETS
    """sae-probes binary datasets (file stems such as ``92_glue_sst2``; see probing_data.DEFAULT_DATASETS)."""
    ks: tuple[int, ...] = (1, 2, 5, 20)
    """Numbers of latents (and of residual channels) the sparse probes read."""
    pooling: Pooling = "last"
    """One activation per text: the last kept token's ("last", as sae-probes) or the mean over its tokens
    ("mean", BOS excluded). Last by default because the SAE then encodes a real token activation: a mean
    of residuals is off the SAEs' training distribution (on runs/default, layer 15, sst2: L0 5.4 for
    Feature Choice and 11.7 for Mutual Choice in threshold mode on mean-pooled texts vs ~35 per token), which
    put every FC probe at chance. Mean gives the dense probe more (0.74 / 0.86 / 0.92 vs 0.60 / 0.68 / 0.86
    on sst2 / code_Python / UK places, quick split)."""
    max_tokens: int = 64
    """Tokens kept per text (its first ones; BOS is added before them)."""
    n_train: int = 200
    """Training texts per dataset (half of each class)."""
    n_test: int = 100
    """Test texts per dataset (half of each class)."""
    seed: int = 0
    """Seed of the train/test draw."""
    batch_size: int = 32
    """Texts per forward pass of the model."""
    probe_c: float = 1.0
    """Inverse L2 strength C of the logistic probes (SAEBench: 1.0)."""
    max_iter: int = 1000
    """Iterations of the probe's L-BFGS solver (SAEBench: 1000)."""
    probe_all_latents: bool = True
    """Also fit a probe on all F latents (SAEBench's sae_test_accuracy)."""
    probe_threads: int = 1
    """BLAS threads for the probes (small fits: one thread avoids oversubscribing a shared CPU)."""
    inference_mode: Literal["threshold", "as_loaded"] = "threshold"
    """Batch-dependent SAEs: encode with their learned thresholds (per text), or in the mode they were loaded in."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        if not self.datasets:
            raise ValueError("no probing datasets given; e.g. datasets=('92_glue_sst2',)")
        if not self.ks or min(self.ks) < 1 or len(set(self.ks)) != len(self.ks):
            raise ValueError(f"ks must be distinct positive integers, got {self.ks}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.n_train < 2 or self.n_test < 1:
            raise ValueError(f"n_train must be ≥ 2 and n_test ≥ 1 (got {self.n_train}, {self.n_test}): "
                             "a split would be empty")
        if self.max_tokens < 1 or self.batch_size < 1 or self.max_iter < 1 or self.probe_threads < 1:
            raise ValueError("max_tokens, batch_size, max_iter and probe_threads must be positive")
        if self.inference_mode not in ("threshold", "as_loaded"):
            raise ValueError(f"inference_mode must be 'threshold' or 'as_loaded', got {self.inference_mode!r}")
        if not self.probe_c > 0:
            raise ValueError(f"probe_c must be positive, got {self.probe_c}")

    @classmethod
    def quick(cls) -> SparseProbingConfig:
        """What ``superscope run`` runs: four datasets, 100 + 50 texts of at most 32 tokens each."""
        return cls(datasets=QUICK_DATASETS, max_tokens=32, n_train=100, n_test=50)


# ---- probing on activations -------------------------------------------------------------------------
def top_k_by_mean_diff(x_NF: Float[Tensor, "n f"], y_N: Int[Tensor, " n"], k: int) -> Int[Tensor, " k"]:
    """Indices of the min(k, F) columns with the largest |mean over y=1 − mean over y=0|, largest first
    (ties: lower index first)."""
    diff_F = (x_NF[y_N == 1].mean(0) - x_NF[y_N == 0].mean(0)).abs()
    return torch.argsort(diff_F, descending=True, stable=True)[:k]


def probe_accuracy(x_train: Float[Tensor, "n f"], y_train: Int[Tensor, " n"], x_test: Float[Tensor, "m f"],
                   y_test: Int[Tensor, " m"], c: float = 1.0, max_iter: int = 1000) -> float:
    """Test accuracy of an L2 logistic regression fitted on the training split (scikit-learn, L-BFGS)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(C=c, max_iter=max_iter)
    with warnings.catch_warnings():  # an unconverged fit is still a probe; its accuracy is what we report
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(x_train.double().numpy(), y_train.numpy())
    return float((probe.predict(x_test.double().numpy()) == y_test.numpy()).mean())


def sparse_accuracies(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, ks: tuple[int, ...],
                      c: float, max_iter: int) -> tuple[dict[int, float], list[int]]:
    """{k: test accuracy of the probe on the top-k columns} and the top max(ks) column indices."""
    order = top_k_by_mean_diff(x_train, y_train, max(ks))
    accs = {k: probe_accuracy(x_train[:, order[:k]], y_train, x_test[:, order[:k]], y_test, c, max_iter)
            for k in ks}
    return accs, order.tolist()


@dataclass(frozen=True)
class DatasetProbing:
    """The probes of one dataset (SAEBench's ``SparseProbingResultDetail`` fields)."""

    dataset_name: str
    n_train: int
    n_test: int
    llm_test_accuracy: float
    """Probe on the dense activation x."""
    llm_top_k_test_accuracy: dict[int, float]
    """k → probe on the k residual channels with the largest class-mean difference."""
    sae_test_accuracy: float | None
    """Probe on all SAE latents (None when not fitted)."""
    sae_top_k_test_accuracy: dict[int, float]
    """k → probe on the k latents with the largest class-mean difference."""
    sae_top_latents: tuple[int, ...]
    """The latents by class-mean difference, largest first (max(ks) of them)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset_name": self.dataset_name, "llm_test_accuracy": self.llm_test_accuracy}
        out |= {f"llm_top_{k}_test_accuracy": v for k, v in self.llm_top_k_test_accuracy.items()}
        out["sae_test_accuracy"] = self.sae_test_accuracy
        out |= {f"sae_top_{k}_test_accuracy": v for k, v in self.sae_top_k_test_accuracy.items()}
        return out | {"n_train": self.n_train, "n_test": self.n_test, "sae_top_latents": list(self.sae_top_latents)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], ks: tuple[int, ...]) -> DatasetProbing:
        return cls(d["dataset_name"], int(d["n_train"]), int(d["n_test"]), float(d["llm_test_accuracy"]),
                   {k: float(d[f"llm_top_{k}_test_accuracy"]) for k in ks}, d.get("sae_test_accuracy"),
                   {k: float(d[f"sae_top_{k}_test_accuracy"]) for k in ks}, tuple(d.get("sae_top_latents", ())))


def probe_dataset(name: str, x_train: Float[Tensor, "n d"], y_train: Int[Tensor, " n"], z_train: Float[Tensor, "n f"],
                  x_test: Float[Tensor, "m d"], y_test: Int[Tensor, " m"], z_test: Float[Tensor, "m f"],
                  config: SparseProbingConfig) -> DatasetProbing:
    """Every probe of one dataset from its dense activations x and SAE codes z (CPU tensors)."""
    from threadpoolctl import threadpool_limits

    x_train, x_test, z_train, z_test = (t.detach().float().cpu() for t in (x_train, x_test, z_train, z_test))
    y_train, y_test = y_train.long().cpu(), y_test.long().cpu()
    c, it = config.probe_c, config.max_iter
    with threadpool_limits(limits=config.probe_threads):
        dense = probe_accuracy(x_train, y_train, x_test, y_test, c, it)
        dense_k, _ = sparse_accuracies(x_train, y_train, x_test, y_test, config.ks, c, it)
        full = probe_accuracy(z_train, y_train, z_test, y_test, c, it) if config.probe_all_latents else None
        sae_k, latents = sparse_accuracies(z_train, y_train, z_test, y_test, config.ks, c, it)
    return DatasetProbing(name, len(y_train), len(y_test), dense, dense_k, full, sae_k, tuple(latents))


# ---- the result --------------------------------------------------------------------------------------
def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


@dataclass(frozen=True, repr=False)
class SparseProbingResult(ResultRepr):
    """Sparse probing of one SAE: per-dataset accuracies and their means over datasets."""

    hook: str
    details: tuple[DatasetProbing, ...]
    ks: tuple[int, ...]
    pooling: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def llm_test_accuracy(self) -> float:
        return float(np.mean([d.llm_test_accuracy for d in self.details]))

    @property
    def sae_test_accuracy(self) -> float | None:
        return _mean([d.sae_test_accuracy for d in self.details])

    def llm_top_k(self, k: int) -> float:
        return float(np.mean([d.llm_top_k_test_accuracy[k] for d in self.details]))

    def sae_top_k(self, k: int) -> float:
        return float(np.mean([d.sae_top_k_test_accuracy[k] for d in self.details]))

    def headline(self) -> list[Headline]:
        return [("datasets", len(self.details), "count"), ("dense probe", self.llm_test_accuracy, "pct"),
                *((f"SAE top-{k}", self.sae_top_k(k), "pct") for k in self.ks),
                ("SAE all latents", self.sae_test_accuracy, "pct"), ("pooling", self.pooling, "text")]

    def to_dict(self) -> dict[str, Any]:
        llm = {"llm_test_accuracy": self.llm_test_accuracy} | {
            f"llm_top_{k}_test_accuracy": self.llm_top_k(k) for k in self.ks}
        sae = {"sae_test_accuracy": self.sae_test_accuracy} | {
            f"sae_top_{k}_test_accuracy": self.sae_top_k(k) for k in self.ks}
        return {"eval_type_id": METRIC, "hook": self.hook, "pooling": self.pooling, "ks": list(self.ks),
                "eval_config": self.config, "eval_result_metrics": {"llm": llm, "sae": sae},
                "eval_result_details": [d.to_dict() for d in self.details]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SparseProbingResult:
        ks = tuple(int(k) for k in d["ks"])
        return cls(d["hook"], tuple(DatasetProbing.from_dict(x, ks) for x in d["eval_result_details"]), ks,
                   d["pooling"], d.get("eval_config", {}))

    def figure(self) -> Any:
        """Grouped bars per dataset: the dense probe and the SAE's top-k probes (test accuracy)."""
        import plotly.graph_objects as go

        names = [d.dataset_name for d in self.details]
        fig = go.Figure(go.Bar(name="dense (all d channels)", x=names,
                               y=[d.llm_test_accuracy for d in self.details], marker_color="#444"))
        for k in self.ks:
            fig.add_bar(name=f"SAE top-{k}", x=names, y=[d.sae_top_k_test_accuracy[k] for d in self.details])
        fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
        fig.update_layout(barmode="group", yaxis_title="test accuracy", yaxis_range=[0.4, 1.0],
                          title=f"Sparse probing at {self.hook} ({self.pooling}-token pooling)")
        return fig


def summary(result: dict[str, Any]) -> dict[str, float | None]:
    """The SAEBench-named means of a result's ``to_dict()`` (for the suite's table)."""
    metrics = result["eval_result_metrics"]
    return {**metrics["llm"], **metrics["sae"]}


# ---- the metric --------------------------------------------------------------------------------------
def _split_activations(context: EvalContext, split: ProbingSplit, config: SparseProbingConfig) -> Tensor:
    """Dense vectors of the split's train texts then test texts (cached under the context's cache_dir)."""
    tag = f"{split.name}_{config.pooling}_t{config.max_tokens}_n{config.n_train}+{config.n_test}_s{config.seed}"
    cache = context.cache_path(METRIC, f"{tag}.safetensors")
    return text_activations(context.model, context.hook, split.train_texts + split.test_texts, config.pooling,
                            config.max_tokens, config.batch_size, cache)


@torch.no_grad()
def encode(sae: Any, x: Float[Tensor, "n d"], inference_mode: str | None = None) -> Float[Tensor, "n f"]:
    """The SAE's codes of ``x`` (moved to the SAE's device and dtype), returned on the CPU as float32;
    ``inference_mode`` ("threshold"/"batch") overrides the SAE's for this call (None: keep it)."""
    weight, cfg = sae.W_enc, sae.cfg
    saved = cfg.inference_mode
    if inference_mode is not None:
        cfg.inference_mode = inference_mode
    try:
        return sae.encode(x.to(weight.device, weight.dtype)).float().cpu()
    finally:
        cfg.inference_mode = saved


def evaluate_sparse_probing(sae: Any, context: EvalContext, config: SparseProbingConfig | None = None,
                            ) -> SparseProbingResult:
    """Sparse probing of ``sae`` at ``context.hook`` (module docstring). Every dataset name is checked
    before the model runs; the SAE's d_in is checked against the hook's width."""
    config = config or SparseProbingConfig()
    for name in config.datasets:
        dataset_path(name)
    splits = [split_dataset(read_dataset(name), config.n_train, config.n_test, config.seed)
              for name in config.datasets]
    mode = "threshold" if config.inference_mode == "threshold" and getattr(sae, "batch_dependent", False) else None
    details = []
    for split in splits:
        x = _split_activations(context, split, config)
        if x.shape[1] != sae.cfg.d_in:
            raise ValueError(f"the SAE has d_in={sae.cfg.d_in} but {context.hook} of the model is {x.shape[1]} wide; "
                             "probe an SAE trained at this hook of this model")
        if not torch.isfinite(x).all():
            raise ValueError(f"NaN or Inf activations at {context.hook} for dataset {split.name!r}; "
                             "delete the cached file under the cache folder and check the model")
        n = len(split.train_texts)
        x_train, x_test = x[:n], x[n:]
        y_train, y_test = torch.from_numpy(split.train_labels), torch.from_numpy(split.test_labels)
        details.append(probe_dataset(split.name, x_train, y_train, encode(sae, x_train, mode), x_test, y_test,
                                     encode(sae, x_test, mode), config))
    return SparseProbingResult(context.hook, tuple(details), config.ks, config.pooling, asdict(config))
