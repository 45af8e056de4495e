"""Measurements of superposition. Each probe streams, and returns a frozen dataclass with
``.to_dict()`` and ``.figure()``.

- ``effective_features``: superposition entropy, F_eff = exp(H(p)), ψ = F_eff / N (Bereska et al. 2025)
- ``function_token_graph``: the token–feature bipartite graph and its metrics (Zhang, Lin, Li 2025)
- ``scaling_toy``: the scaling-under-superposition toy model (Liu, Liu, Gore 2025)
- ``superscope.probes.bfs``: BFS-superposition in Coconut continuous thoughts (Zhu et al. 2025)
"""

from .function_tokens import (
    FunctionTokenGraph,
    coverage_table,
    frequency_function_tokens,
    function_token_graph,
    function_token_graph_from_codes,
    linguistic_function_tokens,
    loss_by_transition,
    next_token_losses,
)
from .scaling_toy import ScalingToyConfig, ScalingToyResult, scaling_toy
from .superposition_entropy import EffectiveFeatures, effective_features, effective_features_from_codes

__all__ = [
    "EffectiveFeatures", "FunctionTokenGraph", "ScalingToyConfig", "ScalingToyResult", "coverage_table",
    "effective_features", "effective_features_from_codes", "frequency_function_tokens", "function_token_graph",
    "function_token_graph_from_codes", "linguistic_function_tokens", "loss_by_transition", "next_token_losses",
    "scaling_toy",
]
