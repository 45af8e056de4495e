"""The precompute step: what the dashboard's SAE comparison page computes on first load, written into
the run folder; read back while fresh, ignored once an SAE changes."""

from __future__ import annotations

import os

import pytest

from superscope.analyses.pipeline.precompute import main, precompute_dashboard
from superscope.analyses.report.difficulty import (
    cached_l0_vs_difficulty,
    l0_vs_difficulty,
    load_precomputed,
    precomputed_path,
)
from tests.fixtures.tiny_run import HOOKS, copy_run, tiny_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return copy_run(tiny_run(tmp_path_factory), tmp_path_factory.mktemp("pre"), "pre")


def test_precompute_writes_what_the_page_reads(run_root, capsys):
    hook = HOOKS[-1]  # the toy run's main hook
    out = precompute_dashboard(run_root, tokens=(256,))
    assert out["files"][0] == f"cache/difficulty/{hook}/256.json"
    assert out["made"][0] == f"per-token L0 vs difficulty at {hook} on 256 tokens"
    # the Function tokens page's token feature sets, one file per hook of the probe's graphs
    assert [f for f in out["files"][1:] if not f.startswith("cache/token_features/")] == []
    assert len(out["files"]) == 1 + len(HOOKS) and "most frequent tokens" in out["made"][1]
    saved = load_precomputed(run_root, hook, 256)
    fresh = l0_vs_difficulty(run_root, hook, max_tokens=256)
    assert saved == fresh  # the same result the page would compute
    assert load_precomputed(run_root, hook, 512) is None  # another size is not there
    assert cached_l0_vs_difficulty(run_root, hook, 256) == fresh
    before = precomputed_path(run_root, hook, 256).stat().st_mtime_ns
    precompute_dashboard(run_root, tokens=(256,))  # fresh: kept, not recomputed
    assert precomputed_path(run_root, hook, 256).stat().st_mtime_ns == before
    # an SAE retrained (its weights file changes) makes the saved result stale
    weights = run_root / "saes" / hook / "topk" / "sae.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert load_precomputed(run_root, hook, 256) is None
    precomputed_path(run_root, hook, 256).write_text("{not json")
    assert load_precomputed(run_root, hook, 256) is None
    main([str(run_root), "--hooks", HOOKS[0]])
    assert "cache/difficulty/" in capsys.readouterr().out
    assert load_precomputed(run_root, HOOKS[0], 2048) is not None


def test_precompute_names_a_hook_without_saes(run_root):
    with pytest.raises(FileNotFoundError, match="no SAEs at blocks.99"):
        precompute_dashboard(run_root, hooks=["blocks.99.hook_resid_post"])
