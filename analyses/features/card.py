"""One feature, everything about it: ``FeatureCard`` (numbers, ``.figure()``, ``.html()``), shared by
the report's feature cards and the dashboard's feature browser. Token windows are rendered as HTML
with each token's background proportional to the feature's activation on it."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from superscope.analyses.runs.formatting import visible_token


@dataclass(frozen=True)
class Example:
    """One firing of the feature with the tokens around it."""

    tokens: tuple[str, ...]
    """Decoded tokens of the window (BOS included when in range)."""
    acts: tuple[float, ...]
    """The feature's activation on each token of the window (0 where it did not fire or is not a row)."""
    center: int
    """Index in ``tokens`` of the token the example is about."""
    act: float
    """Activation on that token."""
    row: int
    """Held-out row index (corpus order)."""


@dataclass(frozen=True)
class FeatureCard:
    """What the dashboard and the report show about one SAE feature."""

    hook: str
    architecture: str
    feature: int
    count: int
    """Held-out tokens it fired on."""
    density: float
    """count / held-out tokens."""
    mean_act: float
    """Mean activation when firing."""
    max_act: float
    hist_edges: tuple[float, ...]
    """Histogram bin edges (log-spaced) trimmed to the bins this feature uses."""
    hist_counts: tuple[int, ...]
    top: tuple[Example, ...]
    """Top activations, highest first."""
    bands: tuple[tuple[Example, ...], ...]
    """Examples per quantile band of its activation distribution (band 0 = highest quantile)."""
    band_edges: tuple[tuple[float, float], ...]
    """(highest, lowest) sampled activation of each band."""
    top_logits: tuple[tuple[str, float], ...]
    """Tokens whose logits it raises most (direct path), with the effect per unit activation."""
    bottom_logits: tuple[tuple[str, float], ...]
    neighbours: tuple[tuple[int, float], ...]
    """(feature, decoder cosine) of the nearest features."""

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def dead(self) -> bool:
        return self.count == 0

    def figure(self) -> go.Figure:
        """Activation histogram (log-spaced bins) beside the top / bottom logit effects."""
        fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45],
                            subplot_titles=("activation histogram", "logit effects"))
        if self.hist_counts:
            centers = [(a * b) ** 0.5 for a, b in zip(self.hist_edges[:-1], self.hist_edges[1:])]
            fig.add_bar(x=centers, y=list(self.hist_counts), name="firings", marker_color="#ff7f0e", row=1, col=1)
            fig.update_xaxes(type="log", title_text="activation", row=1, col=1)
            fig.update_yaxes(title_text="tokens", row=1, col=1)
        logits = list(self.bottom_logits[::-1]) + list(self.top_logits[::-1])
        if logits:
            fig.add_bar(y=list(range(len(logits))), x=[v for _, v in logits], orientation="h", name="logit effect",
                        marker_color=["#1f77b4" if v < 0 else "#d62728" for _, v in logits], row=1, col=2)
            fig.update_yaxes(tickvals=list(range(len(logits))), ticktext=[repr(visible_token(t)) for t, _ in logits],
                             row=1, col=2)
        fig.update_layout(height=360, showlegend=False, margin={"l": 40, "r": 10, "t": 80, "b": 40},
                          title=f"{self.hook} / {self.architecture} — feature {self.feature}")
        return fig

    def html(self, n_top: int = 8, bands: bool = True) -> str:
        """HTML block: stats line, top examples, then one line per quantile band."""
        if self.dead:
            return f"<p>feature {self.feature} never fired on the held-out tokens (dead).</p>"
        vmax = self.max_act or 1.0
        stats = (f"<p class='fstats'>fires on {self.count} tokens (density {self.density:.2e}), "
                 f"mean {self.mean_act:.3g}, max {self.max_act:.3g}</p>")
        parts = [stats, "<div class='examples'>"]
        parts += [example_html(ex, vmax) for ex in self.top[:n_top]]
        parts.append("</div>")
        if bands:
            for j, (band, (hi, lo)) in enumerate(zip(self.bands, self.band_edges)):
                if band:
                    parts.append(f"<div class='band'><b>quantile band {j + 1}</b> ({lo:.3g} – {hi:.3g})"
                                 + "".join(example_html(ex, vmax) for ex in band[:2]) + "</div>")
        return "\n".join(parts)


def example_html(ex: Example, vmax: float) -> str:
    """One window as inline spans; background opacity = activation / vmax, the centre token boxed."""
    spans = []
    for i, (tok, a) in enumerate(zip(ex.tokens, ex.acts)):
        alpha = max(0.0, min(1.0, a / vmax)) if vmax > 0 else 0.0
        style = f"background: rgba(255,127,14,{alpha:.2f});"
        if i == ex.center:
            style += " outline: 1px solid #333;"
        spans.append(f"<span class='tok' style='{style}' title='{a:.3g}'>{html.escape(visible_token(tok, spaces=False))}</span>")
    return f"<div class='ex'><span class='act'>{ex.act:.3g}</span> {''.join(spans)}</div>"


def build_card(data, f: int) -> FeatureCard:
    """Assemble the card of feature ``f`` from a ``FeatureData``."""
    a, idx = data.arrays, data.index
    W = idx["window"] * 2 + 1

    def examples(tokens_NW, win_NW, acts_N, rows_N) -> tuple[Example, ...]:
        out = []
        for toks, win, act, row in zip(tokens_NW.tolist(), win_NW.tolist(), acts_N.tolist(), rows_N.tolist()):
            if row < 0:
                continue
            keep = [i for i in range(W) if toks[i] >= 0]
            out.append(Example(tuple(data.token(toks[i]) for i in keep), tuple(float(win[i]) for i in keep),
                               keep.index(W // 2), float(act), int(row)))
        return tuple(out)

    top = examples(data.row("top_tokens_FKW", f), data.row("top_win_FKW", f), data.row("top_acts_FK", f),
                   data.row("top_rows_FK", f))
    b_tok, b_win = data.row("band_tokens_FBEW", f), data.row("band_win_FBEW", f)
    b_act, b_row = data.row("band_acts_FBE", f), data.row("band_rows_FBE", f)
    bands = tuple(examples(b_tok[j], b_win[j], b_act[j], b_row[j]) for j in range(b_act.shape[0]))
    hist = data.row("hist_FH", f).tolist()
    edges = a["hist_edges_H1"].tolist()
    used = [i for i, c in enumerate(hist) if c > 0]
    lo, hi = (used[0], used[-1] + 1) if used else (0, 0)

    def logits(kind: str) -> tuple[tuple[str, float], ...]:
        if f"logit_{kind}_ids_FL" not in a:
            return ()
        return tuple((data.token(i), float(v)) for i, v in zip(a[f"logit_{kind}_ids_FL"][f].tolist(),
                                                               a[f"logit_{kind}_vals_FL"][f].tolist()))

    nbrs = tuple((int(i), float(c)) for i, c in zip(a["neighbour_ids_FN"][f].tolist(), a["neighbour_cos_FN"][f].tolist())) \
        if "neighbour_ids_FN" in a else ()
    return FeatureCard(
        hook=idx["hook"], architecture=idx["architecture"], feature=int(f), count=int(a["count_F"][f]),
        density=float(a["density_F"][f]), mean_act=float(a["mean_act_F"][f]), max_act=float(a["max_act_F"][f]),
        hist_edges=tuple(edges[lo:hi + 1]) if used else (), hist_counts=tuple(hist[lo:hi]),
        top=top, bands=bands, band_edges=tuple(tuple(e) for e in data.row("band_edges_FB2", f).tolist()),
        top_logits=logits("top"), bottom_logits=logits("bot"), neighbours=nbrs)
