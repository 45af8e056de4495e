"""Sharded harvesting: ranks harvest disjoint shards, the merged folder equals a plain harvest and is
recognised by it; the process-group path (barrier, rank-0 merge); bad input. Tiny stand-in model."""

from __future__ import annotations

import importlib
import json

import pytest
import torch
import torch.distributed as dist

from superscope.activations.distributed_harvest import harvest_sharded, rank_and_world
from superscope.activations.harvesting import harvest
from superscope.activations.models import load_model
from tests.tiny_model import build_tiny_model

HOOKS = ["blocks.1.hook_resid_post", "blocks.0.hook_resid_post"]
SMALL = dict(n_tokens=22 * 32, context_len=32, batch_size=3, contexts_per_shard=4, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder, corpus = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    return load_model(str(folder)), str(corpus)


def _rows(source):
    return torch.cat(list(source.batches(10_000, shuffle=False)))


def test_ranks_take_disjoint_shards_and_the_merge_equals_a_plain_harvest(tiny, tmp_path, monkeypatch):
    model, corpus = tiny
    plain = harvest(model, HOOKS, corpus=corpus, **SMALL)
    assert harvest_sharded(model, HOOKS, out_dir=tmp_path, corpus=corpus, rank=1, world_size=2, **SMALL) is None
    merged = harvest_sharded(model, HOOKS, out_dir=tmp_path, corpus=corpus, rank=0, world_size=2, **SMALL)
    for hook in HOOKS:
        manifest = json.loads((tmp_path / hook / "manifest.json").read_text())
        files = [s["file"] for s in manifest["shards"]]
        assert manifest["complete"] and len(files) == 6  # 22 contexts / 4 per shard
        assert files[:2] == ["ranks/w2-r0/shard_00000.safetensors", "ranks/w2-r1/shard_00000.safetensors"]
        assert torch.equal(_rows(merged[hook]), _rows(plain[hook]))
        assert torch.equal(merged[hook].token_ids(), plain[hook].token_ids())
        assert torch.equal(merged[hook].contexts(), plain[hook].contexts())

    def forbidden(*args, **kwargs):
        raise AssertionError("forward pass on a complete harvest")

    monkeypatch.setattr(importlib.import_module("superscope.activations.harvesting"), "_harvest_shard", forbidden)
    monkeypatch.setattr(importlib.import_module("superscope.activations.distributed_harvest"), "_harvest_shard", forbidden)
    again = harvest(model, HOOKS, out_dir=tmp_path, corpus=corpus, **SMALL)  # the plain API sees it complete
    assert torch.equal(_rows(again[HOOKS[0]]), _rows(plain[HOOKS[0]]))
    assert harvest_sharded(model, HOOKS, out_dir=tmp_path, corpus=corpus, rank=2, world_size=3, **SMALL)


def test_process_group_path_merges_on_rank_zero(tiny, tmp_path):
    model, corpus = tiny
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert rank_and_world() == (0, 1)
        sources = harvest_sharded(model, HOOKS[:1], out_dir=tmp_path / "acts", corpus=corpus, **SMALL)
    finally:
        dist.destroy_process_group()
    plain = harvest(model, HOOKS[:1], corpus=corpus, **SMALL)
    assert torch.equal(_rows(sources[HOOKS[0]]), _rows(plain[HOOKS[0]]))
    assert (tmp_path / "acts" / HOOKS[0] / "ranks" / "w1-r0" / "manifest.json").is_file()


def test_bad_input(tiny, tmp_path):
    model, corpus = tiny
    with pytest.raises(ValueError, match="rank < world_size"):
        harvest_sharded(model, HOOKS, out_dir=tmp_path, corpus=corpus, rank=2, world_size=2, **SMALL)
    harvest(model, HOOKS[:1], out_dir=tmp_path, corpus=corpus, **SMALL)
    with pytest.raises(ValueError, match="other settings"):
        harvest_sharded(model, HOOKS[:1], out_dir=tmp_path, corpus=corpus, rank=0, world_size=2,
                        **{**SMALL, "context_len": 16})
