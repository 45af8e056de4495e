"""TopK vs Feature Choice vs Mutual Choice: the headline table and its figures (report and dashboard).

All numbers come from each SAE's metrics.json (saes.evaluate: FVU, L0 distribution, dead / dense
fractions, log-density histogram; saes.model_metrics: CE-loss recovered and KL when spliced into the
model) and train_log.jsonl. FC / MC are evaluated twice: in their training ("batch") mode and with
their learned thresholds ("threshold" mode, per token).
"""

from __future__ import annotations

import itertools
import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from superscope.analyses.runs.data import RunData, arch_key, hook_layer
from superscope.saes.registry import arch_color, arch_label, known_architectures, sae_class


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and v is not None else math.nan


def _fixed_l0(arch: str) -> bool:
    """A row-local variant (TopK) keeps k features on every token: its L0 histogram is one bar."""
    return arch in known_architectures() and not sae_class(arch).batch_dependent


def comparison_rows(data: RunData, hook: str) -> list[dict]:
    """One row per architecture at ``hook``: FVU, L0 mean ± std, dead in training % (the training rule),
    silent on held-out % (no fire on the eval tokens: rare features count too), dense %, CE recovered, KL, …"""
    rows = []
    for e in data.at(hook):
        ev, sp = e.eval, e.splice
        thr = (e.metrics or {}).get("eval_threshold_mode") or {}
        rows.append({
            "architecture": arch_label(e.arch), "FVU": _num(ev.get("fvu")),
            "L0 mean": _num(ev.get("l0_mean")), "L0 std": _num(ev.get("l0_std")),
            "dead in training %": 100 * _num(ev.get("dead_train_frac")),
            "silent on held-out %": 100 * _num(ev.get("dead_frac")), "dense %": 100 * _num(ev.get("dense_frac")),
            "CE recovered": _num(sp.get("ce_loss_recovered")), "KL": _num(sp.get("kl_div")),
            "FVU (threshold)": _num(thr.get("fvu")), "L0 (threshold)": _num(thr.get("l0_mean")),
            "train s": _num((e.metrics or {}).get("train_seconds")),
            "eval tokens": ev.get("n_tokens"), "note": e.error or "",
        })
    return rows


def metrics_figure(data: RunData, hook: str) -> go.Figure:
    """Bars per architecture: FVU, CE-loss recovered, KL, dead in training %."""
    panels = (("FVU", "fvu", "eval", 1), ("CE-loss recovered", "ce_loss_recovered", "splice", 1),
              ("KL(clean ‖ spliced)", "kl_div", "splice", 1), ("dead in training %", "dead_train_frac", "eval", 100))
    fig = make_subplots(rows=1, cols=4, subplot_titles=[p[0] for p in panels])
    entries = data.at(hook)
    for c, (_, key, part, scale) in enumerate(panels, start=1):
        ys = [scale * _num(getattr(e, part).get(key)) for e in entries]
        fig.add_bar(x=[arch_label(e.arch) for e in entries], y=ys, showlegend=False,
                    marker_color=[arch_color(e.arch) for e in entries],
                    text=[f"{y:.3g}" if not math.isnan(y) else "n/a" for y in ys], textposition="outside", row=1, col=c)
    fig.update_layout(title=f"SAE comparison at {hook} (held-out tokens)", height=360,
                      margin={"t": 70, "b": 40, "l": 40, "r": 20})
    return fig


def l0_figure(data: RunData, hook: str) -> go.Figure:
    """Per-token L0 distributions (share of tokens with exactly L0 active features), per architecture;
    dashed: FC / MC with their inference thresholds."""
    fig = go.Figure()
    for e in data.at(hook):
        for key, dash, suffix in (("eval", "solid", ""), ("eval_threshold_mode", "dash", " (threshold)")):
            hist = ((e.metrics or {}).get(key) or {}).get("l0_hist")
            if not hist:
                continue
            total = sum(hist) or 1
            if _fixed_l0(e.arch) and key == "eval":
                fig.add_bar(x=list(range(len(hist))), y=[h / total for h in hist], name=arch_label(e.arch),
                            opacity=0.5, marker_color=arch_color(e.arch))
                continue
            fig.add_scatter(x=list(range(len(hist))), y=[h / total for h in hist], mode="lines",
                            name=arch_label(e.arch) + suffix,
                            line={"color": arch_color(e.arch), "dash": dash})
    fig.update_layout(title=f"Per-token L0 at {hook}: TopK is fixed at k, FC / MC allocate adaptively",
                      xaxis_title="active features on a token (L0)", yaxis_title="share of tokens", height=380)
    return fig


def density_figure(data: RunData, hook: str) -> go.Figure:
    """log10 firing-density histograms of the features that fired."""
    fig = go.Figure()
    for e in data.at(hook):
        edges, hist = e.eval.get("log_density_edges"), e.eval.get("log_density_hist")
        if not edges or not hist:
            continue
        centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        fig.add_scatter(x=centers, y=hist, mode="lines+markers", name=arch_label(e.arch),
                        line={"color": arch_color(e.arch)})
    fig.update_layout(title=f"Feature firing density at {hook}", xaxis_title="log10 firing frequency",
                      yaxis_title="features", height=340)
    return fig


def training_figure(data: RunData, hook: str) -> go.Figure:
    """Training FVU against tokens seen (train_log.jsonl)."""
    fig = go.Figure()
    for e in data.at(hook):
        log = [r for r in e.train_log if "tokens" in r and "fvu" in r]
        if log:
            fig.add_scatter(x=[r["tokens"] for r in log], y=[r["fvu"] for r in log], mode="lines+markers",
                            name=arch_label(e.arch), line={"color": arch_color(e.arch)})
    fig.update_layout(title=f"Training FVU at {hook}", xaxis_title="training tokens", yaxis_title="FVU",
                      height=320)
    return fig


def sweep_figure(data: RunData) -> go.Figure:
    """Held-out FVU and dead-in-training % per layer, one line per architecture (the layer sweep)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("FVU per layer (held-out)", "dead in training % per layer"))
    archs = sorted({e.arch for e in data.saes}, key=arch_key)
    for arch in archs:
        pts = sorted(((hook_layer(e.hook), e.eval) for e in data.saes if e.arch == arch and e.eval),
                     key=lambda t: t[0])
        for col, key, scale in ((1, "fvu", 1), (2, "dead_train_frac", 100)):
            fig.add_scatter(x=[p[0] for p in pts], y=[scale * _num(p[1].get(key)) for p in pts], mode="lines+markers",
                            name=arch_label(arch), legendgroup=arch, showlegend=col == 1,
                            line={"color": arch_color(arch)}, row=1, col=col)
    fig.update_xaxes(title_text="layer")
    fig.update_layout(height=340, title="Layer sweep")
    return fig
