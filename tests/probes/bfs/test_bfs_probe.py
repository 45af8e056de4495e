"""The BFS probe on the shipped Coconut model: groups, ordering, JSON and figures; and the CLI."""

import argparse
import json

import numpy as np
import pytest

from superscope.analyses.cli.bfs import register
from superscope.analyses.cli.options import field_docs
from superscope.probes.bfs import (
    GROUPS,
    BFSProbeResult,
    ProbeConfig,
    bfs_probe,
    generate_problems,
    load_bfs_checkpoint,
)
from superscope.probes.bfs.probe import group_of, groups_of
from superscope.probes.bfs.stats import bootstrap_group_stats


@pytest.fixture(scope="module")
def result():
    ck = load_bfs_checkpoint("coconut")
    problems = generate_problems(ck.graph, 120, seed=99)
    return bfs_probe(ck.model, ck.vocab, problems, ProbeConfig(n_problems=120, n_bootstrap=200))


def test_groups_partition_the_nodes():
    for p in generate_problems(load_bfs_checkpoint("coconut").graph, 50, seed=1):
        for i in range(1, p.hops + 1):
            g = [group_of(p, v, i) for v in p.nodes]
            assert {v for v, k in zip(p.nodes, g) if k == 0} == p.optimal(i)
            assert {v for v, k in zip(p.nodes, g) if k <= 1} == p.frontier(i)
            assert {v for v, k in zip(p.nodes, g) if k <= 2} == p.reachable(i)
            nested = {name: {v for v in p.nodes if k in groups_of(p, v, i)} for k, name in enumerate(GROUPS)}
            assert nested["optimal"] == p.optimal(i) and nested["frontier"] == p.frontier(i)
            assert nested["reachable"] == p.reachable(i) and nested["not_reachable"] == p.not_reachable(i)
            assert all(groups_of(p, v, i, "disjoint") == (group_of(p, v, i),) for v in p.nodes)


def test_shipped_model_shows_bfs_ordering(result):
    """Paper (Zhu et al. 2025, Fig. 4): optimal > frontier > reachable > not reachable, every step."""
    assert result.steps == (1, 2, 3, 4)
    for s in result.steps:
        means = [next(x.mean for x in result.scores if x.step == s and x.group == g) for g in GROUPS]
        assert means == sorted(means, reverse=True), (s, means)
    assert all(result.ordered.values()), result.table()


def test_result_json_roundtrip_and_figures(result):
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    again = BFSProbeResult.from_dict(d)
    assert again == result
    assert len(result.figure().data) == len(result.steps) * len(GROUPS)
    assert len(result.graph_figure().frames) == result.example["hops"]
    assert len(result.attention_figure().data) == len(GROUPS)


def test_bootstrap_ci_covers_the_mean_and_detects_a_gap():
    rng = np.random.default_rng(0)
    rows = [(p, 1, g, rng.normal(3.0 - g, 1.0)) for p in range(60) for g in range(4) for _ in range(3)]
    stats, gaps = bootstrap_group_stats(np.array(rows), 60, GROUPS, 300, 0.95, rng)
    for s in stats:
        assert s.ci_low < s.mean < s.ci_high
    assert all(g.ci_low > 0.5 for g in gaps)
    flat = [(p, 1, g, rng.normal(0.0, 1.0)) for p in range(60) for g in range(4) for _ in range(3)]
    _, gaps = bootstrap_group_stats(np.array(flat), 60, GROUPS, 300, 0.95, rng)
    assert any(g.ci_low < 0 < g.ci_high for g in gaps)


def test_cli_probe_eval_and_train(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="superscope")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bfs", "probe", "--n-problems", "30", "--n-bootstrap", "50", "--run", str(tmp_path)])
    args.func(args)
    assert BFSProbeResult.from_dict(json.loads((tmp_path / "probes" / "bfs.json").read_text())).steps
    args = parser.parse_args(["bfs", "eval", "--n", "20", "--run", str(tmp_path)])
    args.func(args)
    assert json.loads((tmp_path / "probes" / "bfs_eval_coconut.json").read_text())["n"] == 20
    args = parser.parse_args(["bfs", "train", "--method", "nocot", "--d-model", "16", "--d-mlp", "32",
                              "--n-train", "32", "--n-valid", "8", "--n-test", "8", "--epochs", "1",
                              "--quick-eval-n", "8", "--quiet", "--out", str(tmp_path / "tiny")])
    args.func(args)
    assert (tmp_path / "tiny.safetensors").exists() and "test accuracy" in capsys.readouterr().out
    help_text = parser.parse_args.__self__.format_help()
    assert "bfs" in help_text


def test_cli_help_comes_from_field_docstrings():
    docs = field_docs(ProbeConfig)
    assert docs["n_bootstrap"].startswith("Bootstrap resamples")
    with pytest.raises(ValueError, match="n_bootstrap"):
        ProbeConfig(n_bootstrap=1)
