"""SAE and training configurations (dataclasses; the CLI is generated from them).

Every field carries a docstring (read by ``superscope.analyses.cli.options`` for ``--help``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .registry import known_architectures, sae_class

FORMAT_NAME = "superscope.sae"
FORMAT_VERSION = 1

Architecture = Literal["topk", "batchtopk", "mutual_choice", "feature_choice", "matryoshka_topk",
                       "matryoshka_batchtopk", "matryoshka_mutual_choice", "matryoshka_feature_choice",
                       "jumprelu"]
"""The registered names, spelt out for type checkers and ``--help`` (tests/saes/test_arch_facts.py
checks it equals the registry)."""


def default_prefixes(d_sae: int) -> list[int]:
    """[F/16, F/8, F/4, F/2, F] (rounded down; repeated or empty sizes dropped for a small F)."""
    return sorted({d_sae // 2 ** p for p in (4, 3, 2, 1, 0)} - {0})


@dataclass
class SAEConfig:
    """What an SAE is: its architecture, sizes and inference settings. Saved as cfg.json."""

    architecture: Architecture = "topk"
    """Registered variant: topk (Gao et al. 2024), batchtopk (Bussmann et al. 2024), mutual_choice and
    feature_choice (Ayonrinde 2024)."""
    d_in: int = 576
    """Width of the activations (d_model for the residual stream)."""
    d_sae: int = 4608
    """Number of dictionary features F."""
    k: int = 32
    """Mean active features per token; the batch budget is M = k·B."""
    capacity_mode: Literal["uniform", "zipf"] = "uniform"
    """Feature Choice only: per-feature capacities m_f uniform (⌈c·M/F⌉) or Zipf by firing rank."""
    capacity_factor: float = 1.0
    """Feature Choice, uniform mode: capacity factor c ≥ 1 (m_f = ⌈c·M/F⌉)."""
    zipf_exponent: float | None = None
    """Feature Choice, zipf mode: exponent s of m_f ∝ rank^(−s); None fits it on the frequency head."""
    inference_mode: Literal["batch", "threshold"] = "batch"
    """MC/FC/BatchTopK: select within the batch, or use the learned thresholds θ (JumpReLU form)."""
    jumprelu_bandwidth: float = 0.5
    """JumpReLU: bandwidth ε of the rectangle kernel of the straight-through estimator (scaled-input units,
    E‖s·x‖² = d; ε and θ share the scale of pre, where θ starts near 2)."""
    jumprelu_sparsity: Literal["tanh", "l0"] = "tanh"
    """JumpReLU: sparsity loss Σ_f tanh(c·|z_f|·‖W_dec,f‖) (Anthropic 2025) or the plain L0 through the STE."""
    jumprelu_tanh_scale: float = 4.0
    """JumpReLU: c of the tanh sparsity loss tanh(c·z_f·‖W_dec,f‖/√d_in) (z in units of ‖s·x‖ ≈ √d_in)."""
    jumprelu_sparsity_coef: float | None = None
    """JumpReLU: λ of the sparsity loss; None adapts λ so the mean L0 reaches k (L0-target mode)."""
    jumprelu_pre_act_coef: float = 3e-6
    """JumpReLU: λ_p of the pre-activation loss Σ_f ReLU(θ_f − pre_f)·‖W_dec,f‖ on dead latents (0 = off)."""
    jumprelu_ste_to_input: bool = True
    """JumpReLU: the STE also gives the pre-activations (the encoder) gradient, as Anthropic does (False: θ only)."""
    threshold_ema: float = 0.99
    """Decay of the EMA that learns the inference thresholds θ (MC) / θ_f (FC) during training."""
    input_scale: float = 1.0
    """Inputs are multiplied by this before encoding (so E‖x‖² = d_in); set by the trainer."""
    hook_name: str = ""
    """TransformerLens hook the SAE reads (e.g. blocks.12.hook_resid_post); informational."""
    model_name: str = ""
    """Model the activations came from; informational."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Parameter dtype."""
    training: dict[str, Any] = field(default_factory=dict)
    """The TrainConfig it was trained with (filled by the trainer)."""
    matryoshka_prefixes: list[int] | None = None
    """Matryoshka (Bussmann et al. 2025, arXiv 2503.17547), any selection rule: nested prefix sizes
    F_1 < … < F_L = d_sae of the latent order; the training loss is Σ_l w_l·FVU of the reconstruction from
    the same selected codes restricted to the first F_l latents. None: a flat SAE, except the matryoshka_*
    architectures, which default to [F/16, F/8, F/4, F/2, F]."""
    matryoshka_weights: list[float] | None = None
    """Matryoshka: the weights w_l of the prefix losses (None = 1 each, specs/saes.md)."""

    def __post_init__(self) -> None:
        if self.architecture not in known_architectures():
            raise ValueError(
                f"unknown SAE architecture {self.architecture!r}; registered: {', '.join(known_architectures())}"
            )
        if self.d_in <= 0 or self.d_sae <= 0:
            raise ValueError(f"d_in and d_sae must be positive, got d_in={self.d_in}, d_sae={self.d_sae}")
        if not 0 < self.k < self.d_sae:
            raise ValueError(f"k must satisfy 0 < k < d_sae; got k={self.k}, d_sae={self.d_sae}")
        if self.capacity_factor < 1.0:
            raise ValueError(f"capacity_factor must be ≥ 1, got {self.capacity_factor}")
        if not 0.0 <= self.threshold_ema < 1.0:
            raise ValueError(f"threshold_ema must be in [0, 1), got {self.threshold_ema}")
        if not self.jumprelu_bandwidth > 0 or (self.jumprelu_sparsity_coef is not None and self.jumprelu_sparsity_coef < 0):
            raise ValueError("jumprelu_bandwidth must be > 0 and jumprelu_sparsity_coef ≥ 0 (or none for the L0 target)")
        if not (math.isfinite(self.input_scale) and self.input_scale > 0):
            raise ValueError(f"input_scale must be a positive finite number, got {self.input_scale}")
        self.check_matryoshka()

    def check_matryoshka(self) -> None:
        """Fill the default prefixes of a matryoshka_* architecture; check prefixes and weights."""
        if self.matryoshka_prefixes is None and getattr(sae_class(self.architecture), "nested", False):
            self.matryoshka_prefixes = default_prefixes(self.d_sae)
        if self.matryoshka_prefixes is None:
            if self.matryoshka_weights is not None:
                raise ValueError("matryoshka_weights given without matryoshka_prefixes; set both (or neither)")
            return
        ends = self.matryoshka_prefixes = [int(e) for e in self.matryoshka_prefixes]
        if not ends or ends[0] <= 0 or any(b <= a for a, b in zip(ends, ends[1:])) or ends[-1] != self.d_sae:
            raise ValueError(f"matryoshka_prefixes must be strictly increasing positive sizes ending at d_sae="
                             f"{self.d_sae}, got {ends}; e.g. {default_prefixes(self.d_sae)}")
        if self.matryoshka_weights is not None:
            w = self.matryoshka_weights = [float(v) for v in self.matryoshka_weights]
            if len(w) != len(ends) or not all(math.isfinite(v) and v >= 0 for v in w) or not any(w):
                raise ValueError(f"matryoshka_weights must be {len(ends)} non-negative numbers (one per prefix, "
                                 f"not all 0), got {w}")

    @property
    def matryoshka_loss_weights(self) -> list[float]:
        """w_l for each prefix (1 each unless given); [] for a flat SAE."""
        if not self.matryoshka_prefixes:
            return []
        return list(self.matryoshka_weights or [1.0] * len(self.matryoshka_prefixes))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "cfg.json") -> SAEConfig:
        if data.get("format") != FORMAT_NAME:
            raise ValueError(
                f"{source} is not a superscope SAE config (format={data.get('format')!r}); "
                "for a SAELens folder use superscope.saes.interop.import_saelens"
            )
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(
                f"{source} has format_version {version}, newer than this superscope understands "
                f"({FORMAT_VERSION}); upgrade superscope"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - {"format", "format_version", "thresholds"}
        if unknown:
            raise ValueError(f"{source} has unknown fields {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TrainConfig:
    """How an SAE is trained (Gao et al. 2024 defaults, scaled for short runs)."""

    total_tokens: int = 2_000_000
    """Training tokens; the run stops after this many."""
    batch_size: int = 4096
    """Tokens per step B (MC/FC/BatchTopK select within it, budget M = k·B)."""
    lr: float | None = None
    """Adam learning rate; None = 2e-4 / sqrt(F / 2^14) (Gao et al. 2024), times sqrt(2500 / steps) for runs
    under 2500 steps (saes/schedule.py default_lr: short runs need a larger lr)."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam (β1, β2)."""
    warmup_steps: int | None = None
    """Linear lr warm-up steps; None = min(1000, 5 % of the steps)."""
    decay_fraction: float = 0.2
    """Linear decay of the lr to 0 over this last fraction of the steps."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    aux_loss: Literal["auxk", "zipf", "none"] = "auxk"
    """Auxiliary loss for dead (auxk) or dead-and-under-used (zipf) features, or none."""
    aux_coef: float = 1 / 32
    """α in L = L_rec + α·L_aux."""
    k_aux: int | None = None
    """Per-token top-k among the auxiliary features; None = d_in / 2."""
    dead_tokens: int | None = None
    """A feature is dead after this many tokens without firing; None = min(10M, total_tokens / 10)."""
    freq_ema: float = 0.99
    """Decay of the per-feature firing-frequency EMA (used by aux_zipf and zipf capacities)."""
    zipf_gamma: float = 0.5
    """aux_zipf: a feature is under-used if p_f < γ·p*_rank(f)."""
    zipf_s: float | None = 1.0
    """aux_zipf: target exponent s; None fits it on ranks 1…F/2."""
    calibrate_thresholds: bool = True
    """MC/FC/BatchTopK: end by setting θ (θ_f) from the final weights on the last training batch — the
    same statistic as the EMA, with decay 0. The EMA lags on short runs (a 156-step run kept θ 37 % above
    its final value, and threshold mode fired half the budget)."""
    checkpoint_every_tokens: int = 0
    """Write a resumable checkpoint every this many tokens (0 = only at the end)."""
    log_every: int = 10
    """Steps between train_log.jsonl lines."""
    seed: int = 0
    """Seed for the initialisation."""
    progress: bool = True
    """Show a tqdm progress bar."""

    def __post_init__(self) -> None:
        if self.total_tokens <= 0 or self.batch_size <= 0:
            raise ValueError("total_tokens and batch_size must be positive")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.decay_fraction <= 1:
            raise ValueError("decay_fraction must be in [0, 1]")
        if self.checkpoint_every_tokens < 0:
            raise ValueError("checkpoint_every_tokens must be ≥ 0")
        self.adam_betas = tuple(self.adam_betas)

    @property
    def total_steps(self) -> int:
        return max(1, math.ceil(self.total_tokens / self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (tuples as lists), so it round-trips through cfg.json unchanged."""
        data = dataclasses.asdict(self)
        data["adam_betas"] = list(self.adam_betas)
        return data
