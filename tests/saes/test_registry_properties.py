"""One property test per invariant, over every registered architecture (STYLE.md §10)."""

import torch

from superscope.saes import TrainConfig, load_sae, train
from superscope.saes.feature_choice import FeatureChoiceSAE

from .conftest import ARCHS, make_sae


def test_registry_has_the_built_in_variants():
    flat = {"topk", "batchtopk", "mutual_choice", "feature_choice"}
    assert flat | {f"matryoshka_{name}" for name in flat} <= set(ARCHS)


def test_forward_equals_decode_of_encode(arch):
    sae = make_sae(arch)
    x = torch.randn(33, 12)
    for mode in (True, False):
        sae.train(mode)
        out = sae(x)
        torch.testing.assert_close(out.x_hat, sae.decode(out.codes.to_dense()))
        torch.testing.assert_close(out.x_hat, sae.decode(sae.encode(x)))


def test_decoder_rows_unit_norm_after_training(arch):
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(32, 12, generator=gen) * 3 for _ in range(6)]
    sae = train(make_sae(arch).cfg, batches, TrainConfig(total_tokens=192, batch_size=32, progress=False, lr=1e-2))
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(48), atol=1e-5, rtol=0)


def test_save_load_identity(arch, tmp_path):
    sae = make_sae(arch, input_scale=0.7)
    sae.freq_ema_F.uniform_()
    sae.save(tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert loaded.cfg == sae.cfg and type(loaded) is type(sae)
    for (name, a), (_, b) in zip(sae.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.randn(20, 12)
    sae.eval(), loaded.eval()
    torch.testing.assert_close(sae(x).x_hat, loaded(x).x_hat)


def test_topk_rows_have_exactly_k():
    sae = make_sae("topk", k=5)
    codes = sae(torch.randn(40, 12)).codes
    assert (codes.crow_B1.diff() == 5).all()


def test_batch_selection_uses_the_whole_budget():
    for arch in ("mutual_choice", "batchtopk"):
        sae = make_sae(arch, k=3)
        with torch.no_grad():
            sae.b_enc.fill_(5.0)  # every pre-activation positive: the budget binds
        codes = sae(torch.randn(40, 12)).codes
        assert codes.cols_N.numel() == 3 * 40
        assert int(codes.l0_per_row().sum()) == 120
        with torch.no_grad():  # per-token L0 is free to vary: a token with a large norm takes more
            x = torch.randn(40, 12)
            x[0] *= 50
            l0 = sae(x).codes.l0_per_row()
        assert l0.float().std() > 0


def test_feature_choice_respects_capacities():
    sae = make_sae("feature_choice", k=3)
    x = torch.randn(40, 12)
    codes = sae(x).codes
    cap = sae.capacities(40)
    assert (torch.bincount(codes.cols_N, minlength=48) <= cap).all()
    assert int(cap.sum()) >= 3 * 40


def test_feature_choice_zipf_capacities_sum_to_budget():
    sae = make_sae("feature_choice", k=3, capacity_mode="zipf", zipf_exponent=1.0)
    sae.freq_ema_F.copy_(torch.linspace(1, 0.01, 48))
    cap = sae.capacities(40)
    assert int(cap.sum()) == 120 and int(cap.max()) <= 40
    assert cap[0] >= cap[10] >= cap[47]
    fitted = make_sae("feature_choice", k=3, capacity_mode="zipf")
    fitted.demand_ema_F.copy_(torch.arange(1, 49).float().pow(-0.8))
    cap = fitted.capacities(40)
    assert int(cap.sum()) == 120 and cap[0] > cap[47]


def test_thresholds_learned_and_used_at_inference():
    for arch in ("mutual_choice", "feature_choice"):
        sae = make_sae(arch, k=3, inference_mode="threshold")
        gen = torch.Generator().manual_seed(2)
        batches = [torch.randn(64, 12, generator=gen) for _ in range(20)]
        trained = train(sae.cfg, batches, TrainConfig(total_tokens=64 * 20, batch_size=64, progress=False))
        state = dict(trained.named_buffers())
        theta = state.get("theta", state.get("theta_F"))
        assert float(theta.max()) > 0
        trained.eval()
        x = torch.randn(1, 12)  # a single token: batch selection would be degenerate
        dense = trained.encode(x)
        pre = ((x * trained.cfg.input_scale - trained.b_dec) @ trained.W_enc + trained.b_enc).relu()
        torch.testing.assert_close(dense, pre * (pre > theta))
    assert isinstance(trained, FeatureChoiceSAE)
