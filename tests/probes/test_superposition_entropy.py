"""Effective features (superposition entropy): closed forms, streaming, bootstrap, SAE inputs, bad input."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from superscope.probes.superposition_entropy import (
    MassAccumulator,
    effective_features,
    effective_features_from_codes,
)


def _codes(n_tokens: int, F: int, k: int, seed: int = 0, skew: float = 1.0) -> torch.Tensor:
    """Random non-negative codes with k active features per token, feature popularity ∝ rank^-skew."""
    gen = torch.Generator().manual_seed(seed)
    weights = torch.arange(1, F + 1, dtype=torch.float64) ** (-skew)
    cols = torch.stack([torch.multinomial(weights, k, generator=gen) for _ in range(n_tokens)])
    return torch.zeros(n_tokens, F).scatter_(1, cols, torch.rand(n_tokens, k, generator=gen) + 0.1)


class StandIn(torch.nn.Module):
    """The smallest SAE the probes accept: .encode and .cfg (d_in, d_sae)."""

    def __init__(self, d_in: int = 3, d_sae: int = 6):
        super().__init__()
        self.cfg = SimpleNamespace(d_in=d_in, d_sae=d_sae, architecture="standin", k=2)
        self.W_enc = torch.nn.Parameter(torch.randn(d_in, d_sae, generator=torch.Generator().manual_seed(1)))

    def encode(self, x):
        return torch.relu(x @ self.W_enc)


@pytest.mark.parametrize("D, F", [(1, 8), (4, 4), (5, 40), (17, 100)])
def test_uniform_mass_over_D_features_gives_D(D, F):
    z = torch.zeros(50, F)
    z[:, :D] = 0.7
    res = effective_features_from_codes([z], F, n_neurons=5)
    assert res.f_eff == pytest.approx(D, rel=1e-9)
    assert res.psi == pytest.approx(D / 5, rel=1e-9)
    assert res.n_alive == D


def test_known_distribution_matches_hand_computed_entropy():
    p = np.array([0.5, 0.25, 0.125, 0.125])
    z = torch.tensor(p, dtype=torch.float32)[None].repeat(10, 1)
    res = effective_features_from_codes([z], 4)
    H = -(p * np.log(p)).sum()
    assert res.entropy == pytest.approx(H, rel=1e-6)
    assert res.f_eff == pytest.approx(math.exp(H), rel=1e-6)


def test_mass_uses_absolute_values_in_both_sign_modes():
    z = torch.tensor([[1.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    for mode in ("first", "every"):
        assert effective_features_from_codes([z], 3, sign_check=mode).f_eff == pytest.approx(2.0)
    later = [torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[1.0, -1.0, 0.0]])]
    assert effective_features_from_codes(later, 3, sign_check="every").f_eff == pytest.approx(2.0)


def test_streaming_equals_one_shot_and_sparse_equals_dense():
    z = _codes(3000, 64, 4, seed=3, skew=0.8)
    one = effective_features_from_codes([z], 64, n_bootstrap=0)
    parts = effective_features_from_codes(list(z.split(123)), 64, n_bootstrap=0)
    rows, cols = z.nonzero(as_tuple=True)
    sparse = [(r, c, z[r, c], 3000) for r, c in [(rows, cols)]]
    assert parts.f_eff == pytest.approx(one.f_eff, rel=1e-6)  # float32 sums within a batch
    assert parts.n_tokens == one.n_tokens == 3000
    assert effective_features_from_codes(sparse, 64).f_eff == pytest.approx(one.f_eff, rel=1e-6)
    torch_sparse = effective_features_from_codes([z.to_sparse()], 64)
    assert torch_sparse.f_eff == pytest.approx(one.f_eff, rel=1e-6)


def test_block_merging_keeps_memory_bounded_and_totals_exact():
    z = _codes(2000, 32, 3, seed=4)
    acc = MassAccumulator(32, max_blocks=4)
    for part in z.split(100):  # 20 batches into at most 4 blocks
        acc.add(part)
    assert acc.used_blocks().shape[0] <= 4
    assert torch.allclose(acc.used_blocks().sum(0), acc.total_F)
    ref = effective_features_from_codes([z], 32).f_eff
    assert acc.result(None).f_eff == pytest.approx(ref, rel=1e-6)


def test_bootstrap_interval_contains_estimate_and_curve_ends_at_total():
    z = _codes(8192, 128, 8, seed=5, skew=1.0)
    res = effective_features_from_codes(list(z.split(256)), 128, n_neurons=16, n_bootstrap=300)
    lo, hi = res.f_eff_ci
    assert 0 < hi - lo < 0.2 * res.f_eff  # 32 blocks of 256 tokens: a tight interval (coverage: test below)
    assert res.psi_ci == pytest.approx((lo / 16, hi / 16))
    assert res.curve_tokens[-1] == 8192 and res.curve_f_eff[-1] == pytest.approx(res.f_eff)
    assert list(res.curve_tokens) == sorted(res.curve_tokens)


def test_single_batch_has_no_interval():
    res = effective_features_from_codes([_codes(100, 16, 2)], 16)
    assert res.f_eff_ci is None and res.n_blocks == 1


def test_result_is_json_safe_and_has_a_figure():
    res = effective_features_from_codes(list(_codes(600, 16, 2).split(100)), 16, n_neurons=4, label="L/topk")
    data = json.loads(json.dumps(res.to_dict()))
    assert data["label"] == "L/topk" and data["d_sae"] == 16
    assert isinstance(res.figure(), go.Figure)


def test_effective_features_with_a_stand_in_sae_and_activation_source():
    sae = StandIn()
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(2))
    direct = effective_features(sae, list(x.split(64)))
    assert direct.n_neurons == 3 and direct.d_sae == 6 and direct.sae_config["architecture"] == "standin"
    codes = torch.relu(x @ sae.W_enc.detach())
    assert direct.f_eff == pytest.approx(effective_features_from_codes([codes], 6).f_eff, rel=1e-5)

    class Source:  # like superscope's ActivationSource
        def batches(self, batch_size, shuffle=False):
            assert shuffle is False
            return iter(x.split(batch_size))

    via_source = effective_features(sae, Source(), batch_size=100, max_tokens=300)
    assert via_source.n_tokens == 300


def test_effective_features_with_a_superscope_sae():
    from superscope.saes import SAEConfig, create_sae

    sae = create_sae(SAEConfig(architecture="topk", d_in=8, d_sae=32, k=2))
    res = effective_features(sae, [torch.randn(256, 8)], n_bootstrap=0)
    assert 1 <= res.f_eff <= 32 and res.n_neurons == 8
    assert res.sae_config["architecture"] == "topk" and res.sae_config["k"] == 2


def test_bootstrap_blocks_are_token_blocks_not_batches():
    """MC encodes whole batches (selection over the batch), the CI still gets many blocks."""
    from superscope.saes import SAEConfig, create_sae

    sae = create_sae(SAEConfig(architecture="mutual_choice", d_in=8, d_sae=32, k=2))
    x = torch.randn(2048, 8)
    fine = effective_features(sae, [x[:1024], x[1024:]], n_bootstrap=50, block_tokens=128)
    coarse = effective_features(sae, [x[:1024], x[1024:]], n_bootstrap=50, block_tokens=None)
    assert fine.n_blocks == 16 and coarse.n_blocks == 2
    assert fine.f_eff == pytest.approx(coarse.f_eff, rel=1e-6)  # same codes: only the blocking differs
    assert fine.f_eff_ci is not None and coarse.f_eff_ci is not None and fine.n_bootstrap == 50
    with pytest.raises(ValueError, match="block_tokens"):
        effective_features(sae, [x], block_tokens=0)


def test_bad_input_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="width 7 but d_sae=8"):
        effective_features_from_codes([torch.zeros(4, 7)], 8)
    with pytest.raises(ValueError, match="feature index 9"):
        effective_features_from_codes([(torch.tensor([0]), torch.tensor([9]), torch.tensor([1.0]), 1)], 8)
    with pytest.raises(ValueError, match="empty stream"):
        effective_features_from_codes([], 8)
    with pytest.raises(ValueError, match="empty stream"):
        effective_features_from_codes([torch.zeros(0, 8)], 8)
    with pytest.raises(ValueError, match="all codes are zero"):
        effective_features_from_codes([torch.zeros(5, 8)], 8)
    with pytest.raises(ValueError, match="d_in=3"):
        effective_features(StandIn(), [torch.zeros(4, 5)])
    with pytest.raises(TypeError, match="encode"):
        effective_features(object(), [torch.zeros(4, 5)])


def test_bootstrap_interval_is_the_basic_interval():
    """(2θ̂ − q_97.5, 2θ̂ − q_2.5): resamples biased below the estimate put the interval above it."""
    from superscope.probes.estimators import bootstrap_interval

    boot = np.array([8.0, 9.0, 10.0, 11.0, 12.0] * 20 + [np.nan])  # median 10, below the estimate 15
    lo, hi = bootstrap_interval(boot, 15.0, 0.95)
    q_lo, q_hi = np.quantile(boot[:-1], [0.025, 0.975])
    assert (lo, hi) == pytest.approx((30 - q_hi, 30 - q_lo))
    assert lo > 15.0


def _zipf_blocks(q: np.ndarray, n_blocks: int, block: int, rng: np.random.Generator):
    """Sparse code batches where feature i fires independently with probability q_i, value U(0.5, 1.5).

    Only the per-block column sums reach the probe, so each feature's firing tokens are drawn as a
    Binomial(block, q_i) count and placed on the first rows (a valid, duplicate-free triple)."""
    for _ in range(n_blocks):
        counts = rng.binomial(block, q)
        cols = np.repeat(np.arange(q.size), counts)
        rows = np.arange(cols.size) - np.repeat(np.cumsum(counts) - counts, counts)
        yield rows, cols, rng.uniform(0.5, 1.5, cols.size), block


def test_bootstrap_interval_covers_the_true_f_eff():
    """Coverage on synthetic codes with a known F_eff: the 95 % interval holds the truth in >= 85 % of
    40 seeded repetitions. True mass shares p_i = q_i / Σ q (E|z_i| = q_i · 1), F_eff = exp(H(p)) = 345.9.

    2048 features with Zipf firing probabilities (16 active per token), 32 blocks of 256 tokens: many
    rare features, so the plug-in F_eff is biased low by about its own standard deviation and an
    interval that ignores the bias misses. On these 40 repetitions (same bootstrap replicates): the
    basic interval (the probe's) covers 0.925, the percentile interval 0.05, the percentile spread
    re-centred on the estimate (the probe's interval before) 0.55."""
    F, reps = 2048, 40
    w = np.arange(1, F + 1, dtype=np.float64) ** -1.0
    q = np.minimum(16 * w / w.sum(), 1.0)  # P(feature i fires); the top one always does
    p = q / q.sum()
    truth = math.exp(-(p * np.log(p)).sum())
    hits = {"basic": 0, "percentile": 0, "recentred": 0}
    for seed in range(reps):
        acc = MassAccumulator(F)
        for batch in _zipf_blocks(q, 32, 256, np.random.default_rng(seed)):
            acc.add(batch)
        res = acc.result(None, n_bootstrap=200, seed=seed)
        boot = acc.bootstrap(200, seed).numpy()  # the replicates behind res.f_eff_ci
        q_lo, mid, q_hi = np.quantile(boot, [0.025, 0.5, 0.975])
        for name, (lo, hi) in {"basic": res.f_eff_ci, "percentile": (q_lo, q_hi),
                               "recentred": (res.f_eff - (mid - q_lo), res.f_eff + (q_hi - mid))}.items():
            hits[name] += bool(lo <= truth <= hi)
    coverage = {k: v / reps for k, v in hits.items()}
    assert coverage["basic"] >= 0.85, coverage
    assert coverage["percentile"] < 0.85 and coverage["recentred"] < 0.85, coverage  # the test can tell them apart
