"""Plotly figures of the BFS probe: score histograms, the example graph per step, edge attention.

Each takes the data it draws (the fields of a BFSProbeResult), not the result itself, so this module
does not depend on probe.py (whose result methods call these).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .stats import GroupStat, Histogram

COLORS = {"optimal": "#d62728", "frontier": "#ff7f0e", "reachable": "#2ca02c", "not_reachable": "#7f7f7f"}


def histogram_figure(steps: Sequence[int], histograms: Sequence[Histogram]) -> go.Figure:
    """One panel per thought step: overlaid histograms (densities) of ⟨t_i, E[v]⟩ per group."""
    fig = make_subplots(rows=1, cols=len(steps), subplot_titles=[f"thought {s}" for s in steps],
                        shared_yaxes=False)
    for c, s in enumerate(steps, start=1):
        for h in (h for h in histograms if h.step == s):
            total = sum(h.counts) or 1
            centers = [(a + b) / 2 for a, b in zip(h.edges[:-1], h.edges[1:])]
            fig.add_trace(go.Bar(x=centers, y=[k / total for k in h.counts], name=h.group, legendgroup=h.group,
                                 marker_color=COLORS.get(h.group), opacity=0.6, showlegend=c == 1), row=1, col=c)
        fig.update_xaxes(title_text="⟨t_i, E[v]⟩", row=1, col=c)
    fig.update_layout(barmode="overlay", bargap=0, title="Continuous thought vs node embeddings, by BFS group",
                      yaxis_title="share of nodes in group")
    return fig


def _layout(ex: dict) -> dict[int, tuple[float, float]]:
    """x = BFS distance from the root (unreachable nodes in a column of their own), y spread per column."""
    cols: dict[int, list[int]] = {}
    far = max(int(d) for d in ex["dist"].values()) + 2
    for v in ex["nodes"]:
        d = int(ex["dist"][str(v)])
        cols.setdefault(d if d >= 0 else far, []).append(v)
    pos = {}
    for x, vs in cols.items():
        for k, v in enumerate(sorted(vs)):
            pos[v] = (float(x), k - (len(vs) - 1) / 2)
    return pos


def graph_figure(ex: dict) -> go.Figure:
    """The example graph (BFSProbeResult.example); a slider walks the thought steps, node colour = ⟨t_i, E[v]⟩."""
    if not ex:
        raise ValueError("this probe result holds no example graph; rerun bfs_probe")
    pos = _layout(ex)
    ex_x, ex_y = [], []
    for s, t, *_ in ex["edges"]:
        ex_x += [pos[s][0], pos[t][0], None]
        ex_y += [pos[s][1], pos[t][1], None]
    vals = [v for step in ex["scores"].values() for v in step.values()]
    lo, hi = min(vals), max(vals)
    edges = go.Scatter(x=ex_x, y=ex_y, mode="lines", line=dict(color="#bbbbbb", width=1), hoverinfo="skip",
                       showlegend=False)
    frames, steps = [], sorted(ex["scores"], key=int)
    for s in steps:
        nodes = list(ex["nodes"])
        label = {ex["root"]: "root", ex["target"]: "target", ex["negative"]: "negative"}
        frames.append(go.Frame(name=s, data=[edges, go.Scatter(
            x=[pos[v][0] for v in nodes], y=[pos[v][1] for v in nodes], mode="markers+text",
            text=[f"{v}" + (f" ({label[v]})" if v in label else "") for v in nodes], textposition="top center",
            marker=dict(size=22, color=[ex["scores"][s][str(v)] for v in nodes], cmin=lo, cmax=hi,
                        colorscale="RdBu_r", colorbar=dict(title="score"), line=dict(width=1, color="black")),
            hovertext=[f"node {v}: {ex['groups'][s][str(v)]}, score {ex['scores'][s][str(v)]:.2f}" for v in nodes],
            hoverinfo="text", showlegend=False)]))
    fig = go.Figure(data=frames[0].data, frames=frames)
    fig.update_layout(
        title="Example graph: node colour = ⟨t_i, E[v]⟩ (x = BFS distance from the root; right column unreachable)",
        xaxis=dict(title="BFS distance", showgrid=False), yaxis=dict(visible=False),
        sliders=[dict(active=0, currentvalue=dict(prefix="thought "),
                      steps=[dict(label=s, method="animate", args=[[s], dict(mode="immediate")]) for s in steps])],
    )
    return fig


def attention_figure(groups: Sequence[str], attention: Sequence[GroupStat]) -> go.Figure:
    """Mean layer-2 attention on an edge, grouped by its source node's group, per step (95 % CI bars)."""
    fig = go.Figure()
    for g in groups:
        pts = [a for a in attention if a.group == g and a.n > 0 and not math.isnan(a.mean)]
        fig.add_trace(go.Bar(
            x=[f"thought {a.step}" for a in pts], y=[a.mean for a in pts], name=g, marker_color=COLORS.get(g),
            error_y=dict(type="data", symmetric=False, array=[a.ci_high - a.mean for a in pts],
                         arrayminus=[a.mean - a.ci_low for a in pts])))
    fig.update_layout(barmode="group", title="Layer-2 attention from the thought slot, per edge, by source group",
                      yaxis_title="attention mass per edge (mean over heads)")
    return fig
