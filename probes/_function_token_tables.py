"""The paper-shaped coverage table: features covered by the top-1/2/3/4/10 tokens, per layer.

Zhang, Lin, Li 2025 report, for Gemma2-9B with Gemma Scope 1M-wide SAEs, that the top-10 tokens
cover 48.5 % / 76.5 % / 68.3 % of features at layers 9 / 20 / 31 and that `.` alone covers
23 % / 51 % / 37 % (specs/probes.md §2). Only those numbers are quoted; the other cells of the
paper's table are not available to us and are left empty rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from superscope.saes.result_repr import ResultRepr

PAPER_COVERAGE: dict[str, Any] = {
    "source": "Zhang, Lin, Li 2025, Gemma2-9B with Gemma Scope 1M-wide SAEs",
    "layers": {9: {"top-10": 48.5, "'.' alone": 23.0}, 20: {"top-10": 76.5, "'.' alone": 51.0},
               31: {"top-10": 68.3, "'.' alone": 37.0}},
}


@dataclass(frozen=True, repr=False)
class CoverageTable(ResultRepr):
    """Coverage (% of active features) by the top-k tokens, one row per layer, with the paper alongside."""

    ks: tuple[int, ...]  # the k of each column, e.g. (1, 2, 3, 4, 10)
    rows: tuple[dict, ...]  # {"layer": name, "top-1": %, ..., "top-1 token": label or id}
    paper: tuple[dict, ...]  # {"layer": "Gemma2-9B L9", "top-10": 48.5, "'.' alone": 23.0}
    rank_by: str  # how tokens were ranked ("frequency" or "degree")

    def columns(self) -> list[str]:
        return ["layer"] + [f"top-{k}" for k in self.ks] + ["top-1 token", "'.' alone"]

    def headline(self) -> list:
        return [("layers", len(self.rows), "count"), ("top-k", ", ".join(map(str, self.ks)), "text"),
                ("ranked by", self.rank_by, "text")]

    def to_dict(self) -> dict:
        return {"ks": list(self.ks), "rows": [dict(r) for r in self.rows], "paper": [dict(r) for r in self.paper],
                "rank_by": self.rank_by, "source": PAPER_COVERAGE["source"]}

    def markdown(self) -> str:
        """The table as GitHub markdown: measured rows first, then the paper's rows."""
        cols = self.columns()
        def fmt(v):
            return "" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in list(self.rows) + list(self.paper):
            lines.append("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
        return "\n".join(lines)

    def figure(self) -> go.Figure:
        """A plotly table of the same content."""
        cols = self.columns()
        rows = list(self.rows) + list(self.paper)
        cells = [[("" if r.get(c) is None else (f"{r[c]:.1f}" if isinstance(r[c], float) else r[c])) for r in rows]
                 for c in cols]
        fig = go.Figure(go.Table(header={"values": cols}, cells={"values": cells}))
        fig.update_layout(title=f"Features covered by the top-k tokens (ranked by {self.rank_by}), %")
        return fig


def coverage_table(results: Mapping[Any, Any], ks: Sequence[int] = (1, 2, 3, 4, 10)) -> CoverageTable:
    """Build the table from FunctionTokenGraph results keyed by layer (name or index)."""
    if not results:
        raise ValueError("coverage_table needs at least one FunctionTokenGraph result")
    rows = []
    rank_by = None
    for layer, res in results.items():
        rank_by = rank_by or res.rank_by
        if max(ks) > len(res.coverage):
            raise ValueError(f"k={max(ks)} exceeds the {len(res.coverage)} coverage points of layer {layer}; raise top_k")
        row: dict[str, Any] = {"layer": str(layer)}
        row.update({f"top-{k}": 100.0 * res.coverage[k - 1] for k in ks})
        first = res.labels[0] if res.labels else int(res.token_ids[0])
        row["top-1 token"] = repr(first) if isinstance(first, str) else first
        row["'.' alone"] = _dot_share(res)
        rows.append(row)
    paper = tuple({"layer": f"paper L{layer}", **vals} for layer, vals in PAPER_COVERAGE["layers"].items())
    return CoverageTable(tuple(ks), tuple(rows), paper, rank_by or "frequency")


def _dot_share(res: Any) -> float | None:
    """% of active features adjacent to the token decoded as '.' (None when no labels were decoded)."""
    for i, text in enumerate(res.labels):
        if text.strip() == "." and res.graph is not None and res.n_active_features:
            return 100.0 * res.degrees[i] / res.n_active_features
    return None
