import torch

from superscope.activations.toy import ToyConfig, ToySource


def test_toy_is_seeded_and_has_unit_features():
    src = ToySource(ToyConfig(d=8, n_features=20, mean_active=3))
    a = list(src.batches(16, 3, seed=4))
    b = list(src.batches(16, 3, seed=4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    torch.testing.assert_close(src.true_features.norm(dim=1), torch.ones(20))
    assert a[0].shape == (16, 8)


def test_toy_density_and_zipf_order():
    src = ToySource(ToyConfig(d=8, n_features=50, mean_active=5, zipf_exponent=1.0))
    _, coeff = src.sample(20000, torch.Generator().manual_seed(0))
    active = (coeff > 0).float()
    assert abs(active.sum(1).mean() - 5) < 0.2
    freq = active.mean(0)
    assert freq[0] > freq[10] > freq[49]


def test_toy_correlations_keep_marginals():
    src = ToySource(ToyConfig(d=8, n_features=8, mean_active=2, zipf_exponent=0.0, correlation=0.8, corr_block=4))
    _, coeff = src.sample(40000, torch.Generator().manual_seed(0))
    active = (coeff > 0).float()
    torch.testing.assert_close(active.mean(0), torch.full((8,), 0.25), atol=0.02, rtol=0)
    c = torch.corrcoef(active.T)
    assert c[0, 1] > 0.3 and abs(c[0, 5]) < 0.05
