"""SAEBench core extras (saes/core_metrics.py): hand-computed cases, a plain reference, and evaluate()."""

import math

import pytest
import torch

from superscope.saes import TrainConfig, evaluate, train
from superscope.saes.core_metrics import (
    ReconstructionSums,
    cosine_similarity,
    dense_fraction,
    encoder_decoder_cosine,
    l2_ratio,
    max_pairwise_cosine,
    relative_reconstruction_bias,
)

from .conftest import make_sae


def test_identity_reconstruction_scores_one():
    x = torch.randn(20, 7)
    assert l2_ratio(x, x) == pytest.approx(1.0)
    assert cosine_similarity(x, x) == pytest.approx(1.0)
    assert relative_reconstruction_bias(x, x) == pytest.approx(1.0)


def test_half_reconstruction_shrinks_by_half():
    """x̂ = 0.5 x: ‖x̂‖/‖x‖ = 0.5, γ = Σ‖x̂‖²/Σx·x̂ = 0.25/0.5 = 0.5, direction unchanged (cos 1)."""
    x = torch.randn(20, 7)
    assert l2_ratio(x, 0.5 * x) == pytest.approx(0.5)
    assert relative_reconstruction_bias(x, 0.5 * x) == pytest.approx(0.5)
    assert cosine_similarity(x, 0.5 * x) == pytest.approx(1.0)


def test_hand_computed_two_tokens():
    """x = (e1, e2); x̂ = (2 e1, e1): ratios 2 and 1 → 1.5; cos 1 and 0 → 0.5; γ = (4 + 1) / (2 + 0) = 2.5."""
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x_hat = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    assert l2_ratio(x, x_hat) == pytest.approx(1.5)
    assert cosine_similarity(x, x_hat) == pytest.approx(0.5)
    assert relative_reconstruction_bias(x, x_hat) == pytest.approx(2.5)


def test_zero_vectors_do_not_give_inf_or_nan():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    x_hat = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert l2_ratio(x, x_hat) == pytest.approx(0.5)  # ‖x‖ < 1e-4 is divided by 1 (SAEBench): (1 + 0) / 2
    assert cosine_similarity(x, x_hat) == 0.0


def test_sums_over_batches_equal_the_one_shot_values():
    gen = torch.Generator().manual_seed(1)
    x, x_hat = torch.randn(90, 6, generator=gen), torch.randn(90, 6, generator=gen) + 0.5
    streamed = sum((ReconstructionSums.of(a, b) for a, b in zip(x.split(17), x_hat.split(17))), ReconstructionSums())
    assert streamed.n_tokens == 90
    assert streamed.l2_ratio == pytest.approx(l2_ratio(x, x_hat), rel=1e-12)
    assert streamed.cossim == pytest.approx(cosine_similarity(x, x_hat), rel=1e-12)
    assert streamed.relative_reconstruction_bias == pytest.approx(relative_reconstruction_bias(x, x_hat), rel=1e-12)
    assert math.isnan(ReconstructionSums().l2_ratio)


def test_dense_fraction_thresholds():
    density_F = torch.tensor([0.5, 0.05, 0.005, 0.0])  # fires on 50 %, 5 %, 0.5 %, never
    assert dense_fraction(density_F, 0.01) == 0.5
    assert dense_fraction(density_F, 0.1) == 0.25
    assert dense_fraction(torch.tensor([0.1, 0.01]), 0.1) == 0.0  # strictly greater


def test_orthogonal_rows_have_max_cosine_zero_and_a_duplicate_has_one():
    eye = torch.eye(5)
    assert max_pairwise_cosine(eye).tolist() == [0.0] * 5
    W = torch.cat([eye[:3], -2 * eye[:1]])  # latent 3 anti-parallel to latent 0
    assert max_pairwise_cosine(W).tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0])
    assert max_pairwise_cosine(W, absolute=False).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0])
    assert math.isnan(float(max_pairwise_cosine(eye[:1])[0]))  # no other latent


def test_tied_encoder_has_encoder_decoder_cosine_one():
    W_dec = torch.randn(9, 4)
    assert encoder_decoder_cosine(3 * W_dec.T, W_dec).tolist() == pytest.approx([1.0] * 9)
    assert encoder_decoder_cosine(-W_dec.T, W_dec).tolist() == pytest.approx([-1.0] * 9)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1024])
def test_against_plain_reference_on_random_data(chunk):
    gen = torch.Generator().manual_seed(0)
    D, F, T = 11, 37, 53
    W_enc, W_dec = torch.randn(D, F, generator=gen), torch.randn(F, D, generator=gen)
    x, x_hat = torch.randn(T, D, generator=gen), torch.randn(T, D, generator=gen)

    def ref_max_cos(V):  # the full F × F matrix, diagonal masked
        cos = torch.tensor([[torch.dot(a, b) / (a.norm() * b.norm()) for b in V] for a in V]).abs()
        return (cos - 10 * torch.eye(len(V))).max(dim=1).values

    assert torch.allclose(max_pairwise_cosine(W_dec, chunk=chunk), ref_max_cos(W_dec), atol=1e-5)
    assert torch.allclose(max_pairwise_cosine(W_enc.T, chunk=chunk), ref_max_cos(W_enc.T), atol=1e-5)
    ref_enc_dec = torch.stack([torch.dot(W_enc[:, f], W_dec[f]) / (W_enc[:, f].norm() * W_dec[f].norm())
                               for f in range(F)])
    assert torch.allclose(encoder_decoder_cosine(W_enc, W_dec), ref_enc_dec, atol=1e-5)

    xd, xhd = x.double(), x_hat.double()
    assert l2_ratio(x, x_hat) == pytest.approx(float((xhd.norm(dim=1) / xd.norm(dim=1)).mean()), rel=1e-10)
    cos_ref = (xd * xhd).sum(1) / (xd.norm(dim=1) * xhd.norm(dim=1))
    assert cosine_similarity(x, x_hat) == pytest.approx(float(cos_ref.mean()), rel=1e-10)
    # γ minimises E‖x̂/γ − x‖²: compare with a grid search around the closed form
    gamma = relative_reconstruction_bias(x, x_hat)
    loss = lambda g: float((xhd / g - xd).pow(2).sum())  # noqa: E731
    assert all(loss(gamma) <= loss(gamma * s) for s in (0.9, 0.99, 1.01, 1.1))


def test_evaluate_reports_the_core_extras_on_a_trained_sae():
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(64, 12, generator=gen) for _ in range(8)]
    sae = train(make_sae("topk", d_sae=48, k=4).cfg, batches,
                TrainConfig(total_tokens=512, batch_size=64, progress=False))
    res = evaluate(sae, batches[:3])
    d = res.to_dict()
    for key in ("l2_ratio", "relative_reconstruction_bias", "cossim", "freq_over_1_percent", "freq_over_10_percent",
                "max_abs_cos_decoder_mean", "max_abs_cos_encoder_mean", "encoder_decoder_cosine_sim_mean"):
        assert math.isfinite(d[key]), key
    assert len(res.encoder_decoder_cosine_sim) == 48 and all(map(math.isfinite, res.encoder_decoder_cosine_sim))
    assert res.freq_over_10_percent == res.dense_frac and res.freq_over_1_percent >= res.freq_over_10_percent
    assert 0 < res.cossim <= 1 and 0 <= res.max_abs_cos_decoder_mean <= 1
    # the streamed values equal the one-shot ones on the concatenated eval set
    allx = torch.cat(batches[:3])
    with torch.no_grad():
        x_hat = sae(allx).x_hat
    assert res.l2_ratio == pytest.approx(l2_ratio(allx, x_hat), rel=1e-6)
    assert res.relative_reconstruction_bias == pytest.approx(relative_reconstruction_bias(allx, x_hat), rel=1e-6)


def test_evaluate_counts_a_latent_firing_on_half_the_tokens_as_dense():
    """Decoder = encoderᵀ = identity-like, k = 1: latent 0 wins on the half of the tokens built to excite it."""
    sae = make_sae("topk", d_in=4, d_sae=4, k=1)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(4))
        sae.W_dec.copy_(torch.eye(4))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.tensor([[1.0, 0, 0, 0]] * 5 + [[0, 1.0, 0, 0]] * 5) * 2  # latent 0 on 50 %, latent 1 on 50 %
    res = evaluate(sae, [x])
    assert res.freq_over_1_percent == 0.5 and res.freq_over_10_percent == 0.5
    assert res.encoder_decoder_cosine_sim == [1.0] * 4 and res.max_abs_cos_decoder_mean == 0.0
    assert res.l2_ratio == pytest.approx(1.0) and res.cossim == pytest.approx(1.0)
    assert res.relative_reconstruction_bias == pytest.approx(1.0)

