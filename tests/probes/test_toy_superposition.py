"""Toy-model validation of effective features (Elhage setting): sampler, toy training, end-to-end shape."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from superscope.analyses.toy_superposition import (
    ToyValidationConfig,
    run_toy_validation,
    sample_features,
    train_toys,
)


def test_feature_sampler_marginals_and_exact_conditioning():
    rng = np.random.default_rng(0)
    dens = np.array([0.05, 0.5])
    f = sample_features(dens, 20000, 20, rng, nonempty=False)
    active = (f > 0).mean(axis=(1, 2))
    assert active == pytest.approx(dens, rel=0.05)
    assert f.max() <= 1 and f.min() >= 0
    g = sample_features(np.array([0.01]), 20000, 20, rng, nonempty=True)[0]
    assert (g > 0).any(axis=1).all()  # no empty sample
    k = (g > 0).sum(1)
    expected = 20 * 0.01 / (1 - 0.99 ** 20)  # E[#active | ≥ 1 active]
    assert k.mean() == pytest.approx(expected, rel=0.03)
    per_feature = (g > 0).mean(0)  # features are exchangeable given the count
    assert per_feature.max() / per_feature.min() < 1.3


def test_toys_represent_more_features_when_sparser():
    cfg = ToyValidationConfig(n_sparsities=3, density_min=0.01, density_max=0.99, toy_steps=600)
    W, b = train_toys(cfg, progress=False)
    psi_true = ((W ** 2).sum((1, 2)) / cfg.n_neurons).tolist()
    assert W.shape == (3, 5, 20) and b.shape == (3, 20)
    assert psi_true[0] > psi_true[-1]  # density 0.01 (sparse) packs more features than 0.99 (dense)
    assert 0.6 < psi_true[-1] < 1.6  # dense: about one feature per neuron


def test_end_to_end_tiny_validation_produces_a_result():
    threads = torch.get_num_threads()
    cfg = ToyValidationConfig(n_sparsities=3, toy_steps=200, sae_tokens=4096, sae_batch=512, eval_tokens=4096,
                              sae_archs=("topk",))
    res = run_toy_validation(cfg, progress=False)
    assert torch.get_num_threads() == threads  # the single-thread setting is restored    assert len(res.psi_true) == 3 and len(res.psi_sae["topk"]) == 3
    assert all(1 / 5 <= p <= 40 / 5 for p in res.psi_sae["topk"])  # F_eff ∈ [1, d_sae]
    assert -1 <= res.pearson_r["topk"] <= 1 and res.paper_r == (0.94, 0.02)
    data = json.loads(json.dumps(res.to_dict()))
    assert data["config"]["sae_expansion"] == 8
    assert isinstance(res.figure(), go.Figure)


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match="density"):
        ToyValidationConfig(density_min=0.5, density_max=0.1)
    with pytest.raises(ValueError, match="at least 3"):
        ToyValidationConfig(n_sparsities=2)
    with pytest.raises(ValueError, match="n_neurons"):
        ToyValidationConfig(n_neurons=20, n_features=20)
