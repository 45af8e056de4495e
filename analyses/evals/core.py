"""The core metrics as an entry of the evaluation suite (SAEBench core eval, Karvonen et al. 2025,
arXiv 2503.09532, ``sae_bench/evals/core/main.py``): ``saes.evaluate`` on the hook's held-out shards
(FVU, L0, dead/dense, L2 ratio, shrinkage γ, cos(x, x̂), max pairwise decoder/encoder cosine,
encoder–decoder cosine; definitions in saes/core_metrics.py) plus CE-loss recovered and KL.

CE-loss recovered = (CE_zero − CE_sae) / (CE_zero − CE_clean) and KL(p_clean ‖ p_sae) come from the SAE
folder's metrics.json when the pipeline already measured them (its ``splice`` entry); otherwise, when
``splice_tokens > 0``, they are measured here by splicing the SAE into the model on held-out contexts
(saes/model_metrics.py). ``to_dict`` groups the numbers as SAEBench's core output does
(``eval_result_metrics`` → ``model_performance_preservation``, ``reconstruction_quality``, ``shrinkage``,
``sparsity``, ``misc_metrics`` …) with its field names where the definition is the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superscope.analyses.evals.context import EvalContext
from superscope.saes import BaseSAE, EvalResult, evaluate
from superscope.saes.atomic_io import read_json
from superscope.saes.result_repr import Headline, ResultRepr

METRIC = "core"


@dataclass(frozen=True)
class CoreConfig:
    """Core metrics on held-out activations (SAEBench core eval)."""

    batch_size: int = 4096
    """Held-out tokens per forward of the SAE (FC / MC select within a batch: keep the training batch)."""
    max_tokens: int | None = None
    """Held-out tokens evaluated (None: all of them)."""
    splice_tokens: int = 1024
    """Held-out tokens (whole contexts) for CE-loss recovered / KL when metrics.json lacks them (0: skip)."""

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive or None, got {self.max_tokens}")
        if self.splice_tokens < 0:
            raise ValueError(f"splice_tokens must be ≥ 0, got {self.splice_tokens}")

    @classmethod
    def quick(cls) -> CoreConfig:
        """What ``superscope run`` runs: every held-out token, CE/KL only from metrics.json."""
        return cls(splice_tokens=0)


@dataclass(frozen=True, repr=False)
class CoreResult(ResultRepr):
    """The core metrics of one SAE."""

    eval: EvalResult
    splice: dict | None
    """CE/KL (saes.model_metrics.SpliceMetrics fields) or None when neither measured nor recorded."""
    splice_source: str
    """'metrics.json', 'measured' or 'none'."""

    def to_dict(self) -> dict[str, Any]:
        e, s = self.eval, self.splice or {}
        nan = float("nan")
        return {
            "eval_type_id": "core",
            "eval_result_metrics": {
                "model_behavior_preservation": {"kl_div_with_sae": s.get("kl_div", nan)},
                "model_performance_preservation": {
                    "ce_loss_score": s.get("ce_loss_recovered", nan), "ce_loss_with_ablation": s.get("ce_zero", nan),
                    "ce_loss_with_sae": s.get("ce_sae", nan), "ce_loss_without_sae": s.get("ce_clean", nan)},
                "reconstruction_quality": {"explained_variance": e.explained_variance, "mse": e.mse,
                                           "cossim": e.cossim, "fvu": e.fvu},
                "shrinkage": {"l2_ratio": e.l2_ratio, "relative_reconstruction_bias": e.relative_reconstruction_bias},
                "sparsity": {"l0": e.l0_mean, "l0_std": e.l0_std},
                "token_stats": {"total_tokens_eval_reconstruction": e.n_tokens,
                                "total_tokens_eval_ce": s.get("n_tokens", 0)},
                "misc_metrics": {
                    "freq_over_1_percent": e.freq_over_1_percent, "freq_over_10_percent": e.freq_over_10_percent,
                    "frac_alive": 1 - e.dead_frac, "average_max_abs_decoder_cosine_sim": e.max_abs_cos_decoder_mean,
                    "average_max_abs_encoder_cosine_sim": e.max_abs_cos_encoder_mean,
                    "average_encoder_decoder_cosine_sim": e.encoder_decoder_cosine_sim_mean},
            },
            "eval_result_details": {"encoder_decoder_cosine_sim": e.encoder_decoder_cosine_sim},
            "eval_result_unstructured": {"splice_source": self.splice_source, "inference_mode": e.inference_mode,
                                         "l0_hist": e.l0_hist, "dead_train_frac": e.dead_train_frac},
        }

    def headline(self) -> list[Headline]:
        s = self.splice or {}
        return [("FVU", self.eval.fvu, "num"), ("L0", self.eval.l0_mean, "num"),
                ("CE-loss recovered", s.get("ce_loss_recovered"), "num"), ("KL", s.get("kl_div"), "num"),
                ("cos(x, x̂)", self.eval.cossim, "num"), ("L2 ratio", self.eval.l2_ratio, "num"),
                ("shrinkage γ", self.eval.relative_reconstruction_bias, "num"),
                ("dense > 1 %", self.eval.freq_over_1_percent, "pct"),
                ("max |cos| decoder", self.eval.max_abs_cos_decoder_mean, "num")]

    def figure(self):
        import plotly.graph_objects as go

        e = self.eval
        fig = go.Figure(go.Bar(x=list(range(len(e.l0_hist))), y=e.l0_hist))
        fig.update_layout(title=f"Per-token L0 (mean {e.l0_mean:.1f}); FVU {e.fvu:.3f}", xaxis_title="active latents",
                          yaxis_title="tokens", height=320)
        return fig


def summary(result: dict) -> dict[str, float]:
    """The scalars shown in the table and the Pareto plots (from ``CoreResult.to_dict()``)."""
    m = result.get("eval_result_metrics", {})
    get = lambda group, key: m.get(group, {}).get(key, math.nan)  # noqa: E731
    return {"fvu": get("reconstruction_quality", "fvu"), "l0": get("sparsity", "l0"),
            "ce_loss_score": get("model_performance_preservation", "ce_loss_score"),
            "kl_div_with_sae": get("model_behavior_preservation", "kl_div_with_sae"),
            "cossim": get("reconstruction_quality", "cossim"), "l2_ratio": get("shrinkage", "l2_ratio"),
            "relative_reconstruction_bias": get("shrinkage", "relative_reconstruction_bias"),
            "freq_over_1_percent": get("misc_metrics", "freq_over_1_percent"),
            "average_max_abs_decoder_cosine_sim": get("misc_metrics", "average_max_abs_decoder_cosine_sim")}


def recorded_splice(folder: Path | None) -> dict | None:
    """The ``splice`` entry of ``folder/metrics.json`` (the pipeline's CE/KL), or None."""
    path = None if folder is None else Path(folder) / "metrics.json"
    if path is None or not path.is_file():
        return None
    splice = read_json(path, "SAE metrics").get("splice")
    return splice if isinstance(splice, dict) and "ce_loss_recovered" in splice else None


def evaluate_core(sae: BaseSAE, context: EvalContext, config: CoreConfig) -> CoreResult:
    """``saes.evaluate`` on ``context.heldout_dir`` + CE/KL (recorded in metrics.json, or measured)."""
    from superscope.activations import load_activations

    if context.heldout_dir is None or not (Path(context.heldout_dir) / "manifest.json").is_file():
        raise FileNotFoundError(f"no held-out activations for {context.hook} (heldout/{context.hook}/manifest.json); "
                                "harvest them with `superscope run` or pass --activations")
    held = load_activations(context.heldout_dir)
    if held.d != sae.cfg.d_in:
        raise ValueError(f"held-out activations at {context.hook} have d={held.d} but the SAE has "
                         f"d_in={sae.cfg.d_in}: evaluate it at the hook it was trained on")
    device = sae.W_enc.device
    batches = (b.to(device) for b in held.batches(config.batch_size, shuffle=False))
    if config.max_tokens is not None:
        batches = _limit(batches, config.max_tokens)
    result = evaluate(sae, batches)
    splice, source = recorded_splice(context.sae_folder), "metrics.json"
    if splice is None and config.splice_tokens > 0:
        from superscope.saes.model_metrics import splice_metrics

        contexts = held.contexts()[: max(1, config.splice_tokens // held.context_len)].to(device)
        splice = splice_metrics(context.model, {"sae": sae}, context.hook, contexts.split(8),
                                bos_id=held.meta.get("bos_token_id"))["sae"].to_dict()
        source = "measured"
    return CoreResult(result, splice, source if splice is not None else "none")


def _limit(batches, max_tokens: int):
    seen = 0
    for b in batches:
        if seen >= max_tokens:
            return
        yield b[: max_tokens - seen]
        seen += b.shape[0]
