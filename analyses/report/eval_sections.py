"""The report's evaluation-suite section, and the figures the dashboard's "Evaluations" page shares:
the table SAE × metric, the Pareto plots of the L0 sweep (SAEBench's main figure, Karvonen et al. 2025),
per-dataset sparse-probing bars, absorption per letter (with the < 1B-parameter caveat) and the
distribution of autointerp detection scores. Everything is read from ``runs/<run>/evals/``
(analyses/runs/evals.py); a metric that failed shows its error line in the table.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from superscope.analyses.report.page import Page, caption, hint, note, table
from superscope.analyses.runs.data import RunData
from superscope.analyses.runs.evals import METRIC_TITLES, PARETO, EvalsData, load_evals
from superscope.saes.registry import arch_color, arch_label

ABSORPTION_CAVEAT = ("Feature absorption is weak below 1B parameters (SAEBench notes it; our model has 135M): the "
                     "first-letter probes are less accurate and fewer letters qualify, so compare SAEs of this model "
                     "with each other, not with published numbers.")
INTRO = ("SAEBench-style metrics (Karvonen et al. 2025) measured offline on the run's model. Core: FVU, L0, "
         "CE-loss recovered, KL, cos(x, x̂), L2 ratio, shrinkage γ, dense latents, max |cos| between decoder rows. "
         "Sparse probing: logistic probes on the top-k latents (by class-mean difference) of the sae-probes datasets, "
         "against a probe on the dense activation. Absorption: first-letter task (Chanin et al. 2024). Autointerp: "
         "token-set explanations scored by detection on held-out tokens (balanced accuracy; 0.5 = chance).")


def label(name: str) -> str:
    """An SAE's display name: its architecture's label (a sweep or foreign SAE keeps its folder name)."""
    return arch_label(name)


def probing_figure(ev: EvalsData, hook: str, k: int = 1) -> go.Figure | None:
    """Test accuracy per dataset: the dense probe and each SAE's top-k probe."""
    results = ev.results(hook, "sparse_probing")
    if not results:
        return None
    fig = go.Figure()
    first = next(iter(results.values()))
    details = first.get("eval_result_details") or []
    names = [d["dataset_name"] for d in details]
    fig.add_bar(name="dense probe", x=names, y=[d.get("llm_test_accuracy") for d in details], marker_color="#444")
    for name, res in results.items():
        by_ds = {d["dataset_name"]: d for d in res.get("eval_result_details") or []}
        fig.add_bar(name=f"{label(name)} top-{k}", x=names, marker_color=arch_color(name),
                    y=[by_ds.get(n, {}).get(f"sae_top_{k}_test_accuracy") for n in names])
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(barmode="group", yaxis_title="test accuracy", yaxis_range=[0.4, 1.0], height=380,
                      title=f"Sparse probing per dataset at {hook}: dense probe vs the SAEs' top-{k} latent probes")
    return fig


def absorption_figure(ev: EvalsData, hook: str) -> go.Figure | None:
    """Mean absorption fraction per first letter, one bar series per SAE."""
    results = ev.results(hook, "absorption")
    if not results:
        return None
    fig = go.Figure()
    for name, res in results.items():
        rows = res.get("eval_result_details") or []
        fig.add_bar(name=label(name), x=[r["first_letter"] for r in rows], marker_color=arch_color(name),
                    y=[r.get("mean_absorption_fraction") for r in rows],
                    customdata=[r.get("num_split_features") for r in rows],
                    hovertemplate="%{x}: absorption %{y:.3f}, %{customdata} split latents<extra></extra>")
    fig.update_layout(barmode="group", yaxis_title="mean absorption fraction", xaxis_title="first letter",
                      height=360, title=f"Absorption per letter at {hook} (weak below 1B parameters)")
    return fig


def split_latents_figure(ev: EvalsData, hook: str) -> go.Figure | None:
    """Number of split (main) latents per letter, one series per SAE."""
    results = ev.results(hook, "absorption")
    if not results:
        return None
    fig = go.Figure()
    for name, res in results.items():
        rows = res.get("eval_result_details") or []
        fig.add_bar(name=label(name), x=[r["first_letter"] for r in rows], y=[r.get("num_split_features") for r in rows],
                    marker_color=arch_color(name))
    fig.update_layout(barmode="group", yaxis_title="split latents", xaxis_title="first letter", height=300,
                      title=f"Split latents per letter at {hook}")
    return fig


def autointerp_figure(ev: EvalsData, hook: str) -> go.Figure | None:
    """The distribution of per-latent detection balanced accuracy, one histogram per SAE."""
    results = ev.results(hook, "autointerp")
    if not results:
        return None
    fig = go.Figure()
    for name, res in results.items():
        values = [v for v in (res.get("per_latent") or {}).get("balanced_accuracy", []) if v is not None]
        fig.add_histogram(x=values, name=label(name), opacity=0.55, marker_color=arch_color(name),
                          xbins={"start": 0, "end": 1.0001, "size": 0.05})
    fig.add_vline(x=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(barmode="overlay", xaxis_title="detection balanced accuracy (held-out tokens)",
                      yaxis_title="latents", height=340, title=f"Autointerp detection scores at {hook}")
    return fig


def pareto_figures(ev: EvalsData) -> list[go.Figure]:
    """One Pareto plot per quantity the sweep has (metric vs L0, a line per architecture)."""
    from superscope.analyses.evals.sweep import pareto_figure

    points = ev.sweep_points()
    return [pareto_figure(points, key) for key in PARETO if any(p.get(key) is not None for p in points)]


def detail_figures(ev: EvalsData, hook: str) -> list[go.Figure]:
    figs = [probing_figure(ev, hook), absorption_figure(ev, hook), split_latents_figure(ev, hook),
            autointerp_figure(ev, hook)]
    return [f for f in figs if f is not None]


def add_evals(page: Page, data: RunData, cfg) -> None:
    s = page.section("evals", "Evaluation suite")
    ev = load_evals(data.root)
    if ev.empty:
        s.parts.append(note(f"No evaluation results (evals/ is empty): run `superscope evals {data.root}` "
                            "(or `superscope run`, which runs the quick version)."))
        return
    s.parts.append(caption(INTRO))
    for hook in ev.hooks:
        s.parts.append(f"<h3>SAE × metric at {html.escape(hook)}</h3>")
        for metric in ev.metrics:
            rows = ev.table_rows(hook, label=label, metrics=[metric])
            if any(len(r) > 1 for r in rows):
                s.parts.append(f"<h4>{html.escape(METRIC_TITLES.get(metric, metric))}</h4>" + table(rows))
    if ev.sweep:
        s.parts.append("<h3>L0 sweep: metrics against L0</h3>")
        s.parts.append(caption("Each architecture trained at several k on the same cached activations (short budget, "
                               "see analyses/evals/sweep.py); one line per architecture, one point per k."))
        s.parts += [page.figure(f) for f in pareto_figures(ev)]
    else:
        s.parts.append(hint(f"No L0 sweep: `superscope evals {data.root} --sweep` trains one (minutes per SAE)."))
    hook = data.main_hook if data.main_hook in ev.hooks else (ev.hooks[-1] if ev.hooks else None)
    if hook is not None:
        figs = detail_figures(ev, hook)
        if ev.results(hook, "absorption"):
            s.parts.append(hint(ABSORPTION_CAVEAT))
        s.parts += [page.figure(f) for f in figs]
    if ev.errors():
        s.parts.append(note("Failed: " + "; ".join(ev.errors())))
    if ev.unreadable:
        s.parts.append(note("Unreadable: " + "; ".join(ev.unreadable)))
