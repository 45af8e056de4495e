"""The decoder-gradient projection (Gao et al. 2024 App. A): after it, each row's gradient is orthogonal
to the row. The unit-norm property test cannot see a missing projection (the renormalisation after the
step hides it), so these tests look at the gradient itself."""

import torch

from superscope.saes.losses import normalized_mse

from .conftest import make_sae


def _parallel_F(sae) -> torch.Tensor:
    """|g_f · u_f| per row, u_f the unit row."""
    u = torch.nn.functional.normalize(sae.W_dec.detach(), dim=1)
    return (sae.W_dec.grad * u).sum(1).abs()


def test_decoder_gradient_is_orthogonal_to_its_row_after_projection(arch):
    gen = torch.Generator().manual_seed(0)
    sae = make_sae(arch)
    sae.train()
    x = torch.randn(64, 12, generator=gen) * 2 + 1
    out = sae(x)
    normalized_mse(out.x_scaled, out.x_hat_scaled).backward()
    raw = sae.W_dec.grad.clone()
    assert _parallel_F(sae).max() > 1e-3  # the raw gradient has a parallel part: a missing projection fails
    sae.remove_parallel_decoder_grad()
    assert _parallel_F(sae).max() < 1e-6
    u = torch.nn.functional.normalize(sae.W_dec.detach(), dim=1)
    orthogonal_part = raw - (raw * u).sum(1, keepdim=True) * u
    assert torch.allclose(sae.W_dec.grad, orthogonal_part, atol=1e-7)  # only the parallel part is removed


def test_projection_holds_for_rows_that_are_not_unit_norm():
    gen = torch.Generator().manual_seed(1)
    sae = make_sae("topk")
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(sae.W_dec.shape[0], 1, generator=gen) * 3 + 0.2)
    sae.W_dec.grad = torch.randn(sae.W_dec.shape, generator=gen)
    assert _parallel_F(sae).max() > 0.1
    sae.remove_parallel_decoder_grad()
    assert _parallel_F(sae).max() < 1e-5


def test_projection_without_a_gradient_is_a_no_op():
    sae = make_sae("topk")
    sae.remove_parallel_decoder_grad()
    assert sae.W_dec.grad is None
