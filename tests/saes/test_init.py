"""Data-dependent initialisation (saes/init.py): geometric median and input scale."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from superscope.saes import SAEConfig, TrainConfig, Trainer
from superscope.saes.init import geometric_median, input_scale_for


def _sum_of_distances(m_D: np.ndarray, x_BD: np.ndarray) -> float:
    return float(np.linalg.norm(x_BD - m_D, axis=1).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometric_median_matches_scipy(seed):
    """Weiszfeld's point minimises Σ‖x_b − m‖ as well as a general-purpose optimiser does, and is the same point."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 5, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0], dtype=torch.float64)
    x += torch.rand(60, 5, generator=gen, dtype=torch.float64).pow(4) * 6  # skewed: the mean is not the median
    x_np = x.numpy()
    ref = minimize(_sum_of_distances, x_np.mean(0), args=(x_np,), method="BFGS", options={"gtol": 1e-10})
    ours = geometric_median(x).numpy()
    assert _sum_of_distances(ours, x_np) <= ref.fun + 1e-9
    np.testing.assert_allclose(ours, ref.x, atol=1e-4)
    assert np.linalg.norm(x_np.mean(0) - ref.x) > 1e-2  # the case tells the median from the mean


def test_geometric_median_resists_outliers():
    """A few far outliers barely move the median (breakdown point 1/2) while they drag the mean."""
    gen = torch.Generator().manual_seed(0)
    inliers = torch.randn(200, 8, generator=gen)
    outliers = torch.full((6, 8), 1e3)  # 3 % of the points, ~2800 away
    clean, dirty = geometric_median(inliers), geometric_median(torch.cat([inliers, outliers]))
    mean_shift = float((torch.cat([inliers, outliers]).mean(0) - inliers.mean(0)).norm())
    median_shift = float((dirty - clean).norm())
    assert mean_shift > 50 and median_shift < 0.25
    assert dirty.dtype == inliers.dtype


def test_geometric_median_of_float32_stays_float32_and_handles_a_repeated_point():
    x = torch.tensor([[1.0, 2.0]] * 5 + [[3.0, 4.0]], dtype=torch.float32)
    m = geometric_median(x)
    assert m.dtype == torch.float32 and torch.allclose(m, torch.tensor([1.0, 2.0]), atol=1e-4)


def test_input_scale_gives_mean_squared_norm_d():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(500, 24, generator=gen) * torch.linspace(0.1, 30, 24) + 7.0  # anisotropic, off-centre
    s = input_scale_for(x)
    assert float((s * x.double()).pow(2).sum(1).mean()) == pytest.approx(24, rel=1e-9)
    assert input_scale_for(3 * x) == pytest.approx(s / 3, rel=1e-6)


@pytest.mark.parametrize("bad", [torch.zeros(4, 3), torch.full((4, 3), float("inf"))])
def test_input_scale_refuses_zero_or_non_finite_activations(bad):
    with pytest.raises(ValueError, match="input scale"):
        input_scale_for(bad)


def test_trainer_initialises_scale_and_b_dec_from_the_first_batch():
    """The trainer's init is these two functions on its first batch: E‖s·x‖² = d, b_dec = median of s·x."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=gen) * 3 + 2
    t = Trainer(SAEConfig(d_in=16, d_sae=64, k=4), TrainConfig(total_tokens=256, batch_size=256, progress=False))
    t.initialise(x)
    s = t.sae.cfg.input_scale
    assert float((s * x.double()).pow(2).sum(1).mean()) == pytest.approx(16, rel=1e-6)
    assert torch.allclose(t.sae.b_dec.detach(), geometric_median(x * s), atol=1e-5)


def test_train_config_has_no_unread_init_batches_field():
    """init_batches was documented but never read (the trainer estimates from its first batch); it is gone."""
    assert "init_batches" not in TrainConfig().to_dict()
