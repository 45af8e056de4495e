"""The training recipe's schedule pieces: curriculum stages, thought counts, learning-rate factor."""

import numpy as np
import pytest
import torch

from superscope.analyses.bfs.train import (
    BFSTrainConfig,
    lr_factor,
    model_config,
    sample_thoughts,
    stage_for_epoch,
)
from superscope.probes.bfs.generator import GraphConfig
from superscope.probes.bfs.model import GPT


def test_stages_follow_the_curriculum():
    cfg, graph = BFSTrainConfig(stage0_epochs=5, epochs_per_stage=3, epochs=34), GraphConfig()
    stages = [stage_for_epoch(e, cfg, graph) for e in range(cfg.epochs)]
    assert stages[:5] == [0] * 5 and stages[5:8] == [1] * 3 and stages[8:11] == [2] * 3
    assert stages[14:] == [graph.hops_max] * (cfg.epochs - 14)


def test_thought_counts_are_capped_and_mixed():
    rng = np.random.default_rng(0)
    ks = sample_thoughts([3, 4] * 500, 4, 0.0, rng)
    assert ks == [3, 4] * 500
    mixed = sample_thoughts([4] * 2000, 4, 0.5, rng)
    assert set(mixed) == {0, 1, 2, 3, 4} and 0.55 < np.mean(np.array(mixed) == 4) < 0.7  # 0.5 + 0.5/5


def test_lr_warms_up_then_decays_to_zero():
    cfg = BFSTrainConfig(epochs=10, decay_epochs=4, warmup_steps=10)
    assert lr_factor(cfg, 0, 0.0) == pytest.approx(0.1)
    assert lr_factor(cfg, 50, 5.9) == 1.0
    assert lr_factor(cfg, 500, 8.0) == pytest.approx(0.5)
    assert lr_factor(cfg, 500, 9.99) < 0.01
    assert lr_factor(BFSTrainConfig(epochs=10, decay_epochs=0), 500, 9.99) == 1.0
    assert lr_factor(BFSTrainConfig(epochs=2, decay_epochs=20, warmup_steps=1), 5, 1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="decay_epochs"):
        BFSTrainConfig(decay_epochs=-1)


def test_thought_gain_is_a_learned_scalar_from_the_config():
    m = GPT(model_config(BFSTrainConfig(d_model=16, n_heads=2, d_mlp=32, thought_gain=0.05), GraphConfig()))
    h = torch.randn(3, 16)
    torch.testing.assert_close(m.feed_back(h), 0.05 * h)
    assert m.thought_gain.requires_grad and "thought_gain" in dict(m.named_parameters())
    with pytest.raises(ValueError, match="thought_gain"):
        BFSTrainConfig(thought_gain=0.0)


def test_fresh_training_sets_are_new_each_epoch_and_seeded():
    from superscope.analyses.bfs.train import train_set
    from superscope.probes.bfs.generator import make_splits

    graph = GraphConfig()
    splits = make_splits(graph, 20, 5, 5, seed=0)
    fixed, fresh = BFSTrainConfig(n_train=20, fresh_train=False), BFSTrainConfig(n_train=20, fresh_train=True)
    assert train_set(3, splits, fixed, graph) is splits["train"] and train_set(0, splits, fresh, graph) is splits["train"]
    e1, e2 = train_set(1, splits, fresh, graph), train_set(2, splits, fresh, graph)
    assert len(e1) == 20 and e1 != e2 and e1 != splits["train"] and e1 == train_set(1, splits, fresh, graph)
    assert not set(e1) & (set(splits["valid"]) | set(splits["test"]))
