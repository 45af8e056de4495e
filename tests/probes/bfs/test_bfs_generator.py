"""Invariants of the reachability-problem generator, checked with an independent BFS."""

from collections import deque

import numpy as np
import pytest

from superscope.probes.bfs.generator import (
    GraphConfig,
    Problem,
    generate_problems,
    make_splits,
)
from superscope.probes.bfs.tokens import Vocab, cot_tail, encode_prompt


def _dist(edges, src):
    adj = {}
    for s, t in edges:
        adj.setdefault(s, set()).add(t)
    d, q = {src: 0}, deque([src])
    while q:
        u = q.popleft()
        for w in sorted(adj.get(u, ())):
            if w not in d:
                d[w] = d[u] + 1
                q.append(w)
    return d


@pytest.fixture(scope="module")
def problems():
    return generate_problems(GraphConfig(), 300, seed=3)


def test_target_at_exact_hops_and_negative_unreachable(problems):
    cfg = GraphConfig()
    for p in problems:
        d = _dist(p.edges, p.root)
        assert d[p.target] == p.hops and cfg.hops_min <= p.hops <= cfg.hops_max
        assert p.negative not in d
        assert sorted(p.candidates) == sorted((p.target, p.negative))
        assert cfg.n_nodes_min <= len(p.nodes) <= cfg.n_nodes_max
        assert len(set(p.edges)) == len(p.edges) and all(s != t for s, t in p.edges)
        assert {v for e in p.edges for v in e} <= set(p.nodes)
        out = {}
        for s, _ in p.edges:
            out[s] = out.get(s, 0) + 1
        assert max(out.values()) <= cfg.max_out_degree
        assert dict(p.dist) == d


def test_groups_nested_and_exact(problems):
    for p in problems:
        d = _dist(p.edges, p.root)
        back = _dist([(t, s) for s, t in p.edges], p.target)
        for i in range(p.hops + 1):
            opt, fr, re, nr = p.optimal(i), p.frontier(i), p.reachable(i), p.not_reachable(i)
            assert opt <= fr <= re and not (re & nr) and (re | nr) == set(p.nodes)
            assert fr == {v for v, k in d.items() if k == i}
            assert opt == {v for v in fr if back.get(v) == p.hops - i}
            assert opt, "a shortest path passes through every layer"
        assert p.optimal(p.hops) == {p.target} and p.optimal(0) == {p.root}


def test_candidate_order_is_random_and_seeded(problems):
    first = [p.candidates[0] == p.target for p in problems]
    assert 0.35 < np.mean(first) < 0.65
    again = generate_problems(GraphConfig(), 300, seed=3)
    assert again == problems
    assert generate_problems(GraphConfig(), 300, seed=4) != problems


def test_splits_are_disjoint_draws():
    s = make_splits(GraphConfig(), 50, 20, 20, seed=0)
    keys = {k: {(p.root, p.candidates, frozenset(p.edges)) for p in v} for k, v in s.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["valid"]
    assert [len(v) for v in s.values()] == [50, 20, 20]


def test_prompt_and_cot_format(problems):
    vocab = Vocab(GraphConfig().n_node_tokens)
    p = problems[0]
    pr = encode_prompt(p, vocab)
    ids = list(pr.ids)
    assert ids[0] == vocab.BOS and ids[-5:] == [vocab.Q, *p.candidates, vocab.R, p.root]
    for (s, t), c in zip(pr.edges, pr.edge_starts):
        assert ids[c : c + 3] == [s, t, vocab.SEP]
    tail = cot_tail(p, vocab, np.random.default_rng(0))
    path = tail[: p.hops]
    assert tail[p.hops :] == [vocab.A, p.target, vocab.EOS] and path[-1] == p.target
    assert all(e in set(p.edges) for e in zip([p.root] + path, path))


def test_problem_json_roundtrip(problems):
    assert Problem.from_dict(problems[1].to_dict()) == problems[1]


def test_bad_config_names_the_fix():
    with pytest.raises(ValueError, match="n_node_tokens"):
        GraphConfig(n_node_tokens=5)
    with pytest.raises(ValueError, match="hops"):
        GraphConfig(hops_min=5, hops_max=4)
