"""Validate the effective-features measure on toy models of superposition (Bereska et al. 2025; specs/probes.md §1).

Toy (Elhage et al. 2022): F features f_i ~ U[0, 1] with probability 1 − S (else 0), importance
imp_i = 0.7^i, N neurons: h = W f, f' = ReLU(Wᵀ h + b), loss Σ_i imp_i (f_i − f'_i)². One toy per
sparsity S (1 − S log-spaced over [0.001, 0.999]), all trained at once as a batch of instances.
Ground truth: ψ_true = ‖W‖_F² / N (≈ number of features represented per neuron).
Measure: SAEs (8× width: d_sae = 8N) trained on each toy's hidden activations h, then
ψ = F_eff / N with F_eff = exp(H) of the SAE's activation-mass distribution (probes/superposition_entropy.py).
Claim: Pearson r(ψ, ψ_true) = 0.94 ± 0.02 in the paper.

Method (the paper's SAE family; analyses/toys/sae.py): a ReLU SAE with an L1 penalty λ Σ z on the
codes, unit-norm decoder rows, no decoder bias, λ = 0.1, 4000 Adam steps of 1024 samples; R = 3 SAEs
per toy (different initialisations), ψ their mean, as the paper's public code averages its feature
counts over 3 SAE seeds. The registry variants remain available (`--archs topk batchtopk --k 1`).

Measured results (r on fresh seeds, λ and steps chosen on other seeds), their commands and the
exploratory findings behind the method: docs/toy_validation.md and benchmarks/results/toy_superposition*.json.

Samples where every feature is zero (most samples at S → 1) carry no feature and, under an ideal SAE,
no mass; the SAEs are trained and measured on the non-empty samples only (drawn exactly from the
conditional distribution), so the very sparse toys are not starved of signal.

    superscope probe toy-validation [--preset quick | small] [--seeds 3 4 5] [--out PATH]
    superscope probe toy-validation --select-seeds 0 --l1-grid 0.03 0.1 0.3 \
        --steps-grid 2000 4000 --seeds 3 4 5 --out benchmarks/results/toy_superposition.json
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from scipy import stats
from tqdm.auto import tqdm

from superscope.analyses.toys.data import feature_batches, hidden_batches, sample_features
from superscope.kernels.threads import torch_threads
from superscope.probes.result_files import json_safe
from superscope.probes.superposition_entropy import effective_features

PAPER_R = (0.94, 0.02)  # Bereska et al. 2025: Pearson r between SAE ψ and ground truth, mean ± sd


@dataclass
class ToyValidationConfig:
    """The toy sweep and the SAE trained on each toy (letters: F features, N neurons, I toys)."""

    n_features: int = 20  # F
    n_neurons: int = 5  # N
    importance_decay: float = 0.7  # imp_i = decay^i
    n_sparsities: int = 16  # I toys, 1 − S log-spaced over [density_min, density_max]
    density_min: float = 0.001  # smallest 1 − S (S = 0.999)
    density_max: float = 0.999  # largest 1 − S (S = 0.001)
    toy_steps: int = 4000  # Adam steps for the toys
    toy_batch: int = 1024  # samples per toy step
    toy_lr: float = 3e-3  # Adam learning rate (cosine decay to 10 %)
    sae_archs: tuple[str, ...] = ("l1",)  # SAE variants: "l1" (the paper's, analyses/toys/sae.py) or registry names
    sae_l1_coef: float = 0.1  # λ of the L1 SAE (codes in activation units: unit-norm decoder rows)
    sae_lr: float = 3e-3  # Adam learning rate of the L1 SAE
    sae_inits: int = 3  # SAEs per toy (different initialisations); ψ is their mean (as the paper's code does)
    sae_k: int = 1  # registry variants: k (per token for topk, mean per token for batch-level variants)
    sae_expansion: int = 8  # d_sae = expansion · N
    sae_aux_loss: str = "none"  # registry variants: auxiliary loss "none" (AuxK would force unneeded latents into use), "auxk", "zipf"
    sae_tokens: int = 4_096_000  # L1 SAE training samples (non-empty) per SAE (4000 steps of 1024, chosen on seed 0)
    registry_tokens: int = 150_000  # registry variants: training samples per SAE (trained one at a time, slower)
    sae_batch: int = 1024  # SAE batch size
    eval_tokens: int = 65_536  # fresh non-empty samples for F_eff
    seed: int = 0  # seed of the toys, the data and the SAEs
    threads: int | None = 1  # torch threads (tiny matrices: one thread avoids fork-join overhead)

    def __post_init__(self):
        if not 0 < self.density_min < self.density_max <= 1:
            raise ValueError("need 0 < density_min < density_max <= 1")
        if self.n_sparsities < 3:
            raise ValueError("a correlation needs at least 3 sparsities")
        if self.n_neurons >= self.n_features or self.n_neurons < 1:
            raise ValueError("need 1 <= n_neurons < n_features for superposition to be possible")
        self.sae_archs = tuple(self.sae_archs)
        if self.sae_inits < 1 or self.sae_l1_coef < 0 or min(self.sae_tokens, self.registry_tokens) < self.sae_batch:
            raise ValueError("need sae_inits >= 1, sae_l1_coef >= 0 and sae_tokens, registry_tokens >= sae_batch")

    def densities(self) -> np.ndarray:
        """1 − S of each toy."""
        return np.geomspace(self.density_min, self.density_max, self.n_sparsities)

    @classmethod
    def quick(cls) -> ToyValidationConfig:
        return cls(n_sparsities=6, toy_steps=1500, sae_tokens=1_024_000, sae_inits=2, eval_tokens=16_384)

    @classmethod
    def small(cls) -> ToyValidationConfig:
        """The toy of the quick test (tests/analyses/toys/test_toy_superposition.py): 8 sparsities, short runs.
        λ = 0.3 and 600 SAE steps were chosen by `select_then_report` on seeds 10, 11, 12 from λ ∈ {0.1, 0.3,
        1} × {600, 1200} steps; fresh seeds 20, 21, 22 then gave r = 0.836, 0.827, 0.888
        (benchmarks/results/toy_superposition_small.json)."""
        return cls(n_sparsities=8, toy_steps=800, toy_batch=512, sae_batch=512, sae_l1_coef=0.3,
                   sae_tokens=600 * 512, sae_inits=2, eval_tokens=16_384)


def train_toys(cfg: ToyValidationConfig, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Train one toy per sparsity at once: W [I, N, F], b [I, F]."""
    with torch_threads(cfg.threads):
        return _train_toys(cfg, progress)


def _train_toys(cfg: ToyValidationConfig, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    dens = cfg.densities()
    I, N, F = dens.size, cfg.n_neurons, cfg.n_features
    W = torch.nn.Parameter(torch.randn(I, N, F, generator=gen) * (2 / (N + F)) ** 0.5)  # Xavier normal
    b = torch.nn.Parameter(torch.zeros(I, F))
    imp_F = torch.tensor(cfg.importance_decay ** np.arange(F), dtype=torch.float32)
    opt = torch.optim.Adam([W, b], lr=cfg.toy_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.toy_steps, eta_min=cfg.toy_lr / 10)
    for _ in tqdm(range(cfg.toy_steps), desc="toy models", disable=not progress, leave=False):
        f_IBF = torch.from_numpy(sample_features(dens, cfg.toy_batch, F, rng, nonempty=False))
        h_IBN = torch.einsum("ibf,inf->ibn", f_IBF, W)
        out_IBF = torch.relu(torch.einsum("ibn,inf->ibf", h_IBN, W) + b[:, None])
        loss = (imp_F * (f_IBF - out_IBF) ** 2).sum(-1).mean(-1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return W.detach(), b.detach()


@dataclass(frozen=True)
class ToyValidation:
    """ψ from the SAE vs ψ_true over the sparsity sweep, per SAE variant."""

    densities: tuple[float, ...]  # 1 − S of each toy
    psi_true: tuple[float, ...]  # ‖W‖_F² / N
    psi_sae: dict  # {arch: [F_eff / N per toy, mean over the toy's SAE initialisations]}
    psi_sae_inits: dict  # {arch: [[F_eff / N of each initialisation] per toy]}
    f_eff_ci: dict  # {arch: [[lo, hi] 95 % bootstrap CI of F_eff per toy]} (L1: of the mean over inits)
    fvu: dict  # {arch: [fraction of variance unexplained per toy, mean over inits] or None}
    pearson_r: dict  # {arch: r}
    pearson_ci: dict  # {arch: [lo, hi]} (Fisher z, 95 %)
    paper_r: tuple[float, float]  # (0.94, 0.02)
    config: dict  # ToyValidationConfig
    seconds: float  # wall time

    def to_dict(self) -> dict:
        return json_safe({k: getattr(self, k) for k in self.__dataclass_fields__})

    def figure(self) -> go.Figure:
        fig = make_subplots(rows=1, cols=2, subplot_titles=("ψ (SAE) vs ψ_true", "ψ vs feature density 1 − S"))
        top = max(max(self.psi_true), *(max(v) for v in self.psi_sae.values()))
        fig.add_scatter(x=[0, top], y=[0, top], mode="lines", line_dash="dot", name="y = x", row=1, col=1)
        for arch, psi in self.psi_sae.items():
            fig.add_scatter(x=list(self.psi_true), y=psi, mode="markers", name=f"{arch} (r = {self.pearson_r[arch]:.3f})",
                            text=[f"1−S={d:.3g}" for d in self.densities], row=1, col=1)
            fig.add_scatter(x=list(self.densities), y=psi, mode="lines+markers", name=f"ψ {arch}", row=1, col=2)
        fig.add_scatter(x=list(self.densities), y=list(self.psi_true), mode="lines+markers", name="ψ_true", row=1, col=2)
        fig.update_xaxes(title_text="ψ_true = ‖W‖²/N", row=1, col=1)
        fig.update_yaxes(title_text="ψ = F_eff / N", row=1, col=1)
        fig.update_xaxes(type="log", title_text="1 − S", row=1, col=2)
        fig.update_layout(title=f"Effective features on toy models (paper r = {self.paper_r[0]} ± {self.paper_r[1]})")
        return fig


def _run_l1(cfg: ToyValidationConfig, W: torch.Tensor, dens: np.ndarray, progress: bool):
    """ψ [I, R], F_eff CI [I, 2] and FVU [I, R] of the batched L1 SAEs (analyses/toys/sae.py)."""
    from superscope.analyses.toys.sae import measure_effective_features, train_l1_saes

    F, D = cfg.n_features, cfg.sae_expansion * cfg.n_neurons
    saes = train_l1_saes(W, feature_batches(dens, cfg.sae_batch, F, cfg.seed + 1), d_sae=D, l1_coef=cfg.sae_l1_coef,
                         steps=cfg.sae_tokens // cfg.sae_batch, lr=cfg.sae_lr, n_inits=cfg.sae_inits,
                         seed=cfg.seed + 2, progress=progress)
    n_eval = max(1, cfg.eval_tokens // 4096)
    return measure_effective_features(saes, W, feature_batches(dens, 4096, F, cfg.seed + 10_000), n_eval, seed=cfg.seed)


def _run_registry(cfg: ToyValidationConfig, arch: str, W: torch.Tensor, dens: np.ndarray, progress: bool):
    """ψ [I, R] and F_eff CI [I, 2] (of the first initialisation) of superscope-registry SAEs, one toy at a time."""
    from superscope.saes import SAEConfig, TrainConfig, train

    N, F, I, R = cfg.n_neurons, cfg.n_features, dens.size, cfg.sae_inits
    psi, ci = np.zeros((I, R)), np.full((I, 2), np.nan)
    for i, r in tqdm([(i, r) for i in range(I) for r in range(R)], desc=f"{arch} SAEs", disable=not progress, leave=False):
        sae_cfg = SAEConfig(architecture=arch, d_in=N, d_sae=cfg.sae_expansion * N, k=cfg.sae_k)
        tcfg = TrainConfig(total_tokens=cfg.registry_tokens, batch_size=cfg.sae_batch, seed=cfg.seed + 2 + 1000 * r,
                           progress=False, aux_loss=cfg.sae_aux_loss)
        data = hidden_batches(W[i], dens[i], cfg.registry_tokens, cfg.sae_batch, F, cfg.seed + 1 + i)
        sae = train(sae_cfg, data, tcfg)
        sae.eval()
        ef = effective_features(sae, hidden_batches(W[i], dens[i], cfg.eval_tokens, 4096, F, cfg.seed + 10_000 + i),
                                n_neurons=N, seed=cfg.seed)
        psi[i, r] = ef.psi
        if r == 0 and ef.f_eff_ci:
            ci[i] = ef.f_eff_ci
    return psi, ci, None


def _pearson(psi_true, psi) -> tuple[float, list[float]]:
    """Pearson r and its 95 % Fisher-z interval."""
    res = stats.pearsonr(np.asarray(psi_true), np.asarray(psi))
    ci = res.confidence_interval(0.95)
    return float(res.statistic), [float(ci.low), float(ci.high)]


def run_toy_validation(cfg: ToyValidationConfig, progress: bool = True) -> ToyValidation:
    """Train the toys, the SAEs of each toy and variant, and correlate ψ (mean over inits) with ψ_true."""
    start = time.perf_counter()
    psi_sae, inits, cis, fvus = {}, {}, {}, {}
    with torch_threads(cfg.threads):
        W, _ = train_toys(cfg, progress)
        dens = cfg.densities()
        psi_true = ((W ** 2).sum((1, 2)) / cfg.n_neurons).numpy()
        for arch in cfg.sae_archs:
            run = _run_l1 if arch == "l1" else (lambda *a, arch=arch: _run_registry(cfg, arch, *a[1:]))
            psi_IR, ci, fvu = run(cfg, W, dens, progress)
            psi_sae[arch], inits[arch], cis[arch] = psi_IR.mean(1).tolist(), psi_IR.tolist(), ci.tolist()
            fvus[arch] = fvu.mean(1).tolist() if fvu is not None else None
    r, r_ci = {}, {}
    for arch, psi in psi_sae.items():
        r[arch], r_ci[arch] = _pearson(psi_true, psi)
    return ToyValidation(tuple(float(d) for d in dens), tuple(float(p) for p in psi_true), psi_sae, inits, cis, fvus,
                         r, r_ci, PAPER_R, asdict(cfg), time.perf_counter() - start)


@dataclass(frozen=True)
class ToySelection:
    """The L1 SAE's λ and step count chosen on selection seeds, then r measured on fresh report seeds."""

    selection_seeds: tuple[int, ...]  # seeds whose toys and SAEs chose λ and steps (not reported)
    report_seeds: tuple[int, ...]  # fresh seeds, run once with the chosen λ and steps
    grid: tuple[dict, ...]  # {seed, l1_coef, steps, r} for every selection run
    chosen: dict  # {l1_coef, steps, mean_r}: the best mean r over the selection seeds
    r_report: tuple[float, ...]  # Pearson r per report seed
    r_mean: float  # mean of r_report
    r_sd: float | None  # sample sd of r_report (None for one seed)
    report: tuple[ToyValidation, ...]  # the full result per report seed
    seconds: float  # wall time

    def to_dict(self) -> dict:
        return json_safe({k: getattr(self, k) for k in self.__dataclass_fields__ if k != "report"}
                         | {"report": [r.to_dict() for r in self.report]})


def select_then_report(base: ToyValidationConfig, l1_grid: tuple[float, ...], steps_grid: tuple[int, ...],
                       selection_seeds: tuple[int, ...], report_seeds: tuple[int, ...],
                       progress: bool = True) -> ToySelection:
    """Choose the L1 SAE's λ and steps by the mean r on `selection_seeds` (each seed's toys are trained
    once and shared by the grid), then run the chosen method once per fresh seed in `report_seeds`."""
    if set(selection_seeds) & set(report_seeds):
        raise ValueError(f"report seeds {report_seeds} must be fresh: not among the selection seeds {selection_seeds}")
    start = time.perf_counter()
    grid = []
    with torch_threads(base.threads):
        for seed in selection_seeds:
            cfg = replace(base, seed=seed, sae_archs=("l1",))
            W, _ = train_toys(cfg, progress)
            psi_true = ((W ** 2).sum((1, 2)) / cfg.n_neurons).numpy()
            for lam in l1_grid:
                for steps in steps_grid:
                    run_cfg = replace(cfg, sae_l1_coef=lam, sae_tokens=steps * cfg.sae_batch)
                    psi_IR, _, _ = _run_l1(run_cfg, W, cfg.densities(), progress)
                    r, _ = _pearson(psi_true, psi_IR.mean(1))
                    grid.append({"seed": seed, "l1_coef": lam, "steps": steps, "r": r})
                    if progress:
                        print(f"selection seed {seed}: λ={lam:g}, {steps} steps: r = {r:.3f}", flush=True)
    mean_r = {(lam, steps): float(np.mean([g["r"] for g in grid if (g["l1_coef"], g["steps"]) == (lam, steps)]))
              for lam in l1_grid for steps in steps_grid}
    lam, steps = max(mean_r, key=mean_r.get)
    chosen = replace(base, sae_archs=("l1",), sae_l1_coef=lam, sae_tokens=steps * base.sae_batch)
    report = tuple(run_toy_validation(replace(chosen, seed=seed), progress) for seed in report_seeds)
    rs = np.array([res.pearson_r["l1"] for res in report])
    return ToySelection(tuple(selection_seeds), tuple(report_seeds), tuple(grid),
                        {"l1_coef": lam, "steps": steps, "mean_r": mean_r[(lam, steps)]}, tuple(rs.tolist()),
                        float(rs.mean()), float(rs.std(ddof=1)) if rs.size > 1 else None, report,
                        time.perf_counter() - start)


@dataclass
class ToyValidationCommand:
    """`superscope probe toy-validation`: ψ from SAEs against ground truth on toy models (Elhage setting)."""

    preset: Literal["default", "quick", "small"] = "default"
    """default: the full sweep; quick: under a minute; small: the quick test's toy (8 sparsities, short runs)."""
    archs: tuple[str, ...] = ()
    """SAE variants to compare (default: the preset's, the L1 SAE), e.g. topk batchtopk."""
    k: int | None = None
    """Registry SAEs: k (default: the preset's)."""
    aux_loss: Literal["none", "auxk", "zipf"] | None = None
    """Registry SAEs: auxiliary loss (default: the preset's)."""
    l1: float | None = None
    """L1 SAE: coefficient λ (default: the preset's)."""
    inits: int | None = None
    """SAEs per toy, ψ is their mean (default: the preset's)."""
    sae_tokens: int | None = None
    """Training samples per SAE (default: the preset's)."""
    seeds: tuple[int, ...] = (0,)
    """One full sweep per seed; r as mean ± sd (with --select-seeds: the fresh seeds r is reported on)."""
    select_seeds: tuple[int, ...] = ()
    """Choose λ (--l1-grid) and steps (--steps-grid) on these seeds, then report r on --seeds."""
    l1_grid: tuple[float, ...] = (0.03, 0.1, 0.3)
    """λ values to select from (with --select-seeds)."""
    steps_grid: tuple[int, ...] = (2000, 4000)
    """SAE step counts to select from (with --select-seeds)."""

    def config(self) -> ToyValidationConfig:
        base = {"default": ToyValidationConfig, "quick": ToyValidationConfig.quick,
                "small": ToyValidationConfig.small}[self.preset]()
        over = {k: v for k, v in (("sae_archs", tuple(self.archs) or None), ("sae_k", self.k),
                                  ("sae_aux_loss", self.aux_loss), ("sae_l1_coef", self.l1),
                                  ("sae_inits", self.inits), ("sae_tokens", self.sae_tokens)) if v is not None}
        return replace(base, **over)


def toy_validation_command(c: ToyValidationCommand) -> dict:
    """Run the validation ``c`` describes, print r per SAE variant and return the JSON payload."""
    cfg = c.config()
    if c.select_seeds:
        sel = select_then_report(cfg, tuple(c.l1_grid), tuple(c.steps_grid), tuple(c.select_seeds), tuple(c.seeds))
        print(f"chosen on seeds {list(sel.selection_seeds)}: λ={sel.chosen['l1_coef']:g}, {sel.chosen['steps']} steps "
              f"(mean r {sel.chosen['mean_r']:.3f}); fresh seeds {list(sel.report_seeds)}: r = {sel.r_mean:.3f}"
              + (f" ± {sel.r_sd:.3f}" if sel.r_sd is not None else "")
              + f" ({', '.join(f'{r:.3f}' for r in sel.r_report)}); {sel.seconds:.0f} s")
        return sel.to_dict()
    results = [run_toy_validation(replace(cfg, seed=seed)) for seed in c.seeds]
    for arch in results[0].pearson_r:
        rs = np.array([res.pearson_r[arch] for res in results])
        spread = f" ± {rs.std(ddof=1):.3f} (sd over {rs.size} seeds: {', '.join(f'{r:.3f}' for r in rs)})" if rs.size > 1 else ""
        knob = f"λ={results[0].config['sae_l1_coef']}" if arch == "l1" else f"k={results[0].config['sae_k']}"
        print(f"{arch:>15} {knob}, {results[0].config['sae_inits']} inits: Pearson r = {rs.mean():.3f}{spread} "
              f"(paper {PAPER_R[0]} ± {PAPER_R[1]})")
    print(f"({sum(res.seconds for res in results):.0f} s)")
    return results[0].to_dict() if len(results) == 1 else {"seeds": list(c.seeds), "runs": [r.to_dict() for r in results]}
