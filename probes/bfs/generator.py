"""ProsQA-style graph-reachability problems (Hao et al. 2024, "Coconut", App. A; Zhu et al. 2025).

A problem is a directed graph, a root, and two candidates: the *target*, reachable from the root in
exactly `hops` steps (its BFS distance), and the *negative*, not reachable at all. Node identity is a
token id drawn at random from a pool of `n_node_tokens`, so no token carries a role.

Construction (a layered DAG in two parts, like ProsQA's "reachable" and "distractor" subgraphs):
- part R holds the root at layer 0 and the target at layer `hops`; every other R node sits at a
  layer 1..hops+1 and has 1-2 parents in the layer just above. Every R edge goes from layer j to
  layer j+1, so a node's layer *is* its BFS distance from the root;
- part U mirrors R with its own source node and the negative at layer 3-4 of U, so both candidates
  look alike (in-edges, depth); U may have edges *into* R ("cross" edges) but R never points into U,
  so no U node is reachable from the root.
Each sample is checked by an explicit BFS before it is accepted.

The groups of the probe (Zhu et al. 2025, Sec. 5), for thought step i:
  Reachable(i) = {v : d(root, v) <= i},  Frontier(i) = {v : d(root, v) = i},
  Optimal(i) = {v in Frontier(i) : d(v, target) = hops - i}  (on a shortest root->target path),
  NotReachable(i) = nodes \\ Reachable(i);  Optimal(i) ⊆ Frontier(i) ⊆ Reachable(i).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class GraphConfig:
    """How the random reachability problems are drawn.

    Defaults: the CPU size (12-14 nodes from 20 node tokens: ProsQA's structure at about 60-token
    prompts, so the CPU recipe trains in minutes); GraphConfig.gpu() is the larger 15-20-node one.
    """

    n_nodes_min: int = 12
    """Fewest nodes in one graph."""
    n_nodes_max: int = 14
    """Most nodes in one graph."""
    n_node_tokens: int = 20
    """Size of the node-token pool (nodes get distinct random tokens from it); >= n_nodes_max."""
    hops_min: int = 3
    """Shortest BFS distance root -> target."""
    hops_max: int = 4
    """Longest BFS distance root -> target (also the number of thoughts the model needs)."""
    max_out_degree: int = 3
    """Cap on any node's out-degree."""
    p_second_parent: float = 0.5
    """Probability that a non-source node gets a second parent from the layer above."""
    n_cross_edges: int = 3
    """Edges drawn from the unreachable part U into the reachable part R (at most)."""

    def __post_init__(self) -> None:
        if not 4 <= self.n_nodes_min <= self.n_nodes_max:
            raise ValueError("need 4 <= n_nodes_min <= n_nodes_max; fix the node counts")
        if self.n_node_tokens < self.n_nodes_max:
            raise ValueError("n_node_tokens must be >= n_nodes_max (each node needs its own token)")
        if not 1 <= self.hops_min <= self.hops_max:
            raise ValueError("need 1 <= hops_min <= hops_max")
        if self.n_nodes_min < 2 * (self.hops_max + 1) + 2:
            raise ValueError(f"n_nodes_min must be >= {2 * (self.hops_max + 1) + 2} to fit both parts")
        if self.max_out_degree < 2:
            raise ValueError("max_out_degree must be >= 2")
        if not 0.0 <= self.p_second_parent <= 1.0:
            raise ValueError("p_second_parent must lie in [0, 1]")

    @staticmethod
    def gpu() -> GraphConfig:
        """Larger graphs for the GPU preset (15-20 nodes, 24 node tokens)."""
        return GraphConfig(n_nodes_min=15, n_nodes_max=20, n_node_tokens=24)

    @property
    def max_edges(self) -> int:
        """An upper bound on the number of edges of one graph (for sequence lengths)."""
        return 2 * self.n_nodes_max + self.n_cross_edges


@dataclass(frozen=True)
class Problem:
    """One reachability problem; node ids are node-token ids."""

    nodes: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    root: int
    target: int
    negative: int
    candidates: tuple[int, int]
    """(c1, c2) in the order they are shown; a shuffle of (target, negative)."""
    hops: int
    dist: tuple[tuple[int, int], ...]
    """(node, BFS distance from the root) for every reachable node."""
    dist_to_target: tuple[tuple[int, int], ...] = field(default=())
    """(node, BFS distance to the target) for every node that reaches the target."""

    def distance(self, v: int) -> int:
        """BFS distance root -> v, or -1 when v is not reachable."""
        return dict(self.dist).get(v, -1)

    def reachable(self, i: int) -> frozenset[int]:
        return frozenset(v for v, d in self.dist if d <= i)

    def frontier(self, i: int) -> frozenset[int]:
        return frozenset(v for v, d in self.dist if d == i)

    def optimal(self, i: int) -> frozenset[int]:
        to_t = dict(self.dist_to_target)
        return frozenset(v for v in self.frontier(i) if to_t.get(v, -1) == self.hops - i)

    def not_reachable(self, i: int) -> frozenset[int]:
        return frozenset(self.nodes) - self.reachable(i)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Problem:
        return Problem(
            nodes=tuple(d["nodes"]), edges=tuple(tuple(e) for e in d["edges"]), root=d["root"],
            target=d["target"], negative=d["negative"], candidates=tuple(d["candidates"]),
            hops=d["hops"], dist=tuple(tuple(x) for x in d["dist"]),
            dist_to_target=tuple(tuple(x) for x in d["dist_to_target"]),
        )


def bfs_distances(edges, source: int, reverse: bool = False) -> dict[int, int]:
    """Plain BFS over the edge list; `reverse` walks edges backwards (distances *to* source)."""
    adj: dict[int, list[int]] = {}
    for s, t in edges:
        a, b = (t, s) if reverse else (s, t)
        adj.setdefault(a, []).append(b)
    dist, queue = {source: 0}, deque([source])
    while queue:
        u = queue.popleft()
        for w in adj.get(u, ()):
            if w not in dist:
                dist[w] = dist[u] + 1
                queue.append(w)
    return dist


def _layered_part(rng, nodes: list[int], depth: int, sink_layer: int, cfg: GraphConfig):
    """Layers 0..depth for `nodes` (nodes[0] -> layer 0, nodes[1] -> sink_layer), edges j -> j+1.

    Returns (layer of each node, edges, out-degrees), or None when the out-degree cap blocks a node.
    """
    layer = {nodes[0]: 0, nodes[1]: sink_layer}
    rest = nodes[2:]
    needed = list(range(1, sink_layer))  # every layer above the sink is non-empty
    for v, j in zip(rest, needed):
        layer[v] = j
    for v in rest[len(needed):]:
        layer[v] = int(rng.integers(1, depth + 1))
    by_layer: dict[int, list[int]] = {}
    for v, j in layer.items():
        by_layer.setdefault(j, []).append(v)
    out_deg = {v: 0 for v in nodes}
    edges: list[tuple[int, int]] = []
    for v in nodes[1:]:
        above = [u for u in by_layer.get(layer[v] - 1, []) if out_deg[u] < cfg.max_out_degree]
        if not above:
            return None
        n_par = 2 if (len(above) > 1 and rng.random() < cfg.p_second_parent) else 1
        for u in rng.choice(above, size=n_par, replace=False):
            edges.append((int(u), v))
            out_deg[int(u)] += 1
    return layer, edges, out_deg


def sample_problem(rng: np.random.Generator, cfg: GraphConfig) -> Problem:
    """Draw one problem (rejection-sampled until every invariant holds)."""
    for _ in range(1000):
        n = int(rng.integers(cfg.n_nodes_min, cfg.n_nodes_max + 1))
        hops = int(rng.integers(cfg.hops_min, cfg.hops_max + 1))
        neg_depth = int(rng.integers(cfg.hops_min, cfg.hops_max + 1))
        tokens = [int(t) for t in rng.permutation(cfg.n_node_tokens)[:n]]
        n_r = int(rng.integers(hops + 2, n - (neg_depth + 1) + 1))
        part_r = _layered_part(rng, tokens[:n_r], hops + 1, hops, cfg)
        part_u = _layered_part(rng, tokens[n_r:], neg_depth + 1, neg_depth, cfg)
        if part_r is None or part_u is None:
            continue
        (layer_r, edges_r, _), (layer_u, edges_u, out_u) = part_r, part_u
        cross: list[tuple[int, int]] = []
        for _ in range(int(rng.integers(0, cfg.n_cross_edges + 1))):
            u = int(rng.choice(tokens[n_r:]))
            later = [v for v in tokens[1:n_r] if layer_r[v] == layer_u[u] + 1]
            if later and out_u[u] < cfg.max_out_degree:
                e = (u, int(rng.choice(later)))
                if e not in cross:
                    cross.append(e)
                    out_u[u] += 1
        edges = edges_r + edges_u + cross
        root, target, negative = tokens[0], tokens[1], tokens[n_r + 1]
        dist = bfs_distances(edges, root)
        if dist.get(target) != hops or negative in dist:
            continue
        to_target = bfs_distances(edges, target, reverse=True)
        cands = (target, negative) if rng.random() < 0.5 else (negative, target)
        order = rng.permutation(len(edges))
        return Problem(
            nodes=tuple(sorted(tokens)), edges=tuple(edges[i] for i in order), root=root,
            target=target, negative=negative, candidates=cands, hops=hops,
            dist=tuple(sorted(dist.items())), dist_to_target=tuple(sorted(to_target.items())),
        )
    raise RuntimeError("could not draw a valid graph in 1000 tries; loosen the GraphConfig")


def generate_problems(cfg: GraphConfig, n: int, seed: int) -> list[Problem]:
    """`n` problems from a seeded generator (same cfg and seed -> same problems)."""
    rng = np.random.default_rng(seed)
    return [sample_problem(rng, cfg) for _ in range(n)]


def make_splits(cfg: GraphConfig, n_train: int, n_valid: int, n_test: int, seed: int) -> dict:
    """Train / valid / test splits from independent child seeds of `seed`."""
    children = np.random.SeedSequence(seed).spawn(3)
    seeds = [int(c.generate_state(1)[0]) for c in children]
    return {
        "train": generate_problems(cfg, n_train, seeds[0]),
        "valid": generate_problems(cfg, n_valid, seeds[1]),
        "test": generate_problems(cfg, n_test, seeds[2]),
    }
