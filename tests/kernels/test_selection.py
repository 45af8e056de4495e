"""Fast selection == naive reference (same selected set, ties aside) on awkward shapes."""

import pytest
import torch

from superscope.kernels import selection
from superscope.kernels import selection_reference as ref
from superscope.kernels.sparse_codes import crow_from_rows

SHAPES = [(1, 7), (37, 53), (64, 1023), (257, 4099), (1000, 3001)]


def _acts(b, f, seed=0, zeros=0.5):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, f, generator=gen) - zeros).relu()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 3, 32])
def test_global_topm_matches_reference(shape, k):
    acts = _acts(*shape)
    m = k * shape[0]
    crow, cols = selection.topm_global(acts, m)
    rows_ref, cols_ref = ref.topm_global_reference(acts, m)
    assert torch.equal(cols, cols_ref)
    assert torch.equal(crow, crow_from_rows(rows_ref, shape[0]))
    assert cols.numel() == min(m, int((acts > 0).sum()))


def test_global_topm_fewer_positives_than_budget():
    acts = torch.zeros(300, 500)
    acts[3, 7] = 1.0
    acts[100, 2] = 0.5
    crow, cols = selection.topm_global(acts, 10_000 // 2)
    assert cols.tolist() == [7, 2] and crow.diff().sum() == 2


def test_global_topm_large_uses_threshold_path():
    acts = _acts(2048, 4096, seed=3)
    m = 32 * 2048
    crow, cols = selection.topm_global(acts, m)
    rows_ref, cols_ref = ref.topm_global_reference(acts, m)
    assert torch.equal(cols, cols_ref) and cols.numel() == m


@pytest.mark.parametrize("shape", SHAPES)
def test_per_column_uniform_matches_reference(shape):
    acts = _acts(*shape, seed=1)
    cap = torch.full((shape[1],), max(1, 4 * shape[0] // shape[1] + 1))
    crow, cols = selection.topm_per_column(acts, cap)
    rows_ref, cols_ref = ref.topm_per_column_reference(acts, cap)
    assert torch.equal(cols, cols_ref)
    assert torch.equal(crow, crow_from_rows(rows_ref, shape[0]))
    assert (torch.bincount(cols, minlength=shape[1]) <= cap).all()


@pytest.mark.parametrize("shape", [(37, 53), (1000, 3001), (2049, 517)])
def test_per_column_varied_capacities_match_reference(shape):
    acts = _acts(*shape, seed=2)
    gen = torch.Generator().manual_seed(5)
    cap = torch.randint(0, 12, (shape[1],), generator=gen)
    cap[:3] = shape[0]  # whole columns (the exact path)
    cap[3] = shape[0] // 2
    crow, cols = selection.topm_per_column(acts, cap)
    rows_ref, cols_ref = ref.topm_per_column_reference(acts, cap)
    assert torch.equal(cols, cols_ref)
    assert torch.equal(crow, crow_from_rows(rows_ref, shape[0]))


def test_ties_select_the_budget_exactly():
    acts = torch.ones(40, 30)
    crow, cols = selection.topm_global(acts, 100)
    assert cols.numel() == 100
    crow, cols = selection.topm_per_column(acts, torch.full((30,), 3))
    assert (torch.bincount(cols, minlength=30) == 3).all()


def test_threshold_select():
    acts = torch.tensor([[0.0, 0.5, 2.0], [1.0, 0.2, 0.0]])
    crow, cols = selection.threshold_select(acts, torch.tensor([0.1, 0.3, 1.0]))
    assert crow.tolist() == [0, 2, 3] and cols.tolist() == [1, 2, 0]
