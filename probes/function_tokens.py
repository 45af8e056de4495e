"""Function tokens and the token–feature bipartite graph (Zhang, Lin, Li 2025; specs/probes.md §2).

Edge (t, f) when SAE feature f fires (z > 0) on at least one occurrence of token id t. Metrics:
- degree of each token (distinct features it activates) vs its frequency rank, with the power-law
  slope fitted on log-log axes;
- cumulative coverage: the fraction of all active features adjacent to at least one of the top-k
  tokens, k = 1…100 (tokens ranked by frequency, or by degree);
- the share of active features touched by function tokens (the most frequent ids covering 40 % of
  occurrences) vs content tokens, and by a linguistic function-word list for comparison.
The paper's table (top-k coverage per layer) and next-token loss split live in
`_function_token_tables.py` and `transition_loss.py` and are re-exported here.

Letters: B tokens in a batch, F SAE features, T distinct token ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from superscope.saes.result_repr import Headline, ResultRepr

from ._codes import _as_tensor, encode_stream, sae_config, sae_dims
from ._function_token_tables import PAPER_COVERAGE, CoverageTable, coverage_table  # noqa: F401 (re-export)
from ._function_words import (  # noqa: F401
    FUNCTION_WORDS,
    frequency_function_tokens,
    linguistic_function_tokens,
)
from ._token_graph import BuiltGraph, TokenFeatureGraphBuilder
from .estimators import PowerLawFit, fit_power_law
from .result_files import json_safe
from .transition_loss import (  # noqa: F401
    PAPER_TRANSITION_LOSS,
    TransitionLoss,
    loss_by_transition,
    next_token_losses,
)


@dataclass(frozen=True, eq=False, repr=False)
class FunctionTokenGraph(ResultRepr):
    """Token–feature graph of one SAE on one token stream, and its summary metrics."""

    d_sae: int  # F
    n_occurrences: int  # tokens streamed
    n_edges: int  # distinct (token, feature) pairs
    n_active_features: int  # features adjacent to at least one token
    token_ids: np.ndarray  # [T] token ids sorted by frequency (rank 1 first)
    counts: np.ndarray  # [T] occurrences, same order
    degrees: np.ndarray  # [T] distinct features activated, same order
    degree_fit: PowerLawFit | None  # log degree vs log frequency rank
    rank_by: str  # how the top-k tokens for coverage are chosen: "frequency" or "degree"
    coverage: tuple[float, ...]  # coverage[k-1] = fraction of active features touched by the top-k tokens
    function_coverage: float  # occurrence share that defines the function-token set (0.4 in the paper)
    function_ids: tuple[int, ...]  # frequency-defined function tokens
    function_occurrence_share: float  # occurrences they actually cover (≥ function_coverage)
    shares: dict  # {set name: {"function": share of active features, "content": ..., "both": ...}}
    labels: tuple[str, ...] = ()  # decoded strings of the first tokens by rank (when a decoder was given)
    graph: Any = field(default=None, repr=False)  # scipy CSR [T, F] binary, rows in `token_ids` order
    label: str = ""  # e.g. "blocks.3.hook_resid_post/topk"
    sae_config: dict = field(default_factory=dict)  # configuration of the SAE measured

    def to_dict(self, max_tokens: int = 2000) -> dict:
        """JSON-safe summary; per-token arrays truncated to the `max_tokens` most frequent tokens."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("graph", "degree_fit")}
        for k in ("token_ids", "counts", "degrees"):
            out[k] = getattr(self, k)[:max_tokens]
        out["n_distinct_tokens"] = int(self.token_ids.size)
        out["degree_fit"] = self.degree_fit.to_dict() if self.degree_fit else None
        out["function_ids"] = list(self.function_ids)
        return json_safe(out)

    def headline(self) -> list[Headline]:
        share = self.shares.get("frequency", {})
        top10 = self.coverage[min(10, len(self.coverage)) - 1] if self.coverage else None
        return [("label", self.label or "—", "text"), ("tokens streamed", self.n_occurrences, "count"),
                ("distinct tokens", self.token_ids.size, "count"), ("edges", self.n_edges, "count"),
                ("active features", self.n_active_features, "count"), ("d_sae", self.d_sae, "count"),
                ("degree slope", self.degree_fit.slope if self.degree_fit else None, "num"),
                (f"top-{min(10, len(self.coverage))} coverage ({self.rank_by})", top10, "pct"),
                ("function tokens", len(self.function_ids), "count"),
                ("features touched by function tokens", share.get("function"), "pct"),
                ("by content tokens", share.get("content"), "pct")]

    def figure(self) -> go.Figure:
        """Degree vs frequency rank (log-log, with the fit) and cumulative coverage by the top-k tokens."""
        fig = make_subplots(rows=1, cols=2, subplot_titles=("token degree vs frequency rank",
                                                              f"features covered by top-k tokens (by {self.rank_by})"))
        ranks = np.arange(1, self.degrees.size + 1)
        hover = list(self.labels) + [""] * (ranks.size - len(self.labels))
        fig.add_scatter(x=ranks, y=self.degrees, mode="markers", marker_size=3, name="degree", text=hover, row=1, col=1)
        if self.degree_fit is not None:
            fit = self.degree_fit
            fig.add_scatter(x=ranks, y=np.exp(fit.intercept) * ranks ** fit.slope, mode="lines",
                            name=f"fit slope {fit.slope:.2f}", row=1, col=1)
        ks = np.arange(1, len(self.coverage) + 1)
        fig.add_scatter(x=ks, y=np.asarray(self.coverage) * 100, mode="lines+markers", name="coverage %", row=1, col=2)
        fig.update_xaxes(type="log", title_text="frequency rank", row=1, col=1)
        fig.update_yaxes(type="log", title_text="distinct features", row=1, col=1)
        fig.update_xaxes(title_text="k", row=1, col=2)
        fig.update_yaxes(title_text="% of active features", row=1, col=2)
        share = self.shares.get("frequency", {})
        fig.update_layout(title=f"Function tokens {self.label}: function tokens touch {share.get('function', 0):.0%},"
                                f" content tokens {share.get('content', 0):.0%} of features")
        return fig


def _coverage_curve(edges, order: np.ndarray, n_active: int, k_max: int) -> tuple[float, ...]:
    """coverage[k-1] = |∪_{r<k} N(order[r])| / n_active for k = 1…k_max."""
    covered = np.zeros(edges.shape[1], dtype=bool)
    out = []
    for row in order[:k_max]:
        covered[edges.indices[edges.indptr[row]:edges.indptr[row + 1]]] = True
        out.append(covered.sum() / n_active if n_active else 0.0)
    return tuple(float(c) for c in out)


def _touched(edges, rows: np.ndarray) -> np.ndarray:
    """Bool `[F]`: features adjacent to at least one of the selected rows (`rows`: bool `[T]`).

    One sparse vector–matrix product (edge counts per feature, int32: no overflow) instead of
    materialising the selected rows."""
    return (rows.astype(np.int32) @ edges) > 0


def _shares(edges, is_function: np.ndarray, n_active: int) -> dict:
    """Share of active features touched by function rows, by content rows, and by both."""
    touched_f = _touched(edges, is_function)
    touched_c = _touched(edges, ~is_function)
    d = max(n_active, 1)
    return {"function": touched_f.sum() / d, "content": touched_c.sum() / d, "both": (touched_f & touched_c).sum() / d,
            "n_function_tokens": int(is_function.sum())}


def summarize_graph(built: BuiltGraph, *, function_coverage: float = 0.4, top_k: int = 100,
                    rank_by: Literal["frequency", "degree"] = "frequency",
                    linguistic_ids: Mapping[str, Iterable[int]] | Iterable[int] | None = None,
                    decode: Callable[[int], str] | None = None, n_labels: int = 200, label: str = "",
                    sae_cfg: dict | None = None) -> FunctionTokenGraph:
    """Metrics of a built graph (see module docstring)."""
    if rank_by not in ("frequency", "degree"):
        raise ValueError(f"rank_by must be 'frequency' or 'degree', got {rank_by!r}")
    order = np.lexsort((built.token_ids, -built.counts))  # frequency rank, ties by id
    edges = built.edges.tocsr()[order]
    ids, counts = built.token_ids[order], built.counts[order]
    degrees = np.diff(edges.indptr).astype(np.int64)
    n_active = int(_touched(edges, np.ones(edges.shape[0], dtype=bool)).sum())
    ranks = np.arange(1, ids.size + 1)
    try:
        fit = fit_power_law(ranks, degrees)
    except ValueError:
        fit = None  # fewer than 3 tokens with a non-zero degree
    cov_order = np.arange(ids.size) if rank_by == "frequency" else np.lexsort((ranks, -degrees))
    coverage = _coverage_curve(edges, cov_order, n_active, top_k)
    fn_ids, fn_share = frequency_function_tokens(ids, counts, function_coverage)
    shares = {"frequency": _shares(edges, np.isin(ids, fn_ids), n_active)}
    if linguistic_ids is not None:
        groups = linguistic_ids if isinstance(linguistic_ids, Mapping) else {"linguistic": linguistic_ids}
        all_ids = np.unique(np.concatenate([np.asarray(list(v), dtype=np.int64) for v in groups.values()] or [[]]))
        shares["linguistic"] = _shares(edges, np.isin(ids, all_ids), n_active)
    labels = tuple(decode(int(t)) for t in ids[:n_labels]) if decode is not None else ()
    return FunctionTokenGraph(
        d_sae=edges.shape[1], n_occurrences=int(counts.sum()), n_edges=int(edges.nnz), n_active_features=n_active,
        token_ids=ids, counts=counts, degrees=degrees, degree_fit=fit, rank_by=rank_by, coverage=coverage,
        function_coverage=function_coverage, function_ids=tuple(int(t) for t in fn_ids),
        function_occurrence_share=fn_share, shares=json_safe(shares), labels=labels, graph=edges, label=label,
        sae_config=dict(sae_cfg or {}))


def function_token_graph_from_codes(pairs: Iterable[tuple[Any, Any]], d_sae: int, *, sign_check: str = "first",
                                    **summary_kwargs: Any) -> FunctionTokenGraph:
    """Token–feature graph from precomputed `(token_ids [B], codes [B, d_sae])` pairs, in one streaming pass.

    Codes may be dense, `sae(x).codes` (the kernels' CSR SparseCodes) or another sparse form (see
    `_codes.as_codes`). Keyword arguments go to `summarize_graph`.
    """
    builder = TokenFeatureGraphBuilder(d_sae, sign_check=sign_check)
    for token_ids, codes in pairs:
        builder.add(token_ids, codes)
    return summarize_graph(builder.build(), **summary_kwargs)


def function_token_graph(sae: Any, pairs: Iterable[tuple[Any, Any]], *, max_tokens: int | None = None,
                         **summary_kwargs: Any) -> FunctionTokenGraph:
    """Token–feature graph of `sae` over `(token_ids [B], activations [B, d_in])` pairs."""
    d_in, d_sae = sae_dims(sae)

    def encoded():
        seen = 0
        for token_ids, acts in pairs:
            tok = _as_tensor(token_ids, "token_ids").reshape(-1)
            if max_tokens is not None:
                tok = tok[: max(0, max_tokens - seen)]
            if tok.numel() == 0:
                break
            acts = _as_tensor(acts, "activations").reshape(-1, acts.shape[-1])[: tok.numel()]
            for z in encode_stream(sae, [acts], d_in):
                yield tok, z
            seen += tok.numel()

    summary_kwargs.setdefault("sae_cfg", sae_config(sae))
    return function_token_graph_from_codes(encoded(), d_sae, **summary_kwargs)
