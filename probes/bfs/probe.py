"""The BFS-superposition probe on continuous thoughts (Zhu et al. 2025, Sec. 5, Figs. 4-6).

For every problem, thought step i = 1..hops and graph node v, the score ⟨t_i, E[v]⟩: the i-th
continuous thought (post-final-norm hidden state) against v's input embedding (= v's logit, the LM
head is tied). The groups at step i are the paper's (and the spec's) *nested* sets:
  optimal       Optimal(i): at distance i and on a shortest root→target path
  frontier      Frontier(i): at distance exactly i            (⊇ Optimal(i))
  reachable     Reachable(i): within i steps of the root      (⊇ Frontier(i))
  not_reachable everything else (farther than i, or not reachable at all)
so a node is counted in every group it belongs to. The paper's finding: optimal > frontier >
reachable ≫ not_reachable, i.e. t_i is a superposition of the BFS frontier.
`ProbeConfig.grouping = "disjoint"` instead puts each node in its most specific group only
(frontier \\ optimal, reachable = reached in fewer than i steps), which separates nodes that
were visited earlier from the frontier.
Second read-out: layer-2 attention from the slot that holds t_i (the query that expands
Frontier(i)) summed over each edge's three tokens "s t |" and averaged over heads, grouped by the
edge's *source* node the same way. Means get 95 % CIs from a bootstrap over problems.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch

from superscope.saes.result_repr import Headline, ResultRepr

from . import figures
from .coconut import coconut_forward, collate_prompts
from .generator import Problem
from .model import GPT
from .stats import GapStat, GroupStat, Histogram, bootstrap_group_stats, histograms
from .tokens import Vocab, encode_prompt

GROUPS = ("optimal", "frontier", "reachable", "not_reachable")


@dataclass
class ProbeConfig:
    """How the probe samples problems and summarises them."""

    n_problems: int = 500
    """Freshly generated problems to probe."""
    seed: int = 2024
    """Seed of those problems (keep it apart from training seeds)."""
    batch_size: int = 128
    """Problems per forward pass."""
    attn_layer: int = 1
    """Layer whose attention is read (0-based; the paper's "layer 2" is 1)."""
    n_bootstrap: int = 1000
    """Bootstrap resamples of problems for the confidence intervals."""
    level: float = 0.95
    """Confidence level."""
    n_bins: int = 40
    """Histogram bins per thought step."""
    grouping: Literal["nested", "disjoint"] = "nested"
    """nested: Optimal ⊆ Frontier ⊆ Reachable(i) as in the paper; disjoint: most specific group only."""

    def __post_init__(self) -> None:
        if self.n_problems < 2 or self.n_bootstrap < 10:
            raise ValueError("need n_problems >= 2 and n_bootstrap >= 10 for confidence intervals")
        if not 0.5 <= self.level < 1.0:
            raise ValueError("level must lie in [0.5, 1)")
        if self.grouping not in ("nested", "disjoint"):
            raise ValueError("grouping must be 'nested' or 'disjoint'")


def group_of(p: Problem, v: int, i: int) -> int:
    """Index into GROUPS of node v at thought step i (disjoint, most specific group)."""
    d = p.distance(v)
    if d == i:
        return 0 if v in p.optimal(i) else 1
    return 2 if 0 <= d < i else 3


def groups_of(p: Problem, v: int, i: int, grouping: str = "nested") -> tuple[int, ...]:
    """Indices into GROUPS of every group node v belongs to at step i (one index when disjoint)."""
    g = group_of(p, v, i)
    if grouping == "disjoint" or g >= 2:
        return (g,)
    return tuple(range(g, 3))  # optimal -> optimal, frontier, reachable; frontier -> frontier, reachable


@dataclass(frozen=True, repr=False)
class BFSProbeResult(ResultRepr):
    config: dict
    steps: tuple[int, ...]
    scores: tuple[GroupStat, ...]
    """Mean ⟨t_i, E[v]⟩ per (step, group) with CI."""
    score_gaps: tuple[GapStat, ...]
    """Adjacent-group differences (optimal−frontier, frontier−reachable, reachable−not_reachable)."""
    attention: tuple[GroupStat, ...]
    """Mean layer-2 attention mass per edge, by the group of the edge's source."""
    attention_gaps: tuple[GapStat, ...]
    histograms: tuple[Histogram, ...]
    example: dict = field(default_factory=dict)
    """One problem with its per-step node scores and edge attention (for the graph figure)."""
    groups: tuple[str, ...] = GROUPS

    @property
    def ordered(self) -> dict[int, bool]:
        """Per step: every adjacent score gap's CI lies above zero."""
        return {s: all(g.ci_low > 0 for g in self.score_gaps if g.step == s) for s in self.steps}

    def headline(self) -> list[Headline]:
        """Steps ordered, and per step the adjacent score gap whose CI lies lowest (the weakest link)."""
        weakest = [min((g for g in self.score_gaps if g.step == s), key=lambda g: g.ci_low, default=None)
                   for s in self.steps]
        return [("ordered steps", f"{sum(self.ordered.values())} of {len(self.steps)}", "text"),
                *((f"step {s}: {g.upper} − {g.lower}", (g.gap, g.ci_low, g.ci_high), "ci")
                  for s, g in zip(self.steps, weakest, strict=True) if g is not None),
                ("histograms", self.histograms, "size")]

    def table(self) -> str:
        """Plain-text table of the score means (CI) and gaps per step."""
        rows = [f"{'step':>4} " + " ".join(f"{g:>24}" for g in self.groups) + "  ordered"]
        for s in self.steps:
            cells = [next(x for x in self.scores if x.step == s and x.group == g) for g in self.groups]
            rows.append(f"{s:>4} " + " ".join(f"{c.mean:8.2f} [{c.ci_low:6.2f},{c.ci_high:6.2f}]" for c in cells)
                        + f"  {self.ordered[s]}")
        for g in self.score_gaps:
            rows.append(f"step {g.step}: {g.upper} − {g.lower} = {g.gap:.2f} [{g.ci_low:.2f}, {g.ci_high:.2f}]")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ordered"] = {str(k): v for k, v in self.ordered.items()}
        return d

    @staticmethod
    def from_dict(d: dict) -> BFSProbeResult:
        return BFSProbeResult(
            config=d["config"], steps=tuple(d["steps"]),
            scores=tuple(GroupStat(**x) for x in d["scores"]),
            score_gaps=tuple(GapStat(**x) for x in d["score_gaps"]),
            attention=tuple(GroupStat(**x) for x in d["attention"]),
            attention_gaps=tuple(GapStat(**x) for x in d["attention_gaps"]),
            histograms=tuple(Histogram(**{**x, "edges": tuple(x["edges"]), "counts": tuple(x["counts"])})
                             for x in d["histograms"]),
            example=d["example"], groups=tuple(d["groups"]),
        )

    def figure(self):
        """Histograms of the scores per group, one panel per thought step."""
        return figures.histogram_figure(self.steps, self.histograms)

    def graph_figure(self):
        """The example graph, nodes coloured by their score at each step (slider)."""
        return figures.graph_figure(self.example)

    def attention_figure(self):
        """Mean attention mass per edge by source group, per step, with CIs."""
        return figures.attention_figure(self.groups, self.attention)


@torch.no_grad()
def _records(model: GPT, problems: list[Problem], vocab: Vocab, cfg: ProbeConfig):
    """Rows (problem, step, group, value) for scores and for edge attention; and the example."""
    dev = model.W_E.weight.device
    score_rows, attn_rows, example = [], [], {}
    for start in range(0, len(problems), cfg.batch_size):
        chunk = problems[start : start + cfg.batch_size]
        prompts = [encode_prompt(p, vocab) for p in chunk]
        pb = collate_prompts([pr.ids for pr in prompts], vocab, dev)
        n_t = torch.tensor([p.hops for p in chunk], device=dev)
        tail = torch.full((len(chunk), 1), vocab.A, device=dev)
        out = coconut_forward(model, pb, n_t, tail, vocab, need_weights=True)
        scores_BJV = (out.hidden @ model.W_E.weight.T).cpu().numpy()  # step j output = t_{j+1}
        attn_BJP = out.thought_attn[cfg.attn_layer].mean(1).cpu().numpy()  # mean over heads
        P = pb.ids.shape[1]
        for b, (p, pr) in enumerate(zip(chunk, prompts)):
            pid, off = start + b, P - len(pr.ids)
            for i in range(1, p.hops + 1):
                for v in p.nodes:
                    score_rows += [(pid, i, g, scores_BJV[b, i - 1, v]) for g in groups_of(p, v, i, cfg.grouping)]
                for (s, _), col in zip(pr.edges, pr.edge_starts):
                    mass = attn_BJP[b, i - 1, off + col : off + col + 3].sum()
                    attn_rows += [(pid, i, g, mass) for g in groups_of(p, s, i, cfg.grouping)]
            if not example and p.hops == max(q.hops for q in problems):
                example = _example(p, pr, scores_BJV[b], attn_BJP[b], off)
    return np.array(score_rows), np.array(attn_rows), example


def _example(p: Problem, pr, scores_JV, attn_JP, off: int) -> dict:
    steps = range(1, p.hops + 1)
    return {
        "nodes": list(p.nodes), "edges": [list(e) for e in pr.edges], "root": p.root, "target": p.target,
        "negative": p.negative, "hops": p.hops,
        "dist": {str(v): p.distance(v) for v in p.nodes},
        "scores": {str(i): {str(v): float(scores_JV[i - 1, v]) for v in p.nodes} for i in steps},
        "groups": {str(i): {str(v): GROUPS[group_of(p, v, i)] for v in p.nodes} for i in steps},
        "edge_attention": {str(i): [[s, t, float(attn_JP[i - 1, off + c : off + c + 3].sum())]
                                    for (s, t), c in zip(pr.edges, pr.edge_starts)] for i in steps},
    }


def bfs_probe(model: GPT, vocab: Vocab, problems: list[Problem], cfg: ProbeConfig | None = None,
              meta: dict | None = None) -> BFSProbeResult:
    """Run the probe over `problems` with a Coconut model (each problem gets `hops` thoughts)."""
    cfg = cfg or ProbeConfig()
    if not problems:
        raise ValueError("bfs_probe needs at least one problem; generate some with generate_problems")
    if not 0 <= cfg.attn_layer < len(model.blocks):
        raise ValueError(f"attn_layer={cfg.attn_layer} but the model has {len(model.blocks)} layers")
    was_training = model.training
    model.eval()
    scores, attn, example = _records(model, problems, vocab, cfg)
    model.train(was_training)
    rng = np.random.default_rng(cfg.seed)
    s_stats, s_gaps = bootstrap_group_stats(scores, len(problems), GROUPS, cfg.n_bootstrap, cfg.level, rng)
    a_stats, a_gaps = bootstrap_group_stats(attn, len(problems), GROUPS, cfg.n_bootstrap, cfg.level, rng)
    steps = tuple(sorted({int(s) for s in scores[:, 1]}))
    return BFSProbeResult(
        config={"probe": asdict(cfg), "n_problems": len(problems), **(meta or {})}, steps=steps,
        scores=s_stats, score_gaps=s_gaps, attention=a_stats, attention_gaps=a_gaps,
        histograms=histograms(scores, GROUPS, cfg.n_bins), example=example,
    )
