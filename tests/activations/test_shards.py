"""Shard folders: round trip, memory-mapped reads, and clear errors for damaged folders."""

from __future__ import annotations

import json

import pytest
import torch

from superscope.activations.harvesting import load_activations
from superscope.activations.shards import MANIFEST, ShardSource, ShardWriter, read_manifest

D, T = 6, 5


def _settings(**over):
    base = {"hook": "blocks.0.hook_resid_post", "d": D, "dtype": "float32", "model": "toy", "corpus": {"source": "x"},
            "seed": 0, "context_len": T, "contexts_per_shard": 2, "n_contexts": 5}
    return {**base, **over}


def _part(first_ctx, n_ctx, gen):
    contexts = torch.randint(3, 100, (n_ctx, T))
    contexts[:, 0] = 1
    keep = contexts != 1
    ctx_ids = (first_ctx + torch.arange(n_ctx)).unsqueeze(1).expand(n_ctx, T)[keep]
    pos = torch.arange(T).expand(n_ctx, T)[keep]
    return {"acts": torch.randn(int(keep.sum()), D, generator=gen), "token_ids": contexts[keep],
            "context_ids": ctx_ids, "positions": pos, "contexts": contexts}


def _write(folder, dtype="float32", n_shards=3, finish=True):
    gen = torch.Generator().manual_seed(0)
    writer = ShardWriter(folder, _settings(dtype=dtype))
    parts = []
    for i in range(n_shards):
        first = 2 * i
        parts.append(_part(first, min(2, 5 - first), gen))
        writer.write(i, first, parts[-1])
    if finish:
        writer.finish()
    return parts


def test_round_trip_in_order_and_shuffled(tmp_path):
    parts = _write(tmp_path / "h")
    src = load_activations(tmp_path / "h")
    acts = torch.cat([p["acts"] for p in parts])
    assert src.n_tokens == len(acts) and src.d == D and src.hook == "blocks.0.hook_resid_post"
    assert torch.equal(torch.cat(list(src.batches(4, shuffle=False))), acts)
    shuffled = torch.cat(list(src.batches(4, shuffle=True, seed=3)))
    assert shuffled.dtype == torch.float32 and not torch.equal(shuffled, acts)
    assert torch.equal(shuffled[shuffled[:, 0].argsort()], acts[acts[:, 0].argsort()])
    ids = torch.cat([ids for ids, _ in src.pairs(3)])
    assert torch.equal(ids, torch.cat([p["token_ids"] for p in parts])) and ids.dtype == torch.int64
    ctx, pos = src.locations()
    assert torch.equal(src.contexts()[ctx, pos], ids)
    assert src.contexts().shape == (5, T)
    batch = next(src.rows(4))
    assert set(batch) == {"acts", "token_ids", "context_ids", "positions"}


def test_reads_are_memory_mapped_slices(tmp_path):
    _write(tmp_path / "h")
    src = ShardSource(tmp_path / "h")
    sl = src._handle(0).get_slice("acts")  # safetensors safe_open: lazy, mmap-backed slicing
    assert sl.get_shape() == [src._part_lengths()[0], D]
    assert torch.equal(src._read(0, 1, 3, "acts"), sl[1:3])


def test_bfloat16_storage_reads_back_float32(tmp_path):
    parts = _write(tmp_path / "h", dtype="bfloat16")
    src = load_activations(tmp_path / "h")
    got = torch.cat(list(src.batches(100, shuffle=False)))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, torch.cat([p["acts"] for p in parts]), rtol=1e-2, atol=1e-2)


def test_missing_and_multi_hook_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_activations(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        load_activations(tmp_path / "empty")
    _write(tmp_path / "run" / "blocks.0.hook_resid_post")
    with pytest.raises(FileNotFoundError, match="several hooks"):
        load_activations(tmp_path / "run")


def test_corrupt_and_foreign_manifest(tmp_path):
    _write(tmp_path / "h")
    path = tmp_path / "h" / MANIFEST
    good = path.read_text()
    path.write_text(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        load_activations(tmp_path / "h")
    path.write_text(json.dumps({"format": "something-else", "shards": []}))
    with pytest.raises(ValueError, match="not a superscope activation manifest"):
        load_activations(tmp_path / "h")
    manifest = json.loads(good)
    del manifest["d"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="missing fields"):
        read_manifest(tmp_path / "h")


def test_truncated_and_missing_shard(tmp_path):
    _write(tmp_path / "h")
    shard = tmp_path / "h" / "shard_00001.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[:-40])
    with pytest.raises(ValueError, match="truncated"):
        load_activations(tmp_path / "h")
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        load_activations(tmp_path / "h")


def test_garbage_shard_of_the_right_size(tmp_path):
    _write(tmp_path / "h")
    shard = tmp_path / "h" / "shard_00000.safetensors"
    shard.write_bytes(b"\xff" * shard.stat().st_size)
    src = load_activations(tmp_path / "h")
    with pytest.raises(ValueError, match="corrupt shard"):
        list(src.batches(4, shuffle=False))


def test_incomplete_harvest_and_resume_bookkeeping(tmp_path):
    _write(tmp_path / "h", n_shards=2, finish=False)
    with pytest.raises(ValueError, match="did not finish"):
        load_activations(tmp_path / "h")
    assert load_activations(tmp_path / "h", allow_incomplete=True).n_tokens > 0
    writer = ShardWriter(tmp_path / "h", _settings())  # reopen: resumes after the 2 complete shards
    assert writer.done == 2 and not writer.complete
    (tmp_path / "h" / "shard_00001.safetensors").write_bytes(b"cut")  # damaged: redo from shard 1
    assert ShardWriter(tmp_path / "h", _settings()).done == 1
    with pytest.raises(ValueError, match="other settings"):
        ShardWriter(tmp_path / "h", _settings(seed=1))
    with pytest.raises(ValueError, match="out of order"):
        writer.write(5, 10, _part(10, 1, torch.Generator()))


def test_refuses_a_non_empty_folder_without_manifest(tmp_path):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        ShardWriter(tmp_path / "h", _settings())
