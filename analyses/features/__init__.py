"""Per-feature data for the dashboard and the report: ``runs/<run>/features/<hook>/<arch>/``.

For every feature of every SAE at the given hooks, from ONE streaming pass over the held-out tokens
(``heldout/<hook>/``; all SAEs of a hook share the pass): top-20 activating contexts (±8 tokens),
examples from 5 quantile bands of its activations, an activation histogram, its firing density;
then from the weights: top / bottom logit effects through the unembedding and the nearest features
by decoder cosine. The file layout is documented in ``_features_io``, the streaming math in
``_features_stream``, the weight-only parts in ``_features_static``.

    from superscope.analyses.features import write_feature_data, load_feature_data
    write_feature_data(RunFolder(Path("runs/default")), load_model())
    card = load_feature_data("runs/default/features/blocks.15.hook_resid_post/topk").card(123)
    card.figure(), card.html()

FC / MC codes depend on the batch in their training ("batch") mode: Feature Choice then gives every
feature the same firing count per batch, which would make densities meaningless. By default the pass
uses their learned thresholds ("threshold" mode, per token, as deployed); TopK is unaffected.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from superscope.analyses.features.static import decoder_neighbours, logit_effects, unembedding
from superscope.analyses.features.storage import FeatureData, write_feature_folder
from superscope.analyses.features.stream import FeatureAccumulator, context_aligned_batches, window_index
from superscope.analyses.runs.folder import RunFolder
from superscope.kernels.threads import torch_threads
from superscope.saes import load_sae

__all__ = ["FeatureData", "FeatureDataConfig", "feature_data_for_hook", "load_feature_data", "write_feature_data"]


@dataclass
class FeatureDataConfig:
    """What the feature-data pass keeps per feature."""

    top_k: int = 20
    """Top activating examples kept per feature."""
    window: int = 8
    """Tokens of context on each side of an example."""
    n_bands: int = 5
    """Quantile bands of the activation distribution that examples are drawn from."""
    band_examples: int = 4
    """Examples kept per quantile band."""
    sample_size: int = 40
    """Uniform random sample of firings per feature that the bands are cut from."""
    hist_bins: int = 48
    """Log-spaced activation histogram bins (shared edges per SAE)."""
    hist_decades: float = 5.0
    """Decades of activation the histogram spans below 4 × the first batch's largest activation."""
    n_logits: int = 10
    """Top and bottom logit effects kept per feature."""
    n_neighbours: int = 10
    """Nearest features by decoder cosine kept per feature."""
    batch_size: int = 4096
    """Held-out rows per batch (cut at context boundaries)."""
    inference_mode: Literal["threshold", "batch"] = "threshold"
    """FC / MC / BatchTopK selection: learned thresholds (per token) or within the batch."""
    max_tokens: int | None = None
    """Use at most this many held-out tokens (whole contexts); None = all."""
    seed: int = 0
    """Seed of the uniform example sample."""
    threads: int | None = None
    """torch CPU threads during the pass (None: keep torch's setting; 1 is fastest on a busy machine)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in ("top_k", "n_bands", "band_examples", "sample_size", "hist_bins", "n_logits", "n_neighbours",
                     "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"FeatureDataConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.window < 0:
            raise ValueError(f"FeatureDataConfig.window must be ≥ 0, got {self.window}")
        if self.sample_size < self.n_bands:
            raise ValueError(f"sample_size ({self.sample_size}) must be ≥ n_bands ({self.n_bands})")
        if self.inference_mode not in ("threshold", "batch"):
            raise ValueError(f"inference_mode must be 'threshold' or 'batch', got {self.inference_mode!r}")


def load_feature_data(folder: str | Path) -> FeatureData:
    """Open a ``features/<hook>/<arch>/`` folder."""
    return FeatureData(folder)


def _window_tokens(rows: Tensor, ctx_R: Tensor, pos_R: Tensor, contexts_CL: Tensor, window: int) -> Tensor:
    """Token ids of the ±window tokens around held-out rows ``rows`` (any shape; −1 = no row) → [..., W]."""
    valid = rows >= 0
    r = rows.clamp_min(0)
    c, p = ctx_R[r], pos_R[r]
    pp = p.unsqueeze(-1) + torch.arange(-window, window + 1)
    L = contexts_CL.shape[1]
    inside = (pp >= 0) & (pp < L) & valid.unsqueeze(-1)
    toks = contexts_CL[c.unsqueeze(-1), pp.clamp(0, L - 1)]
    return torch.where(inside, toks, -1).to(torch.int32)


def _decode(model: Any, ids: set[int]) -> dict[int, str]:
    tok = getattr(model, "tokenizer", None)
    ids_sorted = sorted(i for i in ids if i >= 0)
    if tok is None:
        return {i: f"<{i}>" for i in ids_sorted}
    return dict(zip(ids_sorted, tok.batch_decode([[i] for i in ids_sorted])))


@torch.no_grad()
def feature_data_for_hook(source: Any, saes: dict[str, Any], model: Any,
                          cfg: FeatureDataConfig | None = None) -> dict[str, tuple[dict[str, Tensor], dict, dict]]:
    """One pass over ``source`` for all ``saes`` ({arch: SAE}) of one hook →
    {arch: (tensors, index, strings)} ready for ``write_feature_folder``."""
    cfg = cfg or FeatureDataConfig()
    if not saes:
        raise ValueError("feature_data_for_hook needs at least one SAE")
    accs = {}
    for arch, sae in saes.items():
        if sae.cfg.d_in != source.d:
            raise ValueError(f"the {arch} SAE has d_in={sae.cfg.d_in} but the held-out activations at "
                             f"{source.hook} have d={source.d}; they do not belong together")
        sae.eval()
        sae.cfg.inference_mode = cfg.inference_mode
        accs[arch] = FeatureAccumulator(sae.cfg.d_sae, cfg.top_k, cfg.sample_size, cfg.window, cfg.hist_bins,
                                        cfg.hist_decades, cfg.seed)
    total = source.n_tokens if cfg.max_tokens is None else min(cfg.max_tokens, source.n_tokens)
    t0 = time.perf_counter()
    with tqdm(total=total, desc=f"feature data {source.hook}", unit="tok", disable=not cfg.progress) as bar:
        for batch in context_aligned_batches(source, cfg.batch_size, cfg.max_tokens):
            idx_BW, ok_BW = window_index(batch["context_ids"], batch["positions"], cfg.window)
            for arch, sae in saes.items():
                accs[arch].update(sae(batch["acts"]).codes, batch["start"], idx_BW, ok_BW)
            bar.update(batch["acts"].shape[0])
    pass_seconds = time.perf_counter() - t0
    ctx_R, pos_R = source.locations()
    contexts_CL = source.contexts()
    W_U = gain = None
    if model is not None:
        W_U, gain = unembedding(model)
    out = {}
    for arch, sae in saes.items():
        t1 = time.perf_counter()
        arrays = accs[arch].result(cfg.n_bands, cfg.band_examples)
        arrays["top_tokens_FKW"] = _window_tokens(arrays["top_rows_FK"], ctx_R, pos_R, contexts_CL, cfg.window)
        arrays["band_tokens_FBEW"] = _window_tokens(arrays["band_rows_FBE"], ctx_R, pos_R, contexts_CL, cfg.window)
        arrays["top_center_FK"] = arrays["top_tokens_FKW"][..., cfg.window].contiguous()
        arrays["top_win_FKW"] = arrays["top_win_FKW"].half()
        arrays["band_win_FBEW"] = arrays["band_win_FBEW"].half()
        if W_U is not None:
            arrays.update(logit_effects(sae.W_dec, sae.cfg.input_scale, W_U, gain, cfg.n_logits))
        arrays.update(decoder_neighbours(sae.W_dec, cfg.n_neighbours))
        ids = set(arrays["top_tokens_FKW"].unique().tolist()) | set(arrays["band_tokens_FBEW"].unique().tolist())
        for key in ("logit_top_ids_FL", "logit_bot_ids_FL"):
            if key in arrays:
                ids |= set(arrays[key].unique().tolist())
        index = {"hook": source.hook, "architecture": arch, "d_sae": sae.cfg.d_sae, "d_in": sae.cfg.d_in,
                 "n_tokens": accs[arch].n_tokens, "window": cfg.window, "inference_mode": sae.cfg.inference_mode,
                 "input_scale": sae.cfg.input_scale, "model_name": sae.cfg.model_name,
                 "logit_effect": "(g ⊙ W_dec[f] / s) @ W_U, direct path" if W_U is not None else None,
                 "pass_seconds": pass_seconds, "finish_seconds": time.perf_counter() - t1, "config": asdict(cfg)}
        out[arch] = (arrays, index, _decode(model, ids))
    return out


def write_feature_data(run: RunFolder | str | Path, model: Any, hooks: list[str] | None = None,
                       archs: list[str] | None = None, cfg: FeatureDataConfig | None = None) -> dict:
    """Feature data for every SAE (or those in ``archs``) at ``hooks`` (default: every hook with SAEs),
    written to ``features/<hook>/<arch>/``. Returns a summary with features/s and tokens/s."""
    run = run if isinstance(run, RunFolder) else RunFolder(Path(run))
    hooks = hooks or sorted({h for h, _, _ in run.sae_folders()})
    if not hooks:
        raise FileNotFoundError(f"no SAEs in {run.root / 'saes'}: train some first (superscope run)")
    t0, n_features, n_tokens, written = time.perf_counter(), 0, 0, []
    with torch_threads(cfg.threads if cfg is not None else None):
        for hook in hooks:
            for arch, index in _write_hook(run, hook, archs, model, cfg):
                written.append(f"{hook}/{arch}")
                n_features += index["d_sae"]
            n_tokens += index["n_tokens"]
    seconds = time.perf_counter() - t0
    return {"feature_folders": written, "features": n_features, "heldout_tokens": n_tokens,
            "elapsed_s": round(seconds, 2), "features_per_s": round(n_features / seconds, 1),
            "tokens_per_s": round(n_tokens / seconds, 1)}


def _write_hook(run: RunFolder, hook: str, archs: list[str] | None, model: Any,
                cfg: FeatureDataConfig | None) -> list[tuple[str, dict]]:
    """One pass over ``hook``'s held-out tokens for its SAEs; writes their folders; [(arch, index)]."""
    from superscope.activations import load_activations

    folders = {a: f for h, a, f in run.sae_folders() if h == hook and (archs is None or a in archs)}
    if not folders:
        raise FileNotFoundError(f"no SAEs at {hook} in {run.root / 'saes'}")
    source = load_activations(run.heldout(hook))
    saes = {a: load_sae(f) for a, f in folders.items()}
    out = []
    for arch, (arrays, index, strings) in feature_data_for_hook(source, saes, model, cfg).items():
        write_feature_folder(run.features(hook, arch), arrays, index, strings)
        out.append((arch, index))
    return out
