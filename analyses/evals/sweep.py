"""L0 sweeps and Pareto plots (SAEBench's main figure, Karvonen et al. 2025, arXiv 2503.09532, Fig. 1):
each architecture trained at k ∈ {8, 16, 32, 64, 128} on the run's cached activations of one hook (the
main layer), every SAE evaluated by the suite, and each metric plotted against L0 — one line per
architecture, one point per k.

    runs/<run>/evals/sweep/<hook>/<arch>_k<k>/            cfg.json, sae.safetensors (saes.train)
    runs/<run>/evals/sweep/<hook>/<arch>_k<k>/features/   its feature data (what autointerp explains from)
    runs/<run>/evals/sweep/<hook>/<arch>_k<k>/<metric>.json   the suite's results

Budget (2 CPU cores): ``train_tokens`` = 160k tokens per SAE by default, the run's layer-sweep budget
(a quarter of the main SAEs' 640k, which took 48–58 s each at F = 4608, d = 576, k = 32 in
runs/default/saes/*/timing.json: so roughly 15 s per sweep SAE at k = 32, more at k = 128; an estimate,
the sweep itself was not timed on the default run); the SAEs are evaluated with each metric's quick()
configuration plus CE-loss recovered on ``splice_tokens`` held-out tokens. Training resumes (a finished
SAE is skipped), and so does the suite.
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superscope.analyses.evals.suite import SuiteConfig, SuiteReport, load_named_model, run_suite, sae_hook
from superscope.analyses.runs.folder import RunFolder
from superscope.saes.atomic_io import read_json, write_json


@dataclass
class SweepConfig:
    """The L0 sweep: which SAEs are trained, on what budget, and how they are evaluated."""

    ks: tuple[int, ...] = (8, 16, 32, 64, 128)
    """Budgets k (mean active latents per token) trained for every architecture."""
    archs: tuple[str, ...] = ()
    """Architectures (empty: the run's)."""
    hook: str | None = None
    """Hook whose cached training activations are used (None: the run's main hook)."""
    train_tokens: int = 160_000
    """Training tokens per sweep SAE (the short budget that fits 2 cores; the run's main SAEs use 640k)."""
    batch_size: int | None = None
    """Training batch B (None: the run's)."""
    lr: float | None = None
    """Learning rate (None: the run's; if the run has none, the library default)."""
    expansion: int | None = None
    """Width as a multiple of d_in (None: that of the run's SAEs at the hook)."""
    quick: bool = True
    """Evaluate the sweep SAEs with each metric's quick() configuration."""
    splice_tokens: int = 512
    """Held-out tokens for each sweep SAE's CE-loss recovered (0: skip; the model is loaded)."""
    seed: int = 0
    """Seed of the initialisation and the batch order."""

    def __post_init__(self) -> None:
        self.ks, self.archs = tuple(int(k) for k in self.ks), tuple(self.archs)
        if not self.ks or min(self.ks) <= 0:
            raise ValueError(f"ks must be positive budgets, got {list(self.ks)}")
        if self.train_tokens <= 0:
            raise ValueError(f"train_tokens must be positive, got {self.train_tokens}")


def sweep_folder(run_root: Path, hook: str, arch: str, k: int) -> Path:
    return Path(run_root) / "evals" / "sweep" / hook / f"{arch}_k{k}"


def train_sweep(run_root: str | Path, cfg: SweepConfig, log: Callable[[str], None] = print) -> list[Path]:
    """Train every (arch, k) of the sweep on the run's cached activations (saes.train); returns the folders."""
    from superscope.activations import load_activations
    from superscope.saes import SAEConfig, TrainConfig, train
    from superscope.saes.data import epoch_batches

    run = RunFolder(Path(run_root))
    info = run.read()
    rc = info.get("config") or {}
    hook = cfg.hook or info.get("main_hook")
    if not hook:
        raise ValueError(f"{run.root}/run.json names no main hook; pass the sweep's hook")
    acts = run.activations(hook)
    if not (acts / "manifest.json").is_file():
        raise FileNotFoundError(f"no cached training activations at {acts}; the sweep trains on them "
                                "(run the harvest step of `superscope run`, and keep activations/)")
    source = load_activations(acts)
    archs = cfg.archs or tuple(info.get("archs") or ())
    if not archs:
        raise ValueError(f"{run.root}/run.json lists no architectures; pass them")
    expansion = cfg.expansion or _run_expansion(run, hook, source.d)
    batch = cfg.batch_size or int(rc.get("batch_size", 4096))
    folders = []
    for arch in archs:
        for k in cfg.ks:
            folder = sweep_folder(run.root, hook, arch, k)
            folders.append(folder)
            state = folder / "train_state.json"
            if state.is_file() and read_json(state).get("done"):
                continue
            log(f"[sweep] training {arch} k={k} on {cfg.train_tokens:,} tokens of {hook}")
            sae_cfg = SAEConfig(architecture=arch, d_in=source.d, d_sae=expansion * source.d, k=k, hook_name=hook,
                                model_name=str(source.meta.get("model", "")))
            tc = TrainConfig(total_tokens=cfg.train_tokens, batch_size=batch, lr=cfg.lr or rc.get("lr"),
                             aux_loss=rc.get("aux_loss", "auxk"), seed=cfg.seed, progress=False,
                             checkpoint_every_tokens=max(batch, cfg.train_tokens // 2))
            t0 = time.perf_counter()
            train(sae_cfg, epoch_batches(source, batch, cfg.train_tokens, cfg.seed), tc, out_dir=folder)
            write_json(folder / "timing.json", {"train_seconds": time.perf_counter() - t0, "tokens": cfg.train_tokens})
            shutil.rmtree(folder / "checkpoints", ignore_errors=True)  # the final weights supersede them
    return folders


def _run_expansion(run: RunFolder, hook: str, d: int) -> int:
    for h, _, folder in run.sae_folders():
        if h == hook:
            return max(1, int(read_json(folder / "cfg.json")["d_sae"]) // d)
    return 8


def run_sweep(run_root: str | Path, cfg: SweepConfig | None = None, metrics: tuple[str, ...] = (),
              force: bool = False, load_model: Callable[[], Any] | None = None,
              log: Callable[[str], None] = print) -> SuiteReport:
    """Train the sweep (``train_sweep``) and evaluate each SAE with the suite; results beside the weights."""
    from superscope.analyses.evals.core import CoreConfig

    cfg = cfg or SweepConfig()
    run_root = Path(run_root)
    folders = train_sweep(run_root, cfg, log)
    if load_model is None:  # one model for the feature data and the suite
        model_name = (read_json(run_root / "run.json").get("config") or {}).get("model")
        load_model = functools.cache(lambda: load_named_model(model_name, "cpu"))
    if not metrics or "autointerp" in metrics:
        write_sweep_feature_data(run_root, folders, load_model, log)
    core = CoreConfig(splice_tokens=cfg.splice_tokens)
    return run_suite(run_root, SuiteConfig(metrics=metrics, quick=cfg.quick, force=force), saes=folders,
                     out=run_root / "evals" / "sweep", load_model=load_model, overrides={"core": core}, log=log)


def write_sweep_feature_data(run_root: Path, folders: list[Path], load_model: Callable[[], Any],
                             log: Callable[[str], None] = print) -> list[Path]:
    """Feature data (top contexts, bands, logit effects) for the sweep SAEs that lack it, in one pass over
    the hook's held-out activations per hook, into ``<folder>/features/``: autointerp explains each latent
    from it, as it does for the run's own SAEs. Returns the folders written."""
    from superscope.activations import load_activations
    from superscope.analyses.features import feature_data_for_hook
    from superscope.analyses.features.storage import write_feature_folder
    from superscope.saes import load_sae

    run = RunFolder(Path(run_root))
    todo: dict[str, list[Path]] = {}
    for folder in folders:
        if not (folder / "features" / "index.json").is_file():
            todo.setdefault(sae_hook(folder), []).append(folder)
    if not todo:
        return []
    model = load_model()
    written = []
    for hook, hook_folders in todo.items():
        log(f"[sweep] feature data for {len(hook_folders)} sweep SAEs at {hook}")
        saes = {folder.name: load_sae(folder) for folder in hook_folders}
        by_name = {folder.name: folder for folder in hook_folders}
        for name, (arrays, index, strings) in feature_data_for_hook(load_activations(run.heldout(hook)), saes,
                                                                   model).items():
            write_feature_folder(by_name[name] / "features", arrays, index, strings)
            written.append(by_name[name])
    return written


def pareto_figure(points: list[dict], metric: str, hook: str | None = None):
    """``metric`` (a key of analyses.runs.evals.PARETO) against L0, one line per architecture, one point
    per k (points from ``EvalsData.sweep_points()``; those of ``hook``, default the first hook)."""
    import plotly.graph_objects as go

    from superscope.analyses.runs.evals import PARETO
    from superscope.saes.registry import arch_color, arch_label

    if metric not in PARETO:
        raise ValueError(f"unknown Pareto metric {metric!r}; choose from {sorted(PARETO)}")
    title = PARETO[metric][2]
    hook = hook or (points[0]["hook"] if points else None)
    fig = go.Figure()
    for arch in dict.fromkeys(p["arch"] for p in points if p["hook"] == hook):
        pts = sorted((p for p in points if p["hook"] == hook and p["arch"] == arch and p.get(metric) is not None),
                     key=lambda p: p["l0"])
        if not pts:
            continue
        fig.add_trace(go.Scatter(x=[p["l0"] for p in pts], y=[p[metric] for p in pts], mode="lines+markers+text",
                                 name=arch_label(arch), text=[f"k={p['k']}" for p in pts], textposition="top center",
                                 line=dict(color=arch_color(arch)), marker=dict(color=arch_color(arch), size=8)))
    fig.update_layout(title=f"{title} vs L0 ({hook})", xaxis_title="L0 (mean active latents per token)",
                      yaxis_title=title, xaxis_type="log", height=380, margin=dict(t=50, b=40, l=60, r=20))
    return fig
