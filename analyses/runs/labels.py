"""Column names → what a reader sees: a human label, a help text with the definition, and the number
format (``analyses.runs.formatting``). Every table of the report and the dashboard looks its columns
up here, so a column reads and formats the same everywhere.

    label("mean_act")            → Label(text="Mean activation", help="Mean activation of the feature …", kind="num")
    register({"my_col": Label("My column", "definition", "pct")})   # other sections add their own

A column with no entry keeps its name, has no help text and is formatted by ``guess_kind``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from superscope.analyses.runs.formatting import FORMATS, fmt, guess_kind


@dataclass(frozen=True)
class Label:
    """How one column is shown."""

    text: str
    """Header shown to the reader."""
    help: str = ""
    """Definition (tooltip on the header)."""
    kind: str = "num"
    """Number format, one of ``formatting.FORMATS``."""

    def __post_init__(self) -> None:
        if self.kind not in FORMATS:
            raise ValueError(f"label {self.text!r}: unknown format {self.kind!r}; use one of {', '.join(FORMATS)}")


_FVU = "fraction of variance unexplained on held-out tokens, Σ‖x − x̂‖² / Σ‖x − x̄‖²; 0 is a perfect reconstruction"
LABELS: dict[str, Label] = {
    # the SAE comparison (sae_sections.comparison_rows)
    "architecture": Label("SAE", "SAE architecture (TopK, Feature Choice, Mutual Choice, …)", "text"),
    "SAE": Label("SAE", "SAE architecture and, for Feature / Mutual Choice, its inference mode", "text"),
    "FVU": Label("FVU", _FVU),
    "L0 mean": Label("L0", "mean number of active features per held-out token"),
    "L0 std": Label("L0 spread", "standard deviation of the per-token L0 (0 for TopK: k on every token)", "spread"),
    "dead in training %": Label("Dead in training", "features that did not fire in the last dead_tokens training "
                                "tokens (the AuxK rule, Gao et al. 2024)", "points"),
    "silent on held-out %": Label("Silent on held-out", "features that never fired on the held-out tokens; on a "
                                  "short evaluation set rare features count too", "points"),
    "dense %": Label("Dense", "features that fire on more than 10 % of held-out tokens", "points"),
    "CE recovered": Label("CE-loss recovered", "(CE_zero − CE_SAE) / (CE_zero − CE_clean) with the SAE spliced "
                          "into the model; 1 = the SAE loses nothing, 0 = as bad as zero-ablation"),
    "KL": Label("KL (nats)", "mean KL(clean ‖ spliced) of the next-token distributions, in nats"),
    "FVU (threshold)": Label("FVU, thresholds", "FVU of Feature / Mutual Choice with their learned per-feature "
                             "inference thresholds (per token, no batch)"),
    "L0 (threshold)": Label("L0, thresholds", "mean L0 with the learned inference thresholds"),
    "train s": Label("Training time", "wall-clock seconds spent training this SAE", "seconds"),
    "eval tokens": Label("Held-out tokens", "tokens the metrics were computed on", "count"),
    "note": Label("Note", "what could not be read for this SAE", "text"),
    "Spearman ρ(L0, difficulty)": Label("Spearman ρ(L0, difficulty)", "rank correlation between a token's L0 and "
                                        "its difficulty (TopK's reconstruction error); > 0 = adaptive allocation"),
    # superposition entropy (probe_sections.entropy_rows)
    "hook": Label("Hook", "TransformerLens hook where the activations were read", "text"),
    "F_eff": Label("F_eff", "effective number of features, exp(H) of the distribution of total feature "
                   "activation mass"),
    "ψ": Label("ψ", "effective features per neuron, F_eff / N; ψ > 1 means superposition"),
    "ψ CI low": Label("ψ 95 % CI low", "lower end of the 95 % bootstrap interval over token blocks"),
    "ψ CI high": Label("ψ 95 % CI high", "upper end of the 95 % bootstrap interval over token blocks"),
    "alive": Label("Alive features", "features that fired at least once on the tokens", "count"),
    "d_sae": Label("Width", "number of SAE features (d_sae)", "count"),
    "tokens": Label("Tokens", "held-out tokens the estimate used", "count"),
    # function tokens (probe_sections.coverage_rows / shares_rows)
    "layer": Label("Layer", "layer of the hook (the paper's rows name their model)", "text"),
    "top-1 token": Label("Top-1 token", "the most frequent token", "text"),
    "'.' alone": Label("'.' alone", "% of active features the '.' token alone activates", "points"),
    "function set": Label("Function set", "how the function tokens were chosen", "text"),
    "function tokens": Label("Function tokens", "tokens in the function set", "count"),
    "function %": Label("By function tokens", "% of active features activated by function tokens", "points"),
    "content %": Label("By content tokens", "% of active features activated by content tokens", "points"),
    "both %": Label("By both", "% of active features activated by both kinds of token", "points"),
    # the feature browser (FeatureData.summary) and feature tables
    "feature": Label("Feature", "feature number in the SAE (row of W_dec)", "id"),
    "latent": Label("Latent", "latent (feature) number in the SAE (row of W_dec)", "id"),
    "count": Label("Firings", "held-out tokens on which the feature is active", "count"),
    "density": Label("Firing density", "share of held-out tokens on which the feature is active", "sci"),
    "mean_act": Label("Mean activation", "mean activation of the feature over the tokens it fires on"),
    "max_act": Label("Max activation", "largest activation of the feature on the held-out tokens"),
    "top_logit": Label("Top logit", "the token whose logit the feature's decoder direction raises most "
                       "(direct path through the unembedding)", "text"),
    "top_token": Label("Top token", "the token at the centre of the feature's strongest example", "text"),
    "fired on the token": Label("Firings on the token", "occurrences of the token on which the feature fired",
                                "count"),
    "mean activation": Label("Mean activation", "mean activation over those firings"),
    "activation": Label("Activation", "the feature's activation on this token"),
    "top logit": Label("Top logit", "the token whose logit the feature raises most", "text"),
    "detection_bacc": Label("Detection balanced accuracy", "how well the feature's explanation predicts where it "
                            "fires on held-out tokens (balanced accuracy; 0.5 = chance)"),
    "detection_f1": Label("Detection F1", "F1 of predicting the feature's firings from its explanation"),
    "explanation": Label("Explanation", "input-centric explanation of what the feature fires on", "text"),
    # BFS probe
    "step": Label("Step", "index of the continuous thought / pipeline step", "text"),
    "group": Label("Group", "node group at that step (optimal ⊆ frontier ⊆ reachable; not reachable)", "text"),
    "mean ⟨t_i, E[v]⟩": Label("Mean score ⟨t_i, E[v]⟩", "mean inner product of the i-th thought with the node "
                              "embeddings of the group"),
    "CI low": Label("95 % CI low", "lower end of the bootstrap interval"),
    "CI high": Label("95 % CI high", "upper end of the bootstrap interval"),
    "n": Label("n", "number of (problem, node) pairs", "count"),
    # the run's steps (timeline)
    "duration": Label("Duration", "wall-clock time of the step", "seconds"),
    "made": Label("What it made", "what the step wrote into the run folder", "text"),
    "finished": Label("Finished", "when the step finished (local time of the machine that ran it)", "text"),
}


def register(labels: dict[str, Label]) -> None:
    """Add (or replace) labels, e.g. from a new report section or dashboard page."""
    for key, value in labels.items():
        if not isinstance(value, Label):
            raise TypeError(f"label for {key!r} must be a Label, got {type(value).__name__}")
    LABELS.update(labels)


def label(column: str, values: list[Any] | None = None) -> Label:
    """The label of ``column`` (a column with no entry: its own name, a guessed format)."""
    return LABELS.get(column) or Label(column, "", guess_kind(column, list(values or [])))


def columns_of(rows: list[dict]) -> list[str]:
    """Column names of dict rows in first-seen order."""
    return list(dict.fromkeys(k for r in rows for k in r))


def display_rows(rows: list[dict], columns: list[str] | None = None) -> tuple[list[str], list[Label], list[list[str]]]:
    """(column keys, their labels, formatted cells) of a table of dict rows — what both the report's
    HTML tables and plain-text tables print."""
    cols = columns or columns_of(rows)
    labels = [label(c, [r.get(c) for r in rows]) for c in cols]
    cells = [[fmt(r.get(c), lab.kind) for c, lab in zip(cols, labels)] for r in rows]
    return cols, labels, cells


def clean(value: Any) -> Any:
    """NaN → None (JSON-friendly, shown blank)."""
    return None if isinstance(value, float) and math.isnan(value) else value
