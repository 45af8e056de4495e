"""Triton batch-level selection (CPU interpreter, fp32) == the naive reference rules.

Random continuous activations have no ties, so the selected sets must be identical; with ties only
the budget is checked (the reference picks tied entries arbitrarily too).
"""

from __future__ import annotations

import pytest
import torch

from superscope.kernels import selection_reference as ref
from superscope.kernels.sparse_codes import crow_from_rows

from .test_triton_common import interpreter_only, tk  # noqa: F401  (tk: module fixture)

pytestmark = interpreter_only
SHAPES = [(1, 7), (37, 53), (64, 257), (130, 97)]


def _acts(b, f, seed=0, zeros=0.5):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, f, generator=gen) - zeros).relu()


def _assert_same(crow, cols, rows_ref, cols_ref, n_rows):
    assert torch.equal(cols, cols_ref)
    assert torch.equal(crow, crow_from_rows(rows_ref, n_rows))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 3])
def test_global_topm_matches_reference(tk, shape, k):
    acts = _acts(*shape, seed=k)
    m = k * shape[0]
    crow, cols = tk.triton_selection.topm_global(acts, m)
    _assert_same(crow, cols, *ref.topm_global_reference(acts, m), shape[0])
    assert cols.numel() == min(m, int((acts > 0).sum()))


def test_global_topm_edge_cases(tk):
    acts = torch.zeros(30, 50)
    acts[3, 7], acts[20, 2] = 1.0, 0.5
    crow, cols = tk.triton_selection.topm_global(acts, 500)  # fewer positives than the budget
    assert cols.tolist() == [7, 2] and crow.diff().sum() == 2 and crow[4] == 1
    crow, cols = tk.triton_selection.topm_global(torch.ones(40, 30), 100)  # ties: the budget exactly
    assert cols.numel() == 100 and crow[-1] == 100
    crow, cols = tk.triton_selection.topm_global(torch.ones(4, 5), 0)
    assert cols.numel() == 0 and crow.tolist() == [0] * 5


@pytest.mark.parametrize("shape", SHAPES)
def test_per_column_uniform_matches_reference(tk, shape):
    acts = _acts(*shape, seed=5)
    cap = torch.full((shape[1],), max(1, 4 * shape[0] // shape[1] + 1))
    crow, cols = tk.triton_selection.topm_per_column(acts, cap)
    _assert_same(crow, cols, *ref.topm_per_column_reference(acts, cap), shape[0])
    assert (torch.bincount(cols, minlength=shape[1]) <= cap).all()


def test_per_column_varied_capacities_match_reference(tk):
    acts = _acts(211, 61, seed=2)
    gen = torch.Generator().manual_seed(5)
    cap = torch.randint(0, 12, (61,), generator=gen)
    cap[:3] = 211  # whole columns (more than the groups: "all positives" bound)
    cap[3] = 105
    cap[4] = 0
    crow, cols = tk.triton_selection.topm_per_column(acts, cap)
    _assert_same(crow, cols, *ref.topm_per_column_reference(acts, cap), 211)
    assert not (cols == 4).any()


def test_per_column_ties_and_bad_capacity(tk):
    crow, cols = tk.triton_selection.topm_per_column(torch.ones(40, 30), torch.full((30,), 3))
    assert (torch.bincount(cols, minlength=30) == 3).all() and crow[-1] == 90
    with pytest.raises(ValueError, match="capacity_F must have shape"):
        tk.triton_selection.topm_per_column(torch.ones(4, 5), torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match="2-D"):
        tk.triton_selection.topm_global(torch.ones(2, 3, 4), 3)
