"""Figures and tables of the probe results in a run folder (probes/*.json), for report and dashboard.

superposition_entropy.json: per (hook, architecture) F_eff = exp(H) of the feature-mass distribution
and ψ = F_eff / N (N neurons at the site), with bootstrap CIs and a convergence curve.
function_tokens.json: per hook the token–feature graph summary of one architecture (degree vs
frequency rank, coverage of features by the top-k tokens), the coverage table with the paper's rows,
and the next-token loss split by function / content transitions.
bfs.json: ``BFSProbeResult.to_dict()`` from ``superscope bfs probe --run``.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from superscope.analyses.runs.data import arch_key, hook_layer
from superscope.analyses.runs.formatting import fmt_ci, fmt_num
from superscope.saes.registry import arch_color, arch_label


def _label(arch: str) -> str:
    return arch_label(arch)


def entropy_rows(d: dict) -> list[dict]:
    """Table rows: layer, architecture, F_eff, ψ with its CI, alive features, tokens."""
    rows = []
    for r in sorted(d.get("results", []), key=lambda r: (hook_layer(r["hook"]), arch_key(r["architecture"]))):
        ci = r.get("psi_ci") or [None, None]
        rows.append({"hook": r["hook"], "architecture": _label(r["architecture"]), "F_eff": r.get("f_eff"),
                     "ψ": r.get("psi"), "ψ CI low": ci[0], "ψ CI high": ci[1], "alive": r.get("n_alive"),
                     "d_sae": r.get("d_sae"), "tokens": r.get("n_tokens")})
    return rows


def psi_figure(d: dict) -> go.Figure:
    """ψ = F_eff / N per layer, one line per architecture, with bootstrap CIs."""
    fig = go.Figure()
    by_arch: dict[str, list[dict]] = {}
    for r in d.get("results", []):
        by_arch.setdefault(r["architecture"], []).append(r)
    for arch in sorted(by_arch, key=arch_key):
        rs = sorted(by_arch[arch], key=lambda r: hook_layer(r["hook"]))
        psi = [r.get("psi") for r in rs]
        layers = [hook_layer(r["hook"]) for r in rs]
        fig.add_scatter(x=layers, y=psi, mode="lines+markers", name=_label(arch), legendgroup=arch,
                        line={"color": arch_color(arch)})
        # The interval as its own segments: the bias-corrected (basic) bootstrap interval need not
        # contain ψ̂ (it can lie wholly above it), so it cannot be drawn as error bars around ψ̂.
        seg_x, seg_y = [], []
        for x, r in zip(layers, rs):
            if r.get("psi_ci"):
                seg_x += [x, x, None]
                seg_y += [r["psi_ci"][0], r["psi_ci"][1], None]
        if seg_x:
            fig.add_scatter(x=seg_x, y=seg_y, mode="lines+markers", legendgroup=arch, showlegend=False,
                            name=f"{_label(arch)} 95 % CI", line={"color": arch_color(arch), "width": 1},
                            marker={"symbol": "line-ew-open", "size": 10}, hoverinfo="y")
    n = d.get("n_neurons") or next((r.get("n_neurons") for r in d.get("results", [])), None)
    fig.update_layout(title=f"Superposition ψ = F_eff / N per layer (N = {n} neurons)", xaxis_title="layer",
                      yaxis_title="ψ (effective features per neuron)", height=380)
    return fig


def convergence_figure(d: dict) -> go.Figure:
    """F_eff against tokens seen, per (layer, architecture): has the estimate converged?"""
    fig = go.Figure()
    for r in sorted(d.get("results", []), key=lambda r: (hook_layer(r["hook"]), arch_key(r["architecture"]))):
        if r.get("curve_tokens"):
            fig.add_scatter(x=r["curve_tokens"], y=r["curve_f_eff"], mode="lines+markers",
                            name=f"L{hook_layer(r['hook'])} {_label(r['architecture'])}",
                            line={"color": arch_color(r["architecture"])})
    fig.update_layout(title="Convergence of F_eff with tokens seen", xaxis_title="tokens", xaxis_type="log",
                      yaxis_title="F_eff", height=360)
    return fig


def coverage_rows(ft: dict) -> list[dict]:
    """The coverage table (% of active features touched by the top-k tokens) with the paper's rows."""
    table = ft.get("coverage_table") or {}
    rows = [dict(r) for r in table.get("rows", [])]
    rows += [{**r, "layer": str(r.get("layer")) if "paper" in str(r.get("layer")) else f"{r.get('layer')} (paper)"}
             for r in table.get("paper", [])]
    return rows


def _graphs(ft: dict) -> list[tuple[str, dict]]:
    return sorted((ft.get("graphs") or {}).items(), key=lambda kv: hook_layer(kv[0]))


def coverage_figure(ft: dict) -> go.Figure:
    """Cumulative coverage of active features by the top-k tokens, one curve per layer."""
    fig = go.Figure()
    for hook, g in _graphs(ft):
        cov = g.get("coverage") or []
        fig.add_scatter(x=list(range(1, len(cov) + 1)), y=[100 * c for c in cov], mode="lines",
                        name=f"layer {hook_layer(hook)}")
    fig.update_layout(title=f"Features covered by the top-k tokens ({_label(ft.get('architecture', ''))} SAEs)",
                      xaxis_title="k (tokens by frequency rank)", yaxis_title="% of active features",
                      xaxis_type="log", height=360)
    return fig


def log_spaced_indices(n: int, head: int = 200, max_points: int = 600) -> np.ndarray:
    """Indices 0…n-1 to draw on a log-x axis: all of the first ``head``, then log-spaced (at most
    ``max_points`` in all), always including the last. Beyond the head the markers would overlap."""
    if n <= max_points:
        return np.arange(n)
    tail = np.unique(np.geomspace(head, n - 1, max_points - head).astype(int))
    return np.concatenate([np.arange(head), tail])


def degree_figure(ft: dict) -> go.Figure:
    """Token degree (distinct features it activates) against frequency rank, log-log, with power-law fits.

    Every token of the first 50 ranks is drawn, then a log-spaced subset, at most 150 points a layer (the
    page stays light with tens of thousands of tokens: each marker is an SVG element); the fitted line is
    exact on log-log axes from its two ends."""
    fig = go.Figure()
    for hook, g in _graphs(ft):
        deg = np.asarray(g.get("degrees") or [], dtype=float)
        labels = list(g.get("labels") or [])
        idx = log_spaced_indices(deg.size, head=50, max_points=150)  # ≤ 150 markers a layer: SVG stays light
        fig.add_scatter(x=idx + 1, y=deg[idx], mode="markers", marker_size=4, name=f"layer {hook_layer(hook)}",
                        text=[repr(labels[i]) if i < len(labels) else "" for i in idx])
        fit = g.get("degree_fit")
        if fit and deg.size:
            ends = np.array([1, deg.size])
            fig.add_scatter(x=ends, y=np.exp(fit["intercept"]) * ends ** fit["slope"], mode="lines",
                            name=f"L{hook_layer(hook)} fit slope {fit['slope']:.2f}", line={"dash": "dot"})
    fig.update_layout(title="Token degree vs frequency rank",
                      xaxis={"type": "log", "title": "frequency rank"}, yaxis={"type": "log", "title": "distinct features"},
                      height=380)
    return fig


def loss_split_figure(ft: dict) -> go.Figure:
    """Mean next-token loss by transition type, ours beside the paper's."""
    split = ft.get("loss_split") or {}
    kinds = list((split.get("mean_loss") or {}).keys())
    fig = go.Figure()
    fig.add_bar(x=kinds, y=[split["mean_loss"][k] for k in kinds], name="this model",
                text=[f"n={split.get('counts', {}).get(k, '')}" for k in kinds], textposition="outside")
    paper = split.get("paper") or {}
    fig.add_bar(x=kinds, y=[paper.get(k) for k in kinds], name="paper (1.5B model)", opacity=0.6)
    fig.update_layout(title="Next-token loss by transition (function / content)", yaxis_title="mean loss (nats)",
                      barmode="group", height=360)
    return fig


def shares_rows(ft: dict) -> list[dict]:
    """Per layer: share of active features reached by function tokens, by content tokens, by both."""
    rows = []
    for hook, g in _graphs(ft):
        for name, s in (g.get("shares") or {}).items():
            rows.append({"hook": hook, "function set": name, "function tokens": s.get("n_function_tokens"),
                         "function %": 100 * s.get("function", math.nan), "content %": 100 * s.get("content", math.nan),
                         "both %": 100 * s.get("both", math.nan)})
    return rows


# The BFS score gaps, most informative first. With the tied LM head ⟨t_i, E[v]⟩ is the logit the
# curriculum trains towards Optimal(i), so optimal − frontier is partly built in (probes/bfs/README.md).
BFS_GAPS = (("frontier", "reachable", "frontier − reachable"),
            ("reachable", "not_reachable", "reachable − not reachable"),
            ("optimal", "frontier", "optimal − frontier (built in)"))


def bfs_gap_rows(r) -> list[dict]:
    """Per step: the score gaps with 95 % CIs, Frontier > Reachable > Not reachable first."""
    rows = []
    for step in r.steps:
        row: dict = {"step": step}
        for upper, lower, name in BFS_GAPS:
            g = next((g for g in r.score_gaps if g.step == step and g.upper == upper and g.lower == lower), None)
            row[name] = f"{fmt_num(g.gap)} {fmt_ci(g.ci_low, g.ci_high)}" if g else "–"
        rows.append(row)
    return rows


def bfs_result(d: dict):
    """``BFSProbeResult`` from bfs.json (raises ValueError with the reason if it does not parse)."""
    from superscope.probes.bfs.probe import BFSProbeResult
    try:
        return BFSProbeResult.from_dict(d)
    except (KeyError, TypeError) as err:
        raise ValueError(f"probes/bfs.json is not a BFS probe result ({err!r}); rerun `superscope bfs probe --run`") from None
