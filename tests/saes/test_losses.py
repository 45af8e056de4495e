import torch

from superscope.saes import aux_zipf_loss, auxk_loss, normalized_mse
from superscope.saes.losses import zipf_aux_set

from .conftest import make_sae


def test_normalized_mse_of_batch_mean_is_one():
    x = torch.randn(50, 7, dtype=torch.float64)
    assert float(normalized_mse(x, x.mean(0, keepdim=True).expand_as(x))) == 1.0


def test_auxk_zero_without_dead_features():
    sae = make_sae("topk")
    out = sae(torch.randn(16, 12))
    assert float(auxk_loss(sae, out, torch.zeros(48, dtype=torch.bool), 6)) == 0.0


def test_auxk_positive_and_trains_dead_features_only():
    sae = make_sae("topk")
    out = sae(torch.randn(16, 12))
    dead = torch.zeros(48, dtype=torch.bool)
    dead[:10] = True
    loss = auxk_loss(sae, out, dead, 6)
    assert float(loss) > 0
    loss.backward()
    assert sae.W_dec.grad[10:].abs().sum() == 0 and sae.W_dec.grad[:10].abs().sum() > 0
    assert sae.W_enc.grad[:, 10:].abs().sum() == 0


def test_aux_zipf_reduces_to_auxk_when_gamma_is_zero():
    sae = make_sae("topk")
    out = sae(torch.randn(16, 12))
    dead = torch.zeros(48, dtype=torch.bool)
    dead[[1, 5, 9, 30]] = True
    freq = torch.rand(48)
    a = auxk_loss(sae, out, dead, 6)
    z = aux_zipf_loss(sae, out, freq, dead, 6, gamma=0.0)
    assert torch.equal(a, z)
    assert torch.equal(zipf_aux_set(freq, dead, 1e-12, 1.0), dead)


def test_zipf_set_marks_under_used_features():
    freq = torch.arange(1, 101).float().pow(-1.0)
    freq[3] = 1e-6  # far below its rank's target
    dead = torch.zeros(100, dtype=torch.bool)
    u = zipf_aux_set(freq, dead, gamma=0.5, s=1.0)
    assert u[3] and not u[0]
    assert u.sum() < 100


def test_zipf_aux_set_does_not_depend_on_feature_order():
    """Tied frequencies (every feature fired its uniform FC capacity) get one target: the set is the
    same whichever order the features are in (a stable argsort used to rank ties by index)."""
    from superscope.saes.losses import zipf_aux_set

    freq_F = torch.tensor([0.2] * 6 + [0.05] * 6)
    dead_F = torch.zeros(12, dtype=torch.bool)
    chosen = zipf_aux_set(freq_F, dead_F, gamma=0.9, s=1.0)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    assert torch.equal(zipf_aux_set(freq_F[perm], dead_F, gamma=0.9, s=1.0), chosen[perm])
    assert chosen[:6].all() == chosen[:6].any() and chosen[6:].all() == chosen[6:].any()
