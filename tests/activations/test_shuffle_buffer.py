"""ShuffleBuffer: every row exactly once, bounded memory, seeded; sequential batching keeps order."""

from __future__ import annotations

import pytest
import torch

from superscope.activations.buffer import ShuffleBuffer, sequential_batches, shuffled_batches


def _chunks(n_rows=1000, chunk=37):
    ids = torch.arange(n_rows)
    for start in range(0, n_rows, chunk):
        part = ids[start:start + chunk]
        yield part.float().unsqueeze(1).repeat(1, 3), part


@pytest.mark.parametrize("batch_size,capacity", [(64, 256), (7, 7), (50, 5000)])
def test_every_row_exactly_once(batch_size, capacity):
    batches = list(shuffled_batches(_chunks(), batch_size, capacity, seed=0))
    rows = torch.cat([b[1] for b in batches])
    assert sorted(rows.tolist()) == list(range(1000))
    assert all(b[0].shape[0] == batch_size for b in batches[:-1])
    for acts, ids in batches:  # aligned tensors stay aligned
        assert torch.equal(acts[:, 0].long(), ids)


def test_drop_last_drops_only_the_short_batch():
    batches = list(shuffled_batches(_chunks(), 64, 256, seed=0, drop_last=True))
    assert len(batches) == 1000 // 64 and all(b[0].shape[0] == 64 for b in batches)


def test_shuffles_and_is_seeded():
    a = torch.cat([b[1] for b in shuffled_batches(_chunks(), 32, 512, seed=1)])
    b = torch.cat([b[1] for b in shuffled_batches(_chunks(), 32, 512, seed=1)])
    c = torch.cat([b[1] for b in shuffled_batches(_chunks(), 32, 512, seed=2)])
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, torch.arange(1000))
    # rows travel: the first 100 outputs come from well beyond the first 100 inputs
    assert a[:100].max() > 200


def test_memory_is_bounded():
    buf = ShuffleBuffer(capacity=128, batch_size=16, seed=0)
    peak = 0
    for chunk in _chunks(5000, 40):
        for _ in buf.push(*chunk):
            pass
        peak = max(peak, len(buf))
    assert peak <= 128 + 40


def test_bad_sizes():
    with pytest.raises(ValueError):
        ShuffleBuffer(capacity=4, batch_size=8)
    buf = ShuffleBuffer(capacity=8, batch_size=2)
    with pytest.raises(ValueError, match="same number of rows"):
        list(buf.push(torch.zeros(3, 2), torch.zeros(4)))


def test_sequential_batches_keep_order():
    out = list(sequential_batches(_chunks(100, 13), 8))
    ids = torch.cat([b[1] for b in out])
    assert torch.equal(ids, torch.arange(100))
    assert [b[0].shape[0] for b in out] == [8] * 12 + [4]
