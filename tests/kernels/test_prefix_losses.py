"""Matryoshka prefix losses on sparse codes equal the dense reference, values and every gradient."""

import pytest
import torch

from superscope.kernels import prefix_losses
from superscope.kernels.prefix_losses_reference import prefix_fvus_reference
from superscope.kernels.sparse_codes import crow_from_rows

TOL = {torch.float64: dict(rtol=1e-9, atol=1e-9), torch.float32: dict(rtol=2e-5, atol=2e-5)}


def _problem(b, d, f, density=0.15, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=gen, dtype=dtype)
    W_dec = torch.randn(f, d, generator=gen, dtype=dtype)
    b_dec = torch.randn(d, generator=gen, dtype=dtype)
    mask = torch.rand(b, f, generator=gen) < density
    mask[0] = False  # an empty row
    mask[1, : f // 3] = False  # a row with codes only in outer prefixes
    rows, cols = mask.nonzero(as_tuple=True)
    values = torch.rand(rows.numel(), generator=gen, dtype=dtype)
    return values, crow_from_rows(rows, b), cols, W_dec, b_dec, x


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape,ends", [((5, 3, 7), (1, 3, 7)), ((37, 11, 53), (3, 6, 13, 26, 53)),
                                        ((64, 17, 129), (8, 16, 32, 64, 129)), ((23, 5, 31), (31,)),
                                        ((19, 7, 41), (2, 17, 30))])  # the last: pairs beyond F_L are dropped
def test_prefix_fvus_values_and_grads(shape, ends, dtype):
    problem = _problem(*shape, dtype=dtype)
    values, crow, cols, W_dec, b_dec, x = problem
    ins = [t.clone().requires_grad_() for t in (values, W_dec, b_dec, x)]
    ins_ref = [t.clone().requires_grad_() for t in (values, W_dec, b_dec, x)]
    out = prefix_losses.prefix_fvus_sparse(ins[0], crow, cols, ins[1], ins[2], ins[3], ends)
    out_ref = prefix_fvus_reference(ins_ref[0], crow, cols, ins_ref[1], ins_ref[2], ins_ref[3], ends)
    assert out.shape == (len(ends),)
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    weights = torch.linspace(0.5, 2.0, len(ends), dtype=dtype)  # unequal weights: every prefix's gradient counts
    (weights * out).sum().backward()
    (weights * out_ref).sum().backward()
    for name, a, b in zip(("values", "W_dec", "b_dec", "x"), ins, ins_ref):
        torch.testing.assert_close(a.grad, b.grad, **TOL[dtype], msg=name)


def test_last_prefix_is_the_plain_fvu_and_prefixes_nest():
    values, crow, cols, W_dec, b_dec, x = _problem(40, 9, 60)
    fvus = prefix_losses.prefix_fvus_sparse(values, crow, cols, W_dec, b_dec, x, (10, 30, 60))
    z = torch.zeros(40, 60, dtype=values.dtype)
    z[torch.repeat_interleave(torch.arange(40), crow.diff()), cols] = values
    x_hat = z @ W_dec + b_dec
    plain = (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    torch.testing.assert_close(fvus[-1], plain)
    only_first = (x - (z[:, :10] @ W_dec[:10] + b_dec)).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    torch.testing.assert_close(fvus[0], only_first)


def test_dispatch_reference_env(monkeypatch):
    values, crow, cols, W_dec, b_dec, x = _problem(12, 4, 20)
    fast = prefix_losses.prefix_fvus(values, crow, cols, W_dec, b_dec, x, (5, 20))
    monkeypatch.setenv("SUPERSCOPE_KERNELS", "reference")
    ref = prefix_losses.prefix_fvus(values, crow, cols, W_dec, b_dec, x, (5, 20))
    torch.testing.assert_close(fast, ref)


@pytest.mark.parametrize("ends", [(), (5, 5, 20), (0, 20), (5, 21)])
def test_bad_prefix_ends_are_one_clear_error(ends):
    values, crow, cols, W_dec, b_dec, x = _problem(6, 3, 20)
    with pytest.raises(ValueError, match="strictly increasing"):
        prefix_losses.prefix_fvus(values, crow, cols, W_dec, b_dec, x, ends)


def test_no_dense_codes_matrix(monkeypatch):
    """The fast path never builds a [B, F] codes matrix (SparseCodes.to_dense is the reference's way)."""
    from superscope.kernels import sparse_codes

    def forbidden(self):
        raise AssertionError("dense [B, F] codes built")
    monkeypatch.setattr(sparse_codes.SparseCodes, "to_dense", forbidden)
    values, crow, cols, W_dec, b_dec, x = _problem(30, 8, 50)
    prefix_losses.prefix_fvus_sparse(values, crow, cols, W_dec, b_dec, x, (5, 25, 50))
