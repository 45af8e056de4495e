"""Feature absorption on the first-letter task (Chanin et al. 2024, "A is for Absorption", arXiv 2409.14507;
SAEBench ``sae_bench/evals/absorption``, Karvonen et al. 2025, arXiv 2503.09532; field names as SAEBench's
``absorption_first_letter`` output).

For each letter c (words, activations and the letter probe ``logit_c = w_c·x + b_c``: first_letter.py):

1. Main latents by k-sparse probing (Gurnee et al. 2023, as SAEBench ``k_sparse_probing``): rank latents
   by the weights of an L1-regularised logistic regression of "starts with c" on the SAE codes of the
   train words (positive weights first); for k = 1 … max_k fit a logistic regression on the top-k latents
   and take its F1 on the test words. The main ("split") latents are the top-k for the largest k reached
   while every step improves F1 by more than ``f1_jump_threshold``; ``num_split_features`` = their number
   (SAEBench reports ``len(split_feats)``, so a letter with one main latent has 1).
2. Absorption on the probe's true positives (test words starting with c with ``logit_c > 0``). With
   p̂ = w_c / ‖w_c‖, a latent's probe projection is ``proj_f = z_f · (W_dec[f]·p̂) / s`` (its share of x̂
   along p̂, in residual units; s = the SAE's input scale), ``cos_f = cos(W_dec[f], p̂)``, and the word's own
   projection is ``a = (x − b_dec/s)·p̂`` — the part of x along p̂ the latents have to explain (SAEBench uses
   x·p̂ and unit-norm decoders with s = 1; centring removes the decoder bias, which no latent carries).
   * absorption fraction (Demian Till, SAEBench): m = Σ_{main} proj_f; A = sum of the ≤ 3 largest proj_f > 0
     over non-main latents with cos_f ≥ 0.1. It is 0 when m ≥ a or A < 0.4·a; 1 when m ≤ 0; otherwise
     min(A, a − m) / (min(A, a − m) + m).
   * full absorption (Chanin et al.): every main latent is silent, the latent with the largest proj_f has
     cos_f ≥ 0.025, a > 0, and that latent's proj_f ≥ 0.4·a.
   Per letter: ``mean_absorption_fraction`` = Σ fractions / true positives, ``full_absorption_rate`` =
   full absorptions / true positives. Letters whose probe has F1 < ``min_GT_probe_f1`` or fewer than
   ``min_feats_for_eval`` true positives are not evaluated (SAEBench); the means run over the others.

Caveat (SAEBench recommends models ≥ 2B parameters): below ~1B parameters the first-letter feature is
weakly represented, so probes are worse and fewer letters qualify; the numbers compare SAEs of one model.

Batch-dependent SAEs (FC, MC) are encoded one word at a time in their ``threshold`` inference mode: a word
list is not a batch of corpus tokens. ``absorption_from_activations`` runs the whole metric on any labelled
activations (a toy with hierarchical features: label = the parent feature, −1 = none of them).
Letters: N rows, D = d_in, F = d_sae, C classes, T true positives of one class.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from superscope.analyses.evals.context import EvalContext
from superscope.analyses.evals.first_letter import (
    LETTERS,
    LetterProbes,
    cached_letter_probes,
    cached_word_activations,
    fit_letter_probes,
    split_mask,
)
from superscope.saes import BaseSAE
from superscope.saes.result_repr import Headline, ResultRepr

METRIC = "absorption"
EVAL_TYPE_ID = "absorption_first_letter"
EPS = 1e-8
CAVEAT = ("Feature absorption is weak below 1B parameters (SAEBench recommends models of 2B parameters or more): "
          "on a small model the first-letter probes are less accurate and fewer letters qualify, so compare "
          "SAEs of the same model with it, not with published numbers.")


@dataclass(frozen=True)
class AbsorptionConfig:
    """The first-letter absorption eval (defaults as SAEBench's ``AbsorptionEvalConfig``)."""

    n_words: int | None = None
    """Single-token words used (drawn by ``seed``); None: every one in the vocabulary."""
    test_fraction: float = 0.2
    """Share of the words held out of every fit; probes are scored and absorption measured on them."""
    seed: int = 42
    """Seed of the word sample and the train/test split."""
    prompt_prefix: str = "\n"
    """Text between BOS and each word in its forward (first_letter.py: keeps attention-sink activations off)."""
    probe_C: float = 1.0
    """Inverse L2 strength of the letter probes (scikit-learn ``C``, on standardised residuals)."""
    max_k_value: int = 10
    """Largest k of the k-sparse probes."""
    f1_jump_threshold: float = 0.03
    """A k+1-th main latent counts only if it raises the k-sparse probe's F1 by more than this."""
    k_sparse_probe_l1_C: float = 0.1
    """Inverse L1 strength of the logistic regression that ranks latents (scikit-learn ``C``)."""
    full_absorption_probe_cos_sim_threshold: float = 0.025
    """cos(decoder row, probe) the top-projecting latent needs for full absorption."""
    absorption_fraction_probe_cos_sim_threshold: float = 0.1
    """cos(decoder row, probe) a latent needs to count as absorbing in the absorption fraction."""
    probe_projection_proportion_threshold: float = 0.4
    """Share of the word's probe projection the absorbing latent(s) must carry."""
    absorption_fraction_max_absorbing_latents: int = 3
    """At most this many latents share an absorbed feature in the absorption fraction."""
    min_GT_probe_f1: float = 0.6
    """Letters whose probe has a lower test F1 are not evaluated."""
    min_feats_for_eval: int = 20
    """Letters with fewer probe true positives among the test words are not evaluated."""
    batch_size: int = 512
    """Words per forward of the model (each is [BOS, word])."""
    encode_batch_size: int = 4096
    """Rows per SAE forward."""
    n_examples: int = 5
    """Most-absorbed words kept per letter (with the latent that carries them)."""

    def __post_init__(self) -> None:
        if self.n_words is not None and self.n_words < 2:
            raise ValueError(f"n_words must be ≥ 2 or None (all words), got {self.n_words}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must lie in (0, 1), got {self.test_fraction}")
        if self.max_k_value < 1:
            raise ValueError(f"max_k_value must be ≥ 1, got {self.max_k_value}")
        if min(self.probe_C, self.k_sparse_probe_l1_C) <= 0:
            raise ValueError("probe_C and k_sparse_probe_l1_C must be positive")
        if self.absorption_fraction_max_absorbing_latents < 1 or self.min_feats_for_eval < 1:
            raise ValueError("absorption_fraction_max_absorbing_latents and min_feats_for_eval must be ≥ 1")
        if min(self.batch_size, self.encode_batch_size) < 1:
            raise ValueError("batch_size and encode_batch_size must be positive")

    @classmethod
    def quick(cls) -> AbsorptionConfig:
        """What ``superscope run`` runs: 6,000 of the ~45,000 words (a per-hook cache of ~1 min on 2 cores)."""
        return cls(n_words=6000)


@dataclass(frozen=True)
class LetterAbsorption:
    """The absorption of one class (letter)."""

    first_letter: str
    evaluated: bool
    """False when the probe's F1 or its number of true positives is below the config's minimum."""
    mean_absorption_fraction: float
    full_absorption_rate: float
    num_full_absorption: int
    num_probe_true_positives: int
    num_split_features: int
    split_feats: tuple[int, ...]
    """The main latents (k-sparse probe's top-k)."""
    probe_f1: float
    probe_accuracy: float
    k_sparse_f1: tuple[float, ...]
    """Test F1 of the k-sparse probe for k = 1 … max_k."""
    examples: tuple[dict, ...]
    """The most-absorbed words: word, absorption_fraction, is_full_absorption, top latent and its cos."""

    def to_dict(self) -> dict[str, Any]:
        nan_to_none = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
        d = asdict(self)
        d["split_feats"], d["k_sparse_f1"] = list(self.split_feats), [nan_to_none(v) for v in self.k_sparse_f1]
        d["examples"] = list(self.examples)
        return {k: nan_to_none(v) for k, v in d.items()}


@dataclass(frozen=True, repr=False)
class AbsorptionResult(ResultRepr):
    """First-letter feature absorption of one SAE (per letter and the means over evaluated letters)."""

    letters: tuple[LetterAbsorption, ...]
    mean_absorption_fraction_score: float
    mean_full_absorption_score: float
    mean_num_split_features: float
    std_dev_absorption_fraction_score: float
    std_dev_full_absorption_score: float
    std_dev_num_split_features: float
    n_words: int
    n_test_words: int
    inference_mode: str
    """How the SAE was encoded: 'row-local', or 'threshold' for a batch-dependent SAE."""
    config: AbsorptionConfig
    caveat: str = CAVEAT

    @property
    def n_letters_evaluated(self) -> int:
        return sum(r.evaluated for r in self.letters)

    def headline(self) -> list[Headline]:
        return [("absorption fraction", self.mean_absorption_fraction_score, "num"),
                ("full absorption", self.mean_full_absorption_score, "num"),
                ("split latents", self.mean_num_split_features, "num"),
                ("letters evaluated", f"{self.n_letters_evaluated}/{len(self.letters)}", "text"),
                ("words", self.n_words, "count"), ("caveat", "weak below 1B parameters", "text")]

    def to_dict(self) -> dict[str, Any]:
        none = lambda v: None if math.isnan(v) else v  # noqa: E731
        evaluated = [r for r in self.letters if r.evaluated]
        return {
            "eval_type_id": EVAL_TYPE_ID,
            "eval_config": asdict(self.config),
            "eval_result_metrics": {"mean": {
                "mean_absorption_fraction_score": none(self.mean_absorption_fraction_score),
                "mean_full_absorption_score": none(self.mean_full_absorption_score),
                "mean_num_split_features": none(self.mean_num_split_features),
                "std_dev_absorption_fraction_score": none(self.std_dev_absorption_fraction_score),
                "std_dev_full_absorption_score": none(self.std_dev_full_absorption_score),
                "std_dev_num_split_features": none(self.std_dev_num_split_features)}},
            "eval_result_details": [
                {k: r.to_dict()[k] for k in ("first_letter", "mean_absorption_fraction", "full_absorption_rate",
                                             "num_full_absorption", "num_probe_true_positives",
                                             "num_split_features")} for r in evaluated],
            "eval_result_unstructured": {
                "caveat": self.caveat, "inference_mode": self.inference_mode, "n_words": self.n_words,
                "n_test_words": self.n_test_words, "letters_evaluated": self.n_letters_evaluated,
                "letters": [r.to_dict() for r in self.letters]},
        }

    def figure(self):
        """Per letter: mean absorption fraction and full-absorption rate (bars), and the number of main latents."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        rows = [r for r in self.letters if r.evaluated]
        x = [r.first_letter for r in rows]
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.65, 0.35])
        fig.add_trace(go.Bar(x=x, y=[r.mean_absorption_fraction for r in rows], name="absorption fraction"), 1, 1)
        fig.add_trace(go.Bar(x=x, y=[r.full_absorption_rate for r in rows], name="full absorption rate"), 1, 1)
        fig.add_trace(go.Bar(x=x, y=[r.num_split_features for r in rows], name="split latents",
                             marker_color="grey"), 2, 1)
        fig.update_yaxes(title_text="share of true positives", row=1, col=1)
        fig.update_yaxes(title_text="main latents", row=2, col=1)
        fig.update_layout(barmode="group", height=420,
                          title=f"First-letter absorption (mean fraction {self.mean_absorption_fraction_score:.3f}; "
                                f"{self.n_letters_evaluated} letters; weak below 1B parameters)")
        return fig


def summary(result: dict) -> dict[str, float]:
    """The scalars shown in the suite's table (from ``AbsorptionResult.to_dict()``)."""
    mean = result.get("eval_result_metrics", {}).get("mean", {})
    value = lambda key: math.nan if mean.get(key) is None else float(mean[key])  # noqa: E731
    return {k: value(k) for k in ("mean_absorption_fraction_score", "mean_full_absorption_score",
                                  "mean_num_split_features")}


# ---- the metric -------------------------------------------------------------------------------------------


def evaluate_absorption(sae: BaseSAE, context: EvalContext, config: AbsorptionConfig) -> AbsorptionResult:
    """First-letter absorption of ``sae`` at ``context.hook``: the word activations and letter probes are
    cached per hook (``context.cache_dir``); per SAE only the encoding and the analysis run."""
    words = cached_word_activations(context, config.n_words, config.seed, config.prompt_prefix, config.batch_size)
    check_inputs(sae, words.acts_ND, where=f"the residual at {context.hook}")
    probes = cached_letter_probes(context, words, config.test_fraction, config.seed, config.probe_C)
    return absorption_from_activations(sae, words.acts_ND, words.labels, words=words.words, probes=probes,
                                       config=config)


def absorption_from_activations(sae: BaseSAE, acts_ND: Float[Tensor, "N D"], labels_N: np.ndarray | Tensor, *,
                                class_names: str | list[str] = LETTERS, words: list[str] | None = None,
                                test_mask_N: Tensor | None = None, probes: LetterProbes | None = None,
                                config: AbsorptionConfig = AbsorptionConfig()) -> AbsorptionResult:
    """The absorption metric on any labelled activations (no model needed).

    ``labels_N``: class index in [0, len(class_names)) of each row, or −1 for a row of no class (a negative
    for every probe). ``test_mask_N``: rows held out of every fit (default: a seeded ``config.test_fraction``).
    ``probes``: fitted class probes for these rows (default: fitted here). ``words``: row names for examples.
    """
    labels = np.asarray(labels_N.cpu() if isinstance(labels_N, Tensor) else labels_N).astype(np.int64)
    check_inputs(sae, acts_ND, where="the activations")
    if labels.shape != (acts_ND.shape[0],):
        raise ValueError(f"labels have shape {labels.shape} but there are {acts_ND.shape[0]} activation rows")
    names = list(class_names)
    if labels.min() < -1 or labels.max() >= len(names):
        raise ValueError(f"labels must lie in [-1, {len(names) - 1}] (class index, or −1 for none)")
    if probes is None:
        mask = split_mask(labels, config.test_fraction, config.seed) if test_mask_N is None else test_mask_N
        probes = fit_letter_probes(acts_ND, labels, len(names), mask.bool(), config.probe_C)
    test = probes.test_mask_N.cpu().numpy()
    if probes.W_CD.shape != (len(names), acts_ND.shape[1]) or test.shape != labels.shape:
        raise ValueError(f"probes of shape {tuple(probes.W_CD.shape)} do not match {len(names)} classes × "
                         f"d={acts_ND.shape[1]} and {len(labels)} rows; refit them for these activations")
    with per_token_mode(sae) as mode:
        codes = encode_csr(sae, acts_ND, config.encode_batch_size)
    logits_NC = probes.logits(acts_ND.float().cpu())
    letters = tuple(_letter(sae, c, names[c], acts_ND, codes, labels, test, probes, logits_NC[:, c], words, config)
                    for c in range(len(names)))
    return _result(letters, len(labels), int(test.sum()), mode, config)


def check_inputs(sae: BaseSAE, acts_ND: Tensor, where: str) -> None:
    """One clear line for an empty set, a width that is not the SAE's d_in, or non-finite values."""
    if acts_ND.ndim != 2 or acts_ND.shape[0] == 0:
        raise ValueError(f"{where}: no rows (shape {tuple(acts_ND.shape)}); absorption needs a non-empty word list")
    if acts_ND.shape[1] != sae.cfg.d_in:
        raise ValueError(f"{where} has d_model={acts_ND.shape[1]} but the SAE has d_in={sae.cfg.d_in}: "
                         "evaluate the SAE at the hook (and model) it was trained on")
    if not bool(torch.isfinite(acts_ND).all()):
        raise ValueError(f"{where} contains NaN or Inf; rebuild the activation cache (delete evals/cache/)")


@contextlib.contextmanager
def per_token_mode(sae: BaseSAE) -> Iterator[str]:
    """Eval mode, and ``threshold`` inference for a batch-dependent SAE (restored afterwards)."""
    was_training, mode = sae.training, sae.cfg.inference_mode
    sae.eval()
    if sae.batch_dependent:
        sae.cfg.inference_mode = "threshold"
    try:
        yield "threshold" if sae.batch_dependent else "row-local"
    finally:
        sae.cfg.inference_mode = mode
        sae.train(was_training)


@torch.no_grad()
def encode_csr(sae: BaseSAE, acts_ND: Tensor, batch_size: int):
    """The SAE's codes of every row as a scipy CSR matrix [N, F] (built from the SAE's own sparse codes)."""
    import scipy.sparse as sp

    device = sae.W_enc.device
    blocks = []
    for x in acts_ND.split(batch_size):
        c = sae(x.to(device)).codes
        blocks.append(sp.csr_matrix((c.values_N.float().cpu().numpy(), c.cols_N.cpu().numpy(),
                                     c.crow_B1.cpu().numpy()), shape=(x.shape[0], c.n_features)))
    out = sp.vstack(blocks).tocsr()
    out.eliminate_zeros()
    return out


def main_latents(codes_train, y_train: np.ndarray, codes_test, y_test: np.ndarray,
                 config: AbsorptionConfig) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """k-sparse probing: (split feats, test F1 for k = 1 … max_k). See the module docstring, step 1."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), warnings.catch_warnings():  # tiny fits: extra BLAS threads only contend
        warnings.simplefilter("ignore", ConvergenceWarning)
        l1 = LogisticRegression(solver="liblinear", C=config.k_sparse_probe_l1_C, class_weight="balanced",
                                **l1_penalty()).fit(codes_train, y_train)
        return _k_sparse(l1.coef_[0], codes_train, y_train, codes_test, y_test, config)


def l1_penalty() -> dict[str, Any]:
    """scikit-learn's L1 switch: ``l1_ratio=1`` from 1.8 on (``penalty`` is deprecated there), else ``penalty``."""
    import sklearn

    major_minor = tuple(int(part) for part in sklearn.__version__.split(".")[:2])
    return {"l1_ratio": 1.0} if major_minor >= (1, 8) else {"penalty": "l1"}


def _k_sparse(coef_F, codes_train, y_train, codes_test, y_test, config):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    # Positive weights first (latents that predict the letter, as SAEBench's topk); ties (zero weights) by
    # how much more the latent fires on the letter's words than on the others.
    pos, neg = np.flatnonzero(y_train), np.flatnonzero(~y_train)
    gap = np.asarray(codes_train[pos].mean(0)).ravel() - np.asarray(codes_train[neg].mean(0)).ravel()
    order = np.lexsort((-gap, -coef_F))[: config.max_k_value]
    f1s, split, best = [], (), -math.inf
    for k in range(1, len(order) + 1):
        feats = order[:k]
        xk_train, xk_test = codes_train[:, feats].toarray(), codes_test[:, feats].toarray()
        if np.ptp(xk_train, axis=0).max() == 0:  # the latents never fire on the train words: nothing to fit
            pred = np.zeros(len(y_test), dtype=bool)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                probe = LogisticRegression(max_iter=500, class_weight="balanced").fit(xk_train, y_train)
            pred = probe.predict(xk_test).astype(bool)
        f1s.append(float(f1_score(y_test, pred, zero_division=0.0)))
        if len(f1s) == len(split) + 1 and f1s[-1] > best + config.f1_jump_threshold:
            split, best = tuple(int(f) for f in feats), f1s[-1]
    return split, tuple(f1s)


def word_absorption(sae: BaseSAE, x_TD: Tensor, z_TF: Tensor, probe_D: Tensor, main: tuple[int, ...],
                    config: AbsorptionConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(absorption fraction, is full absorption, top-projecting latent, its cos) of each of T words.
    See the module docstring, step 2."""
    W_dec = sae.W_dec.detach().float().cpu()
    s = float(sae.cfg.input_scale)
    p_D = probe_D.float() / probe_D.float().norm()
    cos_F = torch.nn.functional.normalize(W_dec, dim=1) @ p_D
    proj_TF = z_TF * (W_dec @ p_D / s)
    a_T = (x_TD.float() - sae.b_dec.detach().float().cpu() / s) @ p_D
    is_main = torch.zeros(W_dec.shape[0], dtype=torch.bool)
    is_main[list(main)] = True
    m_T = proj_TF[:, is_main].sum(1)
    candidates = (~is_main & (cos_F >= config.absorption_fraction_probe_cos_sim_threshold)) & (proj_TF > 0)
    n_top = min(config.absorption_fraction_max_absorbing_latents, proj_TF.shape[1])
    A_T = torch.where(candidates, proj_TF, torch.zeros(())).topk(n_top, dim=1).values.sum(1)
    absorbed = torch.minimum(A_T, a_T - m_T)
    fraction = (absorbed / (absorbed + m_T)).clamp(0, 1)
    fraction = torch.where(m_T <= 0, torch.ones(()), fraction)
    none = (m_T >= a_T) | (a_T <= 0) | (A_T < config.probe_projection_proportion_threshold * a_T)
    fraction = torch.where(none, torch.zeros(()), fraction)
    top_T = proj_TF.argmax(1)
    top_proj_T = proj_TF.gather(1, top_T[:, None]).squeeze(1)
    full = ((z_TF[:, is_main] < EPS).all(1) & (cos_F[top_T] >= config.full_absorption_probe_cos_sim_threshold)
            & (a_T > 0) & (top_proj_T >= config.probe_projection_proportion_threshold * a_T))
    return fraction, full, top_T, cos_F[top_T]


def _letter(sae, c, name, acts_ND, codes, labels, test, probes, logit_N, words, config) -> LetterAbsorption:
    y = labels == c
    f1, acc = float(probes.f1_C[c]), float(probes.accuracy_C[c])
    tp = np.flatnonzero(test & y & (logit_N.numpy() > 0))
    has_data = y[~test].any() and (~y[~test]).any() and y[test].any()
    train_rows, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
    split, k_f1 = ((), ()) if not has_data else main_latents(codes[train_rows], y[train_rows], codes[test_rows],
                                                             y[test_rows], config)
    evaluated = bool(has_data and split and f1 >= config.min_GT_probe_f1 and len(tp) >= config.min_feats_for_eval)
    if not evaluated:
        return LetterAbsorption(name, False, math.nan, math.nan, 0, len(tp), len(split), split, f1, acc, k_f1, ())
    z_TF = torch.from_numpy(codes[tp].toarray())
    fraction, full, top, top_cos = word_absorption(sae, acts_ND[tp].cpu(), z_TF, probes.W_CD[c], split, config)
    order = torch.argsort(fraction + full.float(), descending=True)[: config.n_examples]
    examples = tuple({"word": words[tp[i]] if words is not None else int(tp[i]),
                      "absorption_fraction": float(fraction[i]), "is_full_absorption": bool(full[i]),
                      "top_projection_feat": int(top[i]), "top_projection_feat_probe_cos": float(top_cos[i])}
                     for i in order.tolist() if fraction[i] > 0 or full[i])
    n_full = int(full.sum())
    return LetterAbsorption(name, True, float(fraction.sum()) / len(tp), n_full / len(tp), n_full, len(tp),
                            len(split), split, f1, acc, k_f1, examples)


def _result(letters, n_words, n_test, mode, config) -> AbsorptionResult:
    done = [r for r in letters if r.evaluated]

    def mean_std(values: list[float]) -> tuple[float, float]:
        if not values:
            return math.nan, math.nan
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    frac = mean_std([r.mean_absorption_fraction for r in done])
    full = mean_std([r.full_absorption_rate for r in done])
    split = mean_std([float(r.num_split_features) for r in done])
    return AbsorptionResult(letters, frac[0], full[0], split[0], frac[1], full[1], split[1], n_words, n_test, mode,
                            config)
