"""Per-token L0 against token difficulty: the adaptive-allocation point of Feature / Mutual Choice.

Ayonrinde 2024 (arXiv 2411.02124, §1, §5): TopK spends exactly k features on every token; FC and MC
share a batch budget M = k·B and so can give hard tokens more features and easy ones fewer. We test
it on held-out activations: a token's *difficulty* is its reconstruction error under the TopK SAE,
normalised so that its mean is the FVU,

    d_t = ‖x_t − x̂_t‖² / mean_s ‖x_s − x̄‖²,

and for each architecture we report its per-token L0 binned by difficulty deciles, plus the Spearman
rank correlation ρ(L0, d). Adaptive allocation shows as rising curves and ρ > 0 for FC / MC (TopK: flat).
When the hook has no TopK SAE, the first architecture's per-token error is the difficulty.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import plotly.graph_objects as go
import torch
from scipy.stats import spearmanr

from superscope.analyses.runs.data import arch_key
from superscope.analyses.runs.folder import CACHE_DIR, RunFolder
from superscope.saes.registry import arch_color, arch_label, arch_order


@dataclass(frozen=True)
class L0Difficulty:
    """Per-token L0 binned by difficulty, per (architecture, mode)."""

    hook: str
    difficulty_from: str
    """Architecture whose per-token error (batch mode) defines difficulty."""
    n_tokens: int
    bin_difficulty: tuple[float, ...]
    """Mean difficulty in each decile bin."""
    l0_by_bin: dict
    """{label: mean L0 per bin}; label = 'TopK', 'Mutual Choice (batch)', 'Mutual Choice (threshold)', …"""
    spearman: dict
    """{label: Spearman ρ between per-token L0 and difficulty}."""
    fvu: dict
    """{label: FVU on these tokens (mean of its own per-token error)}."""

    def to_dict(self) -> dict:
        return asdict(self)

    def figure(self) -> go.Figure:
        fig = go.Figure()
        for label, ys in self.l0_by_bin.items():
            arch = next((a for a in arch_order() if label.startswith(arch_label(a))), "")
            rho = self.spearman.get(label)
            fig.add_scatter(x=list(self.bin_difficulty), y=ys, mode="lines+markers",
                            name=f"{label} (ρ = {rho:.2f})" if rho is not None else label,
                            line={"color": arch_color(arch), "dash": "dash" if "threshold" in label else "solid"})
        src = f"the {arch_label(self.difficulty_from)} SAE's error"
        fig.update_layout(title=f"Per-token L0 vs difficulty at {self.hook} ({self.n_tokens} held-out tokens; "
                                f"difficulty = {src})", xaxis_title="token difficulty (per-token FVU share, decile means)",
                          xaxis_type="log", yaxis_title="mean active features (L0)", height=400)
        return fig


@torch.no_grad()
def _per_token(sae, batches) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    l0, err, xs = [], [], []
    for x in batches:
        out = sae(x)
        l0.append(out.codes.l0_per_row().float())
        err.append((x - out.x_hat).pow(2).sum(1))
        xs.append(x)
    return torch.cat(l0), torch.cat(err), torch.cat(xs)


def l0_vs_difficulty(run_root: str | Path, hook: str, max_tokens: int = 4096, batch_size: int | None = None,
                     n_bins: int = 10) -> L0Difficulty:
    """Compute ``L0Difficulty`` on the first ``max_tokens`` held-out tokens at ``hook`` (corpus order,
    batches of the run's SAE batch size so FC / MC batch mode sees what evaluation saw)."""
    from superscope.activations import load_activations
    from superscope.saes import load_sae

    run = RunFolder(Path(run_root))
    archs = sorted((a for h, a, _ in run.sae_folders() if h == hook), key=arch_key)
    if not archs:
        raise FileNotFoundError(f"no SAEs at {hook} in {run.root / 'saes'}")
    held = load_activations(run.heldout(hook))
    per: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    denom = None
    for arch in archs:
        sae = load_sae(run.sae(hook, arch)).eval()
        bs = batch_size or int((sae.cfg.to_dict().get("training") or {}).get("batch_size") or 4096)
        modes = ["batch", "threshold"] if sae.batch_dependent else ["batch"]
        for mode in modes:
            sae.cfg.inference_mode = mode
            batches = _limit(held.batches(bs, shuffle=False), max_tokens)
            l0, err, x = _per_token(sae, batches)
            if denom is None:
                denom = float((x.double() - x.double().mean(0)).pow(2).sum(1).mean())
            label = arch_label(arch) + (f" ({mode})" if sae.batch_dependent else "")
            per[label] = (l0, err / denom)
    source = archs[0]  # TopK when the hook has one (archs are sorted TopK first)
    difficulty = next(iter(per.values()))[1]
    n = min(v[0].numel() for v in per.values())
    d = difficulty[:n]
    bins = [b for b in torch.tensor_split(torch.argsort(d), n_bins) if b.numel()]
    l0_by_bin, rho, fvu = {}, {}, {}
    for label, (l0, err) in per.items():
        l0 = l0[:n]
        l0_by_bin[label] = [float(l0[b].mean()) for b in bins]
        r = float(spearmanr(l0.numpy(), d.numpy()).statistic) if float(l0.std()) > 0 else float("nan")
        rho[label] = None if math.isnan(r) else r
        fvu[label] = float(err[:n].mean())
    return L0Difficulty(hook, source, n, tuple(float(d[b].mean()) for b in bins), l0_by_bin, rho, fvu)


def _limit(batches, max_tokens: int):
    seen = 0
    for x in batches:
        if seen >= max_tokens:
            return
        x = x[: max_tokens - seen]
        seen += x.shape[0]
        yield x


# ---- precomputed results in the run folder (the dashboard's first load reads them) -------------------

DASHBOARD_TOKENS = 2048
"""Held-out tokens the dashboard's SAE comparison page encodes by default (the precompute step's size)."""
DASHBOARD_TOKEN_OPTIONS = (512, 1024, 2048, 4096, 8192)


def precomputed_path(run_root: str | Path, hook: str, max_tokens: int) -> Path:
    """``<run>/cache/difficulty/<hook>/<max_tokens>.json``."""
    return Path(run_root) / CACHE_DIR / "difficulty" / hook / f"{int(max_tokens)}.json"


def inputs_signature(run_root: str | Path, hook: str) -> dict[str, int]:
    """What the result depends on: size and modification time (ns) of each SAE's weights and of the
    held-out manifest at ``hook``. A precomputed result with another signature is stale."""
    run = RunFolder(Path(run_root))
    files = [p / "sae.safetensors" for h, _, p in run.sae_folders() if h == hook]
    files.append(run.heldout(hook) / "manifest.json")
    return run.files_signature(files)


def save_precomputed(run_root: str | Path, res: L0Difficulty, max_tokens: int) -> Path:
    """Write ``res`` (computed on ``max_tokens`` tokens) with its inputs' signature, atomically."""
    from superscope.saes.atomic_io import write_json

    return write_json(precomputed_path(run_root, res.hook, max_tokens),
                      {"signature": inputs_signature(run_root, res.hook), "max_tokens": int(max_tokens),
                       "result": res.to_dict()})


def load_precomputed(run_root: str | Path, hook: str, max_tokens: int) -> L0Difficulty | None:
    """The precomputed result for (hook, max_tokens), or None when absent, unreadable or stale."""
    import json

    path = precomputed_path(run_root, hook, max_tokens)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("signature") != inputs_signature(run_root, hook) or not isinstance(saved.get("result"), dict):
        return None
    d = saved["result"]
    try:
        return L0Difficulty(**{k: tuple(v) if k == "bin_difficulty" else v for k, v in d.items()})
    except TypeError:
        return None


def cached_l0_vs_difficulty(run_root: str | Path, hook: str, max_tokens: int = 4096) -> L0Difficulty:
    """``l0_vs_difficulty``, read from the run's cache when a fresh result is there."""
    return load_precomputed(run_root, hook, max_tokens) or l0_vs_difficulty(run_root, hook, max_tokens=max_tokens)
