"""Read the evaluation suite's results from a run folder (what the report and the dashboard share).

    runs/<run>/evals/<hook>/<arch>/<metric>.json                 the suite on the run's SAEs
    runs/<run>/evals/sweep/<hook>/<arch>_k<k>/<metric>.json      the L0 sweep's SAEs (beside their weights)
    runs/<run>/evals/cache/                                      what metrics cache (not results)
    runs/<run>/evals/<hook>/<arch>/<metric>.details.json         a result's bulky per-latent text (``details_path``)

Each file holds the metric's result (SAEBench's fields at the top level) and the suite's record under
``suite`` (analyses/evals/suite.py): ``summary`` (the scalars of the table), ``quick``, or ``error`` (one line). ``load_evals`` never raises for a
broken file: it is listed in ``unreadable``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superscope.analyses.runs.data import arch_key, hook_layer
from superscope.analyses.runs.labels import Label, register
from superscope.saes.atomic_io import read_json

NOT_HOOKS = ("sweep", "cache")
DETAILS_SUFFIX = ".details.json"
"""A result's bulky per-item columns (autointerp's explanations and contexts: megabytes per SAE) live beside it
in ``<metric>.details.json``, so reading every result for the table and the plots parses kilobytes."""


def details_path(result_path: str | Path) -> Path:
    """``…/<metric>.json`` → ``…/<metric>.details.json``."""
    path = Path(result_path)
    return path.with_name(path.stem + DETAILS_SUFFIX)
SWEEP_NAME = re.compile(r"^(?P<arch>.+)_k(?P<k>\d+)$")

TABLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "core": [("fvu", "FVU"), ("l0", "L0"), ("ce_loss_score", "CE-loss recovered"), ("kl_div_with_sae", "KL"),
             ("cossim", "cos(x, x̂)"), ("l2_ratio", "L2 ratio"), ("relative_reconstruction_bias", "shrinkage γ"),
             ("freq_over_1_percent", "dense > 1 %"), ("average_max_abs_decoder_cosine_sim", "max |cos| decoder")],
    "sparse_probing": [("llm_test_accuracy", "probe: dense"), ("sae_top_1_test_accuracy", "probe: top-1"),
                       ("sae_top_2_test_accuracy", "probe: top-2"), ("sae_top_5_test_accuracy", "probe: top-5"),
                       ("sae_top_20_test_accuracy", "probe: top-20"), ("sae_test_accuracy", "probe: all latents")],
    "absorption": [("mean_absorption_fraction_score", "absorption"), ("mean_full_absorption_score", "full absorption"),
                   ("mean_num_split_features", "split latents")],
    "autointerp": [("autointerp_score", "detection bal. acc."), ("median_balanced_accuracy", "detection median"),
                   ("mean_f1", "detection F1")],
}
"""metric → the summary fields shown in the table (others: every summary field, by its own name)."""

register({
    "L0": Label("L0", "mean number of active latents per held-out token"),
    "CE-loss recovered": Label("CE-loss recovered", "(CE_zero − CE_SAE) / (CE_zero − CE_clean) with the SAE spliced "
                               "into the model (SAEBench ce_loss_score)"),
    "cos(x, x̂)": Label("cos(x, x̂)", "mean cosine of each held-out activation and its reconstruction (SAEBench cossim)"),
    "L2 ratio": Label("L2 ratio", "mean ‖x̂‖ / ‖x‖ over held-out tokens (SAEBench l2_ratio)"),
    "shrinkage γ": Label("Shrinkage γ", "Σ‖x̂‖² / Σ x·x̂ (SAEBench relative_reconstruction_bias); < 1 = shrinkage"),
    "dense > 1 %": Label("Dense > 1 %", "share of latents firing on more than 1 % of held-out tokens", "pct"),
    "max |cos| decoder": Label("Max |cos| decoder", "mean over latents of the largest |cos| between its decoder row "
                               "and any other (1 = a duplicated latent)"),
    "probe: dense": Label("Probe: dense", "test accuracy of a logistic probe on the dense activation, mean over "
                          "datasets (SAEBench llm_test_accuracy)", "pct"),
    **{f"probe: top-{k}": Label(f"Probe: top-{k}", f"test accuracy of a logistic probe on the {k} latents with the "
                                f"largest class-mean difference, mean over datasets (sae_top_{k}_test_accuracy)", "pct")
       for k in (1, 2, 5, 20)},
    "probe: all latents": Label("Probe: all latents", "test accuracy of a probe on every latent (sae_test_accuracy)",
                                "pct"),
    "absorption": Label("Absorption", "mean absorption fraction over the evaluated first letters (SAEBench "
                        "mean_absorption_fraction_score; weak below 1B parameters)"),
    "full absorption": Label("Full absorption", "mean full-absorption rate over letters (mean_full_absorption_score)"),
    "split latents": Label("Split latents", "mean number of main latents per letter (mean_num_split_features)"),
    "detection bal. acc.": Label("Detection bal. acc.", "mean over scored latents of the balanced accuracy of "
                                 "'fires on its token set' as a firing predictor on held-out tokens; 0.5 = chance"),
    "detection median": Label("Detection median", "median balanced accuracy over scored latents"),
    "detection F1": Label("Detection F1", "mean F1 (1:1 balanced) of the token-set explanation as a firing predictor"),
    "quick": Label("Configuration", "quick: measured with the metric's quick configuration (what `superscope run` "
                   "runs: fewer datasets, letters, latents); full: `superscope evals`' full one. In a table of several "
                   "metrics: the metrics measured quick", "text"),
})

METRIC_TITLES = {"core": "Core: reconstruction, sparsity, fidelity to the model",
                 "sparse_probing": "Sparse probing: test accuracy, mean over datasets",
                 "absorption": "Feature absorption (first letter; weak below 1B parameters)",
                 "autointerp": "Automatic interpretability: detection scores of token-set explanations"}

PARETO: dict[str, tuple[str, str, str]] = {
    "fvu": ("core", "fvu", "FVU (lower is better)"),
    "ce_loss_score": ("core", "ce_loss_score", "CE-loss recovered"),
    "sparse_probing": ("sparse_probing", "sae_top_1_test_accuracy", "Sparse probing: top-1 test accuracy"),
    "absorption": ("absorption", "mean_absorption_fraction_score", "Absorption fraction (lower is better)"),
    "autointerp": ("autointerp", "autointerp_score", "Interpretability: detection balanced accuracy"),
}
"""Pareto-plot key → (metric, summary field, axis title); plotted against the core metric's L0."""


@dataclass
class EvalRecord:
    """One result file."""

    hook: str
    name: str
    """The architecture (run SAEs) or ``<arch>_k<k>`` (sweep SAEs) or the SAE folder's name."""
    metric: str
    path: Path
    doc: dict

    @property
    def suite(self) -> dict:
        return self.doc.get("suite") or {}

    @property
    def error(self) -> str | None:
        return self.suite.get("error")

    @property
    def summary(self) -> dict[str, Any]:
        return self.suite.get("summary") or {}

    @property
    def result(self) -> dict:
        """The metric's to_dict() (everything but the suite's record)."""
        return {k: v for k, v in self.doc.items() if k != "suite"}

    @property
    def arch(self) -> str:
        m = SWEEP_NAME.match(self.name)
        return m["arch"] if m else self.name

    @property
    def k(self) -> int | None:
        m = SWEEP_NAME.match(self.name)
        return int(m["k"]) if m else None


@dataclass
class EvalsData:
    root: Path
    records: list[EvalRecord] = field(default_factory=list)
    sweep: list[EvalRecord] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.records and not self.sweep

    @property
    def hooks(self) -> list[str]:
        return sorted({r.hook for r in self.records}, key=hook_layer)

    @property
    def metrics(self) -> list[str]:
        """The metrics present, in the table's order (core, sparse probing, absorption, autointerp, others)."""
        present = dict.fromkeys(r.metric for r in [*self.records, *self.sweep])
        return [m for m in TABLE_COLUMNS if m in present] + [m for m in present if m not in TABLE_COLUMNS]

    def names(self, hook: str) -> list[str]:
        return sorted({r.name for r in self.records if r.hook == hook}, key=arch_key)

    def get(self, hook: str, name: str, metric: str) -> EvalRecord | None:
        return next((r for r in self.records if (r.hook, r.name, r.metric) == (hook, name, metric)), None)

    def results(self, hook: str, metric: str) -> dict[str, dict]:
        """name → the metric's result dict, for the SAEs at ``hook`` where it succeeded."""
        return {r.name: r.result for r in sorted(self.records, key=lambda r: arch_key(r.name))
                if r.hook == hook and r.metric == metric and not r.error}

    def table_rows(self, hook: str, label=lambda name: name, metrics: list[str] | None = None) -> list[dict]:
        """One row per SAE at ``hook``: the summary columns of every metric (or of ``metrics``); a failed
        metric shows its error."""
        rows = []
        for name in self.names(hook):
            row: dict[str, Any] = {"SAE": label(name)}
            quick: list[str] = []
            for metric in metrics or self.metrics:
                rec = self.get(hook, name, metric)
                if rec is None:
                    continue
                if rec.error:
                    row[f"{metric} error"] = rec.error
                    continue
                cols = TABLE_COLUMNS.get(metric) or [(k, f"{metric}: {k}") for k in rec.summary]
                for key, title in cols:
                    if key in rec.summary:
                        row[title] = rec.summary[key]
                if rec.suite.get("quick"):
                    quick.append(metric)
            if len(row) > 1:  # which configuration each number comes from
                row["quick"] = ", ".join(quick) if len(metrics or self.metrics) > 1 else ("quick" if quick else "full")
            if metrics is None or len(row) > 1:  # a per-metric table leaves out the SAEs without that metric
                rows.append(row)
        return rows

    def sweep_points(self) -> list[dict]:
        """One point per sweep SAE: hook, arch, k, the core L0 and every Pareto quantity it has."""
        by_sae: dict[tuple[str, str], dict] = {}
        for r in self.sweep:
            if r.error or r.k is None:
                continue
            point = by_sae.setdefault((r.hook, r.name), {"hook": r.hook, "arch": r.arch, "k": r.k})
            if r.metric == "core":
                point["l0"] = r.summary.get("l0")
            for key, (metric, field_name, _) in PARETO.items():
                if metric == r.metric:
                    point[key] = r.summary.get(field_name)
        return sorted((p for p in by_sae.values() if p.get("l0") is not None),
                      key=lambda p: (hook_layer(p["hook"]), arch_key(p["arch"]), p["k"]))

    def errors(self) -> list[str]:
        return [f"{r.hook}/{r.name}/{r.metric}: {r.error}" for r in [*self.records, *self.sweep] if r.error]


def _read(path: Path, hook: str, name: str, out: EvalsData) -> EvalRecord | None:
    try:
        doc = read_json(path, "evaluation result")
    except (OSError, ValueError) as err:
        out.unreadable.append(str(err))
        return None
    if not isinstance(doc, dict) or "metric" not in (doc.get("suite") or {}):
        out.unreadable.append(f"{path} is not an evaluation-suite result (no 'suite' record)")
        return None
    return EvalRecord(hook, name, str(doc["suite"]["metric"]), path, doc)


def load_evals(run_root: str | Path) -> EvalsData:
    """Every result file under ``<run_root>/evals/`` (see the module docstring)."""
    root = Path(run_root)
    out = EvalsData(root)
    base = root / "evals"
    for path in sorted(base.glob("*/*/*.json")):
        hook, name = path.parent.parent.name, path.parent.name
        if hook in NOT_HOOKS or path.name.endswith(DETAILS_SUFFIX):
            continue
        rec = _read(path, hook, name, out)
        if rec is not None:
            out.records.append(rec)
    for path in sorted((base / "sweep").glob("*/*/*.json")):
        if path.name in ("cfg.json", "train_state.json", "timing.json", "metrics.json") or path.name.endswith(DETAILS_SUFFIX):
            continue
        rec = _read(path, path.parent.parent.name, path.parent.name, out)
        if rec is not None:
            out.sweep.append(rec)
    return out
