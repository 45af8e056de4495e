"""Scaling under superposition: the toy model of Liu, Liu, Gore 2025 (specs/probes.md §4).

Data: x_i = Bernoulli(p_i) · U(0, 2), i = 1…n, with feature frequencies p_i from a law (power
p_i ∝ i^(−α), exponential, linear) normalised so Σ p_i = 1. Model: y = ReLU(W Wᵀ x + b),
W ∈ R^{n×m} (row W_i embeds feature i in m hidden dimensions), loss ‖y − x‖².

Superposition knob: a weight decay γ on W's rows only (the paper's signed AdamW decay, as in the
public reference liuyz0/SuperpositionScaling `exp/adamw.py`), applied after each Adam step with the
current learning rate η:
    γ ≥ 0:  W ← (1 − ηγ) W                           ordinary decay → weak superposition
    γ < 0:  W_i ← W_i + ηγ (1 − 1/‖W_i‖) W_i         pulls every row norm towards 1 → strong
Measures: φ = share of rows with ‖W_i‖ > 1/2 (features represented); mean squared overlap
⟨(Ŵ_i·Ŵ_j)²⟩ over pairs of represented, normalised rows (≈ 1/m under strong superposition); the
loss exponent α_m of L ∝ m^(−α_m), fitted on log-log axes. Paper: weak regime α_m ≈ α − 1; strong
regime α_m ≈ 1 across frequency laws.

Training recipe (short CPU runs; the reference trains 20k–40k steps on bigger batches):
- learning rates of the reference's large-model script (exp-17): lr_W = 0.02·(8/m)^¼, lr_b = 2/m,
  linear warm-up and cosine decay to 5 %; Adam. W ~ N(0, 1/m) as in the reference, b = 0 (the
  reference draws b ~ N(0, 1), which converges much more slowly in short runs).
- weak regime: under Adam a coordinate moves by ~lr per step whatever its gradient's size, while a
  unit row has coordinates ~1/√m, so a fixed decay γ prunes small widths harder than large ones
  and the represented count grows faster than m. With `decay_width_scaling` a decay γ ≥ 0 acts as
  γ·√(m/8), which makes the pruning threshold width independent (a project choice, not the paper's).
Several widths (and decays) are trained at once on the same data stream (common random numbers:
all widths see identical batches, which makes the fitted exponent less noisy). Batches are sampled
sparsely and gradients written by hand (probes/_scaling_math.py, checked against autograd against
the plain loss), ~3x faster than autograd on dense batches.

Letters: B samples in a batch, n features, m hidden width.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import plotly.graph_objects as go
import torch
from torch import Tensor
from tqdm.auto import tqdm

from superscope.kernels.threads import torch_threads
from superscope.saes.result_repr import Headline, ResultRepr

from ._scaling_math import loss_and_grads, poisson_rates, reference_loss, sample_sparse
from .estimators import PowerLawFit, fit_power_law
from .result_files import json_safe


@dataclass
class ScalingToyConfig:
    """One frequency law, several widths and decays, trained together on one data stream."""

    n_features: int = 2000  # n, number of features (rows of W)
    widths: tuple[int, ...] = (12, 16, 24, 32, 48, 64)  # hidden widths m to train
    gammas: tuple[float, ...] = (-1.0, 1.0)  # row decays γ trained at every width (<0 strong, ≥0 weak)
    law: Literal["power", "exponential", "linear"] = "power"  # feature-frequency law
    alpha: float = 1.5  # power law exponent: p_i ∝ i^(−α)
    scale: float = 400.0  # exponential law: p_i ∝ exp(−(i − 1) / scale)
    steps: int = 1000  # Adam steps
    batch_size: int = 512  # B
    lr: float = 0.02  # peak learning rate of W (at m = 8 when width_scaled_lr)
    width_scaled_lr: bool = True  # reference exp-17: lr_W = lr·(8/m)^¼, lr_b = bias_lr/m; False: lr for both
    bias_lr: float = 2.0  # numerator of the bias learning rate bias_lr/m (reference exp-17: 2)
    decay_width_scaling: bool = True  # γ ≥ 0 acts as γ·√(m/8): a width-independent pruning threshold (below)
    warmup: float = 0.05  # warm-up fraction of the steps (linear), then cosine decay to 5 %
    eval_samples: int = 32768  # fresh samples for the final loss (the same samples for every width)
    seed: int = 0  # data and initialisation seed
    threads: int | None = 1  # torch threads while training (None: leave as is); one thread avoids the
    #   fork-join cost of many small products, which dominates on a busy machine

    def __post_init__(self):
        if self.n_features < 2 or not self.widths or min(self.widths) < 1:
            raise ValueError("need n_features >= 2 and at least one width >= 1")
        if len(set(self.widths)) < 3:
            raise ValueError(f"fitting the loss exponent needs at least 3 distinct widths, got {self.widths}")
        if self.law not in ("power", "exponential", "linear"):
            raise ValueError(f"law must be 'power', 'exponential' or 'linear', got {self.law!r}")
        if self.law == "power" and self.alpha <= 0:
            raise ValueError(f"the power law needs alpha > 0, got {self.alpha}")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.bias_lr <= 0 or not 0 <= self.warmup < 1:
            raise ValueError("steps, batch_size, lr and bias_lr must be positive and warmup in [0, 1)")
        self.widths = tuple(int(m) for m in self.widths)
        self.gammas = tuple(float(g) for g in self.gammas)

    def lrs(self, m: int) -> tuple[float, float]:
        """Peak learning rates (W, b) at width m."""
        if self.width_scaled_lr:
            return self.lr * (8 / m) ** 0.25, self.bias_lr / m
        return self.lr, self.lr

    def decay(self, gamma: float, m: int) -> float:
        """The decay coefficient applied at width m (see the module docstring)."""
        return gamma * math.sqrt(m / 8) if (gamma >= 0 and self.decay_width_scaling) else gamma

    def law_name(self) -> str:
        return {"power": f"power α={self.alpha:g}", "exponential": f"exponential scale={self.scale:g}",
                "linear": "linear"}[self.law]


def feature_probs(cfg: ScalingToyConfig) -> Tensor:
    """p_i, i = 1…n, normalised to Σ p_i = 1 (float64)."""
    i = torch.arange(1, cfg.n_features + 1, dtype=torch.float64)
    if cfg.law == "power":
        p = i ** (-cfg.alpha)
    elif cfg.law == "exponential":
        p = torch.exp(-(i - 1) / cfg.scale)
    else:
        p = (cfg.n_features - i + 1) / cfg.n_features
    return p / p.sum()


def sample(p: np.ndarray, n_samples: int, rng: np.random.Generator) -> Tensor:
    """A dense batch x [B, n] = Bernoulli(p) · U(0, 2) (for evaluation and tests)."""
    return sample_sparse(poisson_rates(p), n_samples, rng).dense(p.size)


def signed_row_decay_(W_nm: Tensor, gamma: float, lr: float, eps: float = 1e-8) -> None:
    """The paper's decay on W's rows, in place (see module docstring)."""
    if gamma >= 0:
        W_nm.mul_(1 - lr * gamma)
    else:
        norms_n1 = W_nm.norm(dim=1, keepdim=True).add_(eps)
        W_nm.add_(W_nm * (1 - 1 / norms_n1), alpha=lr * gamma)


def lr_factor(step: int, cfg: ScalingToyConfig) -> float:
    """Schedule multiplier: linear warm-up, then cosine decay to 5 %."""
    warm = max(1, int(cfg.warmup * cfg.steps))
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))


toy_loss = reference_loss  # mean over the batch of ‖ReLU(W Wᵀ x + b) − x‖², plain autograd ops


def row_stats(W_nm: Tensor) -> tuple[float, float | None]:
    """(φ = share of rows with norm > 1/2, mean squared overlap of the represented normalised rows)."""
    norms = W_nm.norm(dim=1)
    rep = norms > 0.5
    phi = float(rep.float().mean())
    if int(rep.sum()) < 2:
        return phi, None
    U = W_nm[rep] / norms[rep, None]
    G = (U @ U.T) ** 2
    k = U.shape[0]
    return phi, float((G.sum() - G.diagonal().sum()) / (k * (k - 1)))


@dataclass(frozen=True, repr=False)
class ScalingToyResult(ResultRepr):
    """Final losses and row statistics per (γ, m), and the fitted loss exponent per γ."""

    config: dict  # the ScalingToyConfig
    law: str  # readable frequency law
    widths: tuple[int, ...]  # m
    gammas: tuple[float, ...]  # γ
    loss: dict  # {γ: [eval loss per width]}
    phi: dict  # {γ: [φ per width]}
    overlap: dict  # {γ: [mean squared overlap per width]}
    fits: dict  # {γ: PowerLawFit of loss vs m as a dict; alpha_m = −slope}
    alpha_m: dict  # {γ: (α_m, ci_low, ci_high)}
    curves: dict = field(default_factory=dict)  # {γ: {m: training-loss curve, every 1 % of steps}}

    def to_dict(self) -> dict:
        return json_safe({k: getattr(self, k) for k in self.__dataclass_fields__})

    def headline(self) -> list[Headline]:
        widths = f"{min(self.widths):,}–{max(self.widths):,} ({len(self.widths)})" if self.widths else "—"
        return [("law", self.law, "text"), ("widths m", widths, "text"),
                *((f"α_m (γ={g:g})", tuple(self.alpha_m[g]), "ci") for g in self.gammas)]

    def figure(self) -> go.Figure:
        """Loss vs width on log-log axes, one series per γ, with the fitted power law."""
        fig = go.Figure()
        m = np.asarray(self.widths, dtype=float)
        for g in self.gammas:
            a, lo, hi = self.alpha_m[g]
            fig.add_scatter(x=m, y=self.loss[g], mode="markers", name=f"γ={g:g} (α_m={a:.2f} [{lo:.2f}, {hi:.2f}])")
            fit = self.fits[g]
            fig.add_scatter(x=m, y=np.exp(fit["intercept"]) * m ** fit["slope"], mode="lines", showlegend=False)
        fig.update_layout(title=f"Toy scaling, {self.law}", xaxis_type="log", yaxis_type="log",
                          xaxis_title="width m", yaxis_title="loss ‖y − x‖²")
        return fig


def scaling_toy(cfg: ScalingToyConfig, progress: bool = True) -> ScalingToyResult:
    """Train every (γ, m) of `cfg` on one data stream and fit L ∝ m^(−α_m) per γ."""
    with torch_threads(cfg.threads):
        return _train(cfg, progress)


def _train(cfg: ScalingToyConfig, progress: bool) -> ScalingToyResult:
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    p = feature_probs(cfg).numpy()
    lam = poisson_rates(p)
    keys = [(g, m) for g in cfg.gammas for m in cfg.widths]
    Ws = [torch.nn.Parameter(torch.randn(cfg.n_features, m, generator=gen) / math.sqrt(m)) for _, m in keys]
    bs = [torch.nn.Parameter(torch.zeros(cfg.n_features)) for _ in keys]
    groups = []
    for (_, m), W, b in zip(keys, Ws, bs):
        lr_w, lr_b = cfg.lrs(m)
        groups += [{"params": [W], "lr": lr_w, "peak": lr_w}, {"params": [b], "lr": lr_b, "peak": lr_b}]
    opt = torch.optim.Adam(groups)
    every = max(1, cfg.steps // 100)
    curves = {k: [] for k in keys}
    for step in tqdm(range(cfg.steps), desc=f"scaling toy {cfg.law_name()}", disable=not progress, leave=False):
        f = lr_factor(step, cfg)
        for group in opt.param_groups:
            group["lr"] = group["peak"] * f
        x = sample_sparse(lam, cfg.batch_size, rng)
        with torch.no_grad():
            for k, W, b in zip(keys, Ws, bs):
                loss, W.grad, b.grad = loss_and_grads(W, b, x)
                if step % every == 0:
                    curves[k].append(loss)
        opt.step()
        with torch.no_grad():
            for (g, m), W in zip(keys, Ws):
                signed_row_decay_(W, cfg.decay(g, m), cfg.lrs(m)[0] * f)
    return _summarise(cfg, keys, Ws, bs, p, curves)


@torch.no_grad()
def _summarise(cfg, keys, Ws, bs, p, curves) -> ScalingToyResult:
    rng = np.random.default_rng(cfg.seed + 10_000)
    lam = poisson_rates(p)
    x_eval = [sample_sparse(lam, min(8192, cfg.eval_samples), rng) for _ in range(max(1, cfg.eval_samples // 8192))]
    loss, phi, overlap, fits, alpha_m, curve_out = {}, {}, {}, {}, {}, {}
    for g in cfg.gammas:
        loss[g], phi[g], overlap[g], curve_out[g] = [], [], [], {}
        for m in cfg.widths:
            i = keys.index((g, m))
            loss[g].append(float(np.mean([loss_and_grads(Ws[i], bs[i], x)[0] for x in x_eval])))
            f, o = row_stats(Ws[i])
            phi[g].append(f)
            overlap[g].append(o)
            curve_out[g][m] = curves[(g, m)]
        fit: PowerLawFit = fit_power_law(cfg.widths, loss[g])
        fits[g] = fit.to_dict()
        alpha_m[g] = (-fit.slope, -fit.ci_high, -fit.ci_low)
    return ScalingToyResult(asdict(cfg), cfg.law_name(), cfg.widths, cfg.gammas, loss, phi, overlap, fits,
                            alpha_m, curve_out)
