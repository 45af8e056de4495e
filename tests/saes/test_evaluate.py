import torch

from superscope.activations.toy import ToyConfig, ToySource
from superscope.saes import SAEConfig, TrainConfig, evaluate, fvu, ground_truth_recovery, train

from .conftest import make_sae


def test_fvu_of_predicting_the_mean_is_exactly_one():
    x = torch.randn(200, 9)
    assert fvu(x, x.double().mean(0).expand(200, 9)) == 1.0


def test_streaming_fvu_matches_one_shot_and_mean_gives_one():
    sae = make_sae("topk")
    with torch.no_grad():
        sae.W_dec.zero_()  # reconstruction = b_dec constant
    xs = [torch.randn(30, 12) + 1 for _ in range(4)]
    allx = torch.cat(xs)
    with torch.no_grad():
        sae.b_dec.copy_(allx.double().mean(0).float())
    res = evaluate(sae, xs)
    one_shot = fvu(allx, sae(allx).x_hat)
    assert abs(res.fvu - one_shot) < 1e-9
    assert abs(res.fvu - 1.0) < 1e-6


def test_l0_and_dead_dense_fractions():
    sae = make_sae("topk", k=4)
    res = evaluate(sae, [torch.randn(50, 12)])
    assert res.l0_mean <= 4 and sum(res.l0_hist) == 50
    assert 0 <= res.dead_frac <= 1 and 0 <= res.dense_frac <= 1
    assert sum(res.log_density_hist) == round(48 * (1 - res.dead_frac))


def test_ground_truth_recovery_on_toy_data():
    src = ToySource(ToyConfig(d=16, n_features=32, mean_active=2, zipf_exponent=0.0, seed=3))
    sae = train(SAEConfig(d_in=16, d_sae=64, k=2), src.batches(256, 600),
                TrainConfig(total_tokens=256 * 600, batch_size=256, progress=False, lr=1e-2))
    rec = ground_truth_recovery(sae.W_dec, src.true_features)
    assert rec.frac_recovered >= 0.9 and rec.mmcs > 0.9


def test_recovery_of_exact_dictionary_is_one():
    feats = torch.nn.functional.normalize(torch.randn(10, 5), dim=1)
    assert ground_truth_recovery(torch.cat([feats, torch.randn(3, 5)]), feats).frac_recovered == 1.0


def test_dead_in_training_reads_the_saved_counters(tmp_path):
    """dead_train_frac is the AuxK rule at the end of training (no fire in the last dead_tokens tokens),
    from the counters saved with the SAE; dead_frac only says who stayed silent on the eval set."""
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(32, 12, generator=gen) for _ in range(10)]
    tc = TrainConfig(total_tokens=320, batch_size=32, progress=False, dead_tokens=64)
    sae = train(make_sae("topk", d_sae=96, k=2).cfg, batches, tc, out_dir=tmp_path)
    with torch.no_grad():
        sae.tokens_since_fired_F[:24] = 64  # a quarter dead by the rule, whatever training left
        sae.tokens_since_fired_F[24:] = 0
    res = evaluate(sae, batches[:1])
    assert res.dead_train_frac == 0.25
    assert res.to_dict()["dead_train_frac"] == 0.25
    assert evaluate(make_sae("topk"), batches[:1]).dead_train_frac is None  # no training record

    tc_default = TrainConfig(total_tokens=320, batch_size=32, progress=False)  # dead_tokens: the scaled default
    sae = train(make_sae("topk", d_sae=96, k=2).cfg, batches, tc_default)
    with torch.no_grad():
        sae.tokens_since_fired_F.fill_(31)
        sae.tokens_since_fired_F[0] = 32  # default window = max(batch 32, 320 // 10)
    assert evaluate(sae, batches[:1]).dead_train_frac == 1 / 96


def test_mmcs_is_the_signed_max_cosine():
    """A row anti-parallel to a feature cannot reconstruct it (codes are ≥ 0): it scores −1, not 1."""
    feats = torch.eye(3)[:2]  # e1, e2 in R^3
    negated = ground_truth_recovery(torch.cat([-feats, torch.eye(3)[2:]]), feats)
    assert negated.max_cos_per_feature == [0.0, 0.0]  # the best row is e3 (cos 0), not −e_i (|cos| 1)
    assert negated.mmcs == 0.0 and negated.frac_recovered == 0.0
    half = ground_truth_recovery(torch.stack([feats[0], -feats[1]]), feats)
    assert half.max_cos_per_feature == [1.0, 0.0] and half.mmcs == 0.5
