"""Scaling toy (Liu, Liu, Gore 2025): exact sampler, hand-written gradients, signed decay, regimes, sweep."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from superscope.analyses.toys.scaling_sweep import (
    ScalingSweepConfig,
    parse_law,
    run_scaling_sweep,
)
from superscope.probes._scaling_math import (
    loss_and_grads,
    poisson_rates,
    reference_loss,
    sample_sparse,
)
from superscope.probes.scaling_toy import (
    ScalingToyConfig,
    feature_probs,
    row_stats,
    scaling_toy,
    signed_row_decay_,
)


@pytest.mark.parametrize("law", ["power", "exponential", "linear"])
def test_feature_probs_are_normalised_and_decreasing(law):
    p = feature_probs(ScalingToyConfig(n_features=50, law=law, alpha=1.3, scale=10.0))
    assert float(p.sum()) == pytest.approx(1.0) and bool((p[1:] <= p[:-1]).all())
    if law == "power":
        assert float(p[0] / p[1]) == pytest.approx(2 ** 1.3)


def test_sampler_has_the_right_marginals():
    p = feature_probs(ScalingToyConfig(n_features=40, alpha=1.0)).numpy()
    rng = np.random.default_rng(0)
    counts, vals, n = np.zeros(40), [], 0
    for _ in range(60):
        x = sample_sparse(poisson_rates(p), 1000, rng)
        np.add.at(counts, x.cols.numpy(), 1)
        vals.append(x.vals.numpy())
        n += 1000
        assert len(set(zip(x.rows.tolist(), x.cols.tolist()))) == x.cols.numel()  # each cell at most once
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(counts / n - p) < 5 * se + 1e-4)
    v = np.concatenate(vals)
    assert v.min() >= 0 and v.max() <= 2 and v.mean() == pytest.approx(1.0, abs=0.02)


def test_hand_written_gradients_match_autograd():
    n, m, B = 120, 7, 300
    p = feature_probs(ScalingToyConfig(n_features=n, alpha=1.2)).numpy()
    x = sample_sparse(poisson_rates(p), B, np.random.default_rng(1))
    gen = torch.Generator().manual_seed(0)
    W, b = torch.randn(n, m, generator=gen) / m ** 0.5, 0.3 * torch.randn(n, generator=gen)
    W1, b1 = W.clone().requires_grad_(), b.clone().requires_grad_()
    ref = reference_loss(W1, b1, x.dense(n))
    ref.backward()
    loss, gW, gb = loss_and_grads(W, b, x)
    assert loss == pytest.approx(float(ref.detach()), rel=1e-5)
    assert torch.allclose(gW, W1.grad, atol=1e-5) and torch.allclose(gb, b1.grad, atol=1e-5)


def test_signed_row_decay_pulls_norms_to_one_or_shrinks():
    W = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    strong = W.clone()
    signed_row_decay_(strong, -1.0, 0.1)
    assert strong[0, 0] < 2.0 and strong[1, 1] > 0.5  # both rows move towards norm 1
    weak = W.clone()
    signed_row_decay_(weak, 1.0, 0.1)
    assert torch.allclose(weak, 0.9 * W)


def test_row_stats_on_orthonormal_and_dead_rows():
    W = torch.zeros(5, 3)
    W[:3] = torch.eye(3)
    phi, overlap = row_stats(W)
    assert phi == pytest.approx(0.6) and overlap == pytest.approx(0.0)


def test_small_run_shows_the_expected_sign_of_effects():
    cfg = ScalingToyConfig(n_features=200, widths=(4, 8, 16), gammas=(-1.0, 1.0), alpha=1.5, steps=250,
                           batch_size=256, eval_samples=8192)
    res = scaling_toy(cfg, progress=False)
    strong, weak = res.loss[-1.0], res.loss[1.0]
    assert strong[0] > strong[-1]  # wider is better
    assert res.alpha_m[-1.0][0] > 0
    assert min(res.phi[-1.0]) > 0.9  # strong: (nearly) every feature represented
    assert max(res.phi[1.0]) < 0.5  # weak: decay prunes the rare features
    assert res.phi[1.0][-1] >= res.phi[1.0][0]  # ... fewer of them as the width grows
    ov = res.overlap[-1.0]
    assert ov[0] > ov[-1]  # overlaps shrink with width (≈ 1/m)
    assert 0.5 / 4 < ov[0] * 4 < 2.0 and 0.5 < ov[-1] * 16 < 2.0
    json.dumps(res.to_dict())
    assert isinstance(res.figure(), go.Figure)
    assert len(weak) == 3


def test_strong_regime_loss_exponent_is_near_one():
    """Strong superposition: L ∝ m^(−α_m) with α_m within [0.7, 1.3] for two non-power frequency laws.

    The preset over seeds 0-9 (benchmarks/results/scaling_toy_test_strong.json): linear 0.935 ± 0.012
    (0.919-0.950), exponential 1.066 ± 0.016 (1.036-1.093). Power laws are left out: there the strong
    regime gives α_m ≈ 1.35 even in the full sweep (benchmarks/results/scaling_toy.json)."""
    sweep = run_scaling_sweep(ScalingSweepConfig.test_strong(), progress=False)
    assert [(r["law"], r["regime"]) for r in sweep.rows] == [("linear", "strong"), ("exponential scale=100", "strong")]
    for row in sweep.rows:
        assert 0.7 <= row["alpha_m"] <= 1.3, row


# Weak regime: the largest |α_m − (α − 1)| over seeds 0-9 of the preset
# (benchmarks/results/scaling_toy_test_weak.json), rounded up to 0.05: α = 1.5 gave 0.60 ± 0.04 (0.53-0.66),
# α = 2 gave 0.85 ± 0.17 (0.57-1.14; 600 steps leave the number of represented rare features noisy). The
# bands [0.3, 0.7] and [0.55, 1.45] exclude α_m = α and, for α = 1.5, the strong regime's α_m = 1.
WEAK_TOLERANCE = {1.5: 0.2, 2.0: 0.45}


def test_weak_regime_loss_exponent_tracks_alpha_minus_one():
    sweep = run_scaling_sweep(ScalingSweepConfig.test_weak(), progress=False)
    assert [r["predicted"] for r in sweep.rows] == [0.5, 1.0]
    for row in sweep.rows:
        assert row["regime"] == "weak"
        assert abs(row["alpha_m"] - row["predicted"]) <= WEAK_TOLERANCE[row["predicted"] + 1], row


def test_sweep_quick_runs_and_tabulates():
    result = run_scaling_sweep(ScalingSweepConfig.quick(), progress=False)
    regimes = {(r["law"], r["regime"]) for r in result.rows}
    assert regimes == {("linear", "strong"), ("power α=2", "weak")}
    weak = next(r for r in result.rows if r["regime"] == "weak")
    assert weak["predicted"] == pytest.approx(1.0)
    assert "| linear | strong |" in result.markdown()
    json.dumps(result.to_dict())
    assert isinstance(result.figure(), go.Figure)


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match="3 distinct widths"):
        ScalingToyConfig(widths=(8, 16))
    with pytest.raises(ValueError, match="law"):
        ScalingToyConfig(law="zipf")
    with pytest.raises(ValueError, match="unknown frequency law"):
        parse_law("power")
    with pytest.raises(ValueError, match="strong_gamma"):
        ScalingSweepConfig(strong_gamma=1.0)
