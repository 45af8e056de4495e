"""A token's feature set (analyses/runs/token_features.py): one pass for many tokens equals the dense
per-token count, and the precomputed file is read back while fresh and ignored once the SAE changes."""

from __future__ import annotations

import json
import os

import pytest
import torch

from superscope.activations import load_activations
from superscope.analyses.runs.token_features import (
    PRECOMPUTE_TOKENS,
    load_precomputed,
    precompute_token_features,
    precomputed_path,
    token_feature_sets,
)
from superscope.saes import load_sae
from tests.fixtures.tiny_run import HOOKS, copy_run, tiny_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return copy_run(tiny_run(tmp_path_factory), tmp_path_factory.mktemp("tf"), "tf")


def dense_reference(run_root, hook, arch, token_id, max_tokens):
    """The definition, one token at a time on dense codes."""
    held = load_activations(run_root / "heldout" / hook)
    sae = load_sae(run_root / "saes" / hook / arch).eval()
    count, total, n, seen = torch.zeros(sae.cfg.d_sae), torch.zeros(sae.cfg.d_sae, dtype=torch.float64), 0, 0
    with torch.no_grad():
        for ids, x in held.pairs(4096):
            if seen >= max_tokens:
                break
            seen += ids.numel()
            z = sae(x).codes.to_dense()[ids == token_id]
            count += (z > 0).sum(0)
            total += z.double().sum(0)
            n += int((ids == token_id).sum())
    return n, {f: (int(count[f]), float(total[f] / count[f])) for f in count.nonzero().squeeze(1).tolist()}


@pytest.mark.parametrize("arch", ["topk", "feature_choice"])
def test_one_pass_equals_the_dense_count_per_token(run_root, arch):
    hook = HOOKS[-1]
    ids = load_activations(run_root / "heldout" / hook).token_ids()
    common = torch.bincount(ids).topk(3).indices.tolist()
    absent = int(ids.max()) + 5  # a token that never occurs
    sets = token_feature_sets(run_root, hook, arch, [*common, absent], max_tokens=10**9)
    assert sets[absent] == {"n_occurrences": 0, "tokens_scanned": ids.numel(), "features": []}
    for t in common:
        n, ref = dense_reference(run_root, hook, arch, t, 10**9)
        got = sets[t]
        assert got["n_occurrences"] == n > 0
        assert {f: c for f, c, _ in got["features"]} == {f: c for f, (c, _) in ref.items()}
        for f, c, mean in got["features"]:
            assert mean == pytest.approx(ref[f][1], rel=1e-5)
        counts = [c for _, c, _ in got["features"]]
        assert counts == sorted(counts, reverse=True)  # most often fired first


def test_precomputed_sets_are_read_while_fresh(run_root):
    files = precompute_token_features(run_root, max_tokens=512)
    ft = json.loads((run_root / "probes" / "function_tokens.json").read_text())
    assert files and len(files) == len(ft["graphs"])
    hook, arch = sorted(ft["graphs"])[-1], ft["architecture"]
    top = ft["graphs"][hook]["token_ids"][:PRECOMPUTE_TOKENS]
    saved = load_precomputed(run_root, hook, arch, top[0], max_tokens=512)
    assert saved == json.loads(json.dumps(token_feature_sets(run_root, hook, arch, [top[0]], 512)[top[0]]))
    assert load_precomputed(run_root, hook, arch, top[0], max_tokens=1024) is None  # another size
    path = precomputed_path(run_root, hook, arch, 512)
    before = path.stat().st_mtime_ns
    precompute_token_features(run_root, max_tokens=512)  # fresh: kept
    assert path.stat().st_mtime_ns == before
    weights = run_root / "saes" / hook / arch / "sae.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # retrained: stale
    assert load_precomputed(run_root, hook, arch, top[0], max_tokens=512) is None
    path.write_text("{not json")
    assert load_precomputed(run_root, hook, arch, top[0], max_tokens=512) is None
