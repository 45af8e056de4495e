"""Short reprs of the probe results (issue 17): headline numbers, arrays by size only."""

from __future__ import annotations

import numpy as np
import torch

from superscope.probes._token_graph import TokenFeatureGraphBuilder
from superscope.probes.bfs.evaluate import BFSEvalResult
from superscope.probes.bfs.probe import BFSProbeResult
from superscope.probes.bfs.stats import GapStat, GroupStat, Histogram
from superscope.probes.function_tokens import function_token_graph_from_codes
from superscope.probes.scaling_toy import ScalingToyResult
from superscope.probes.superposition_entropy import effective_features_from_codes


def check(result, *needles: str) -> str:
    text = repr(result)
    assert len(text.splitlines()) <= 5 and len(text) < 600, text
    assert all(n in text for n in needles), text
    assert result._repr_html_().startswith("<table>")
    return text


def test_effective_features_repr():
    z = torch.rand(600, 64).relu()
    res = effective_features_from_codes(list(z.split(100)), 64, n_neurons=8, n_bootstrap=50, label="L/topk")
    check(res, "F_eff", "ψ", "95% CI", "L/topk", "600")


def test_function_token_graph_and_built_graph_reprs():
    tok = torch.arange(3000) % 40
    z = (torch.rand(3000, 64) > 0.9).float()
    g = function_token_graph_from_codes([(tok, z)], 64)
    check(g, "edges", "function tokens", "3,000")
    builder = TokenFeatureGraphBuilder(64)
    builder.add(tok, z)
    check(builder.build(), "distinct tokens 40", "shape 40 × 64")


def test_scaling_toy_result_repr():
    fit = {"slope": -1.0, "intercept": 0.0}
    res = ScalingToyResult(config={}, law="p_i ∝ i^-1.5", widths=(8, 16, 32), gammas=(0.0, 1.0),
                           loss={0.0: [1, 0.5, 0.25], 1.0: [1, 0.6, 0.3]}, phi={}, overlap={},
                           fits={0.0: fit, 1.0: fit}, alpha_m={0.0: (1.0, 0.9, 1.1), 1.0: (0.8, 0.7, 0.95)},
                           curves={0.0: {8: list(np.ones(1000))}})
    check(res, "α_m (γ=0)", "1 [0.9, 1.1]", "8–32")


def test_bfs_results_reprs():
    scores = tuple(GroupStat(s, g, 1.0, 0.5, 1.5, 100) for s in (1, 2) for g in ("optimal", "frontier"))
    gaps = tuple(GapStat(s, "optimal", "frontier", 0.4 + s, 0.1, 0.9) for s in (1, 2))
    hist = tuple(Histogram(s, "optimal", tuple(np.linspace(0, 1, 201)), (1,) * 200) for s in (1, 2))
    res = BFSProbeResult(config={}, steps=(1, 2), scores=scores, score_gaps=gaps, attention=scores,
                         attention_gaps=gaps, histograms=hist)
    check(res, "ordered steps 2 of 2", "step 1: optimal − frontier")
    check(BFSEvalResult("cot", 500, 0.91, {1: 1.0, 2: 0.8}, 0.75), "91 %", "1: 100 %", "500")
