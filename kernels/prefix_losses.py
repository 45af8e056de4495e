"""Matryoshka prefix losses on the sparse codes, all prefixes in one pass (no dense [B, F] tensor).

Letters: B tokens, D = d_in, F features, N selected pairs, L prefixes with ends F_1 < … < F_L.
Matryoshka SAEs (Bussmann et al. 2025; Nabeshima 2025; arXiv 2503.17547) train on

    Σ_l w_l · FVU_l,   FVU_l = Σ_b ‖x_b − x̂_b^(l)‖² / Σ_b ‖x_b − x̄‖²,   x̂^(l) = z[:, :F_l]·W_dec[:F_l] + b_dec.

The codes are (values, indices), so x̂^(l) is a partial sum over the selected pairs with index < F_l.
Each pair (b, f) belongs to exactly one bucket j (F_{j−1} ≤ f < F_j); sorting the pairs by (bucket, token)
turns them into a CSR matrix of L·B "bags", and one sparse decode gives every bucket's partial
reconstruction Δ_j [L, B, D]; the prefixes are their cumulative sum over j:

    x̂^(l) = b_dec + Σ_{j ≤ l} Δ_j.

Cost: one extra decode of the N pairs (the same work as the forward's decode) plus O(L·B·D) elementwise
done in place (``PrefixFVUs``); the backward is a sparse decode's (SDDMM for the values, Sᵀ·G for W_dec)
on the bucketed pattern, after suffix sums of the per-prefix residual gradients.
SAELens' MatryoshkaBatchTopKTrainingSAE and dictionary_learning's MatryoshkaBatchTopKTrainer decode
each level from a dense [B, F] code matrix (dense slices); the values are the same (tested against the
dense reference in ``prefix_losses_reference.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import dispatch
from .prefix_losses_reference import prefix_fvus_reference
from .sparse_ops import _bag_sum, _transposed_product  # the same package's helpers
from .threads import all_threads


def bucket_by_prefix(crow_B1: Tensor, cols_N: Tensor, prefix_ends: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """(order_N, crow_bags) — the pairs reordered by (prefix bucket, token) and the row pointers of the
    L·B bags (bag j·B + b holds token b's pairs with F_{j−1} ≤ f < F_j). Pairs with f ≥ F_L are dropped.

    Within a bag the pairs keep their (row-major, increasing-column) order: the sort is stable."""
    n_rows, L = crow_B1.numel() - 1, len(prefix_ends)
    ends_L = torch.tensor(prefix_ends, dtype=cols_N.dtype, device=cols_N.device)
    bucket_N = torch.bucketize(cols_N, ends_L, right=True)  # j with F_{j−1} ≤ f < F_j
    rows_N = torch.repeat_interleave(torch.arange(n_rows, device=cols_N.device), crow_B1.diff(),
                                     output_size=cols_N.numel())
    bag_N = bucket_N * n_rows + rows_N
    keep_N = bucket_N < L
    if not bool(keep_N.all()):
        bag_N = torch.where(keep_N, bag_N, L * n_rows)
    order_N = torch.argsort(bag_N, stable=True)
    if not bool(keep_N.all()):
        order_N = order_N[: int(keep_N.sum())]
    crow_bags = torch.zeros(L * n_rows + 1, dtype=torch.int64, device=cols_N.device)
    torch.cumsum(torch.bincount(bag_N[order_N], minlength=L * n_rows), 0, out=crow_bags[1:])
    return order_N, crow_bags


def check_prefix_ends(prefix_ends: tuple[int, ...], n_features: int) -> tuple[int, ...]:
    ends = tuple(int(e) for e in prefix_ends)
    if not ends or any(b <= a for a, b in zip(ends, ends[1:])) or ends[0] <= 0 or ends[-1] > n_features:
        raise ValueError(f"prefix ends must be strictly increasing in (0, {n_features}], got {list(prefix_ends)}")
    return ends


def prefix_fvus(values_N: Tensor, crow_B1: Tensor, cols_N: Tensor, W_dec_FD: Tensor, b_dec_D: Tensor,
                x_BD: Tensor, prefix_ends: tuple[int, ...]) -> Tensor:
    """The dispatch point (as ``kernels.dispatch``): the dense reference under ``SUPERSCOPE_KERNELS=reference``,
    else the bucketed sparse path (torch embedding_bag / SDDMM on any device; no Triton kernel yet)."""
    if dispatch.backend_for(W_dec_FD) == "reference":
        ends = check_prefix_ends(prefix_ends, W_dec_FD.shape[0])
        return prefix_fvus_reference(values_N, crow_B1, cols_N, W_dec_FD, b_dec_D, x_BD, ends)
    return prefix_fvus_sparse(values_N, crow_B1, cols_N, W_dec_FD, b_dec_D, x_BD, prefix_ends)


class PrefixFVUs(torch.autograd.Function):
    """FVU_l for every prefix from bucketed codes; hand-written backward (no [L, B, D] autograd chain).

    Forward: Δ = S_bags·W_dec [L, B, D] (one embedding_bag), then in place r_0 = xc − Δ_0, r_l = r_{l−1} − Δ_l
    (xc = x − b_dec) and FVU_l = ‖r_l‖² / Σ‖x − x̄‖².
    Backward, with upstream g_l: ∂L/∂x̂^(l) = −2 g_l r_l / den; the bucket-j gradient is the suffix sum
    G_j = Σ_{l ≥ j} ∂L/∂x̂^(l) (accumulated in place from l = L−1 down); then ∂values = G_bag·W_dec at the
    pairs (SDDMM), ∂W_dec = S_bagsᵀ·G, ∂b_dec = Σ_b G_0, ∂x = −G_0 − 2·(Σ_l g_l FVU_l)·(x − x̄)/den.
    """

    @staticmethod
    def forward(ctx, values_N, W_dec_FD, b_dec_D, x_BD, crow_bags, cols_N, n_prefixes):
        L, (B, D) = n_prefixes, x_BD.shape
        with torch.no_grad():
            resid_LBD = _bag_sum(cols_N, W_dec_FD.contiguous(), crow_bags, values_N.contiguous()).view(L, B, D)
            torch.sub(x_BD - b_dec_D, resid_LBD[0], out=resid_LBD[0])
            for j in range(1, L):
                torch.sub(resid_LBD[j - 1], resid_LBD[j], out=resid_LBD[j])
            xm_BD = x_BD - x_BD.mean(0, keepdim=True)
            den = xm_BD.pow(2).sum().clamp_min(1e-12)
            fvus_L = torch.stack([torch.dot(r.reshape(-1), r.reshape(-1)) for r in resid_LBD]) / den
        ctx.save_for_backward(values_N, W_dec_FD, crow_bags, cols_N, resid_LBD, fvus_L, den,
                              xm_BD if ctx.needs_input_grad[3] else None)
        return fvus_L

    @staticmethod
    def backward(ctx, grad_L):
        values_N, W_dec_FD, crow_bags, cols_N, resid_LBD, fvus_L, den, xm_BD = ctx.saved_tensors
        L, B, D = resid_LBD.shape
        coef_L = (-2.0 * grad_L / den).to(resid_LBD.dtype)
        g_LBD = torch.empty_like(resid_LBD)
        torch.mul(resid_LBD[L - 1], coef_L[L - 1], out=g_LBD[L - 1])
        for j in range(L - 2, -1, -1):  # suffix sums: G_j = c_j·r_j + G_{j+1}
            torch.addcmul(g_LBD[j + 1], resid_LBD[j], coef_L[j], out=g_LBD[j])
        g_bags = g_LBD.view(L * B, D)
        grad_values = grad_W_dec = grad_b_dec = grad_x = None
        if ctx.needs_input_grad[0]:
            pattern = torch.sparse_csr_tensor(crow_bags, cols_N, torch.zeros_like(values_N), (L * B, W_dec_FD.shape[0]),
                                              check_invariants=False)
            with all_threads(values_N.numel() * D):
                grad_values = torch.sparse.sampled_addmm(pattern, g_bags, W_dec_FD.T).values()
        if ctx.needs_input_grad[1]:
            grad_W_dec = _transposed_product(crow_bags, cols_N, values_N.contiguous(), g_bags, W_dec_FD.shape[0])
        if ctx.needs_input_grad[2]:
            grad_b_dec = g_LBD[0].sum(0)
        if ctx.needs_input_grad[3]:
            grad_x = -g_LBD[0] - (2.0 * (grad_L * fvus_L).sum() / den).to(xm_BD.dtype) * xm_BD
        return grad_values, grad_W_dec, grad_b_dec, grad_x, None, None, None


def prefix_fvus_sparse(values_N: Tensor, crow_B1: Tensor, cols_N: Tensor, W_dec_FD: Tensor, b_dec_D: Tensor,
                       x_BD: Tensor, prefix_ends: tuple[int, ...]) -> Tensor:
    """FVU of every prefix's reconstruction → [L], differentiable in values, W_dec, b_dec and x."""
    ends = check_prefix_ends(prefix_ends, W_dec_FD.shape[0])
    n_rows = x_BD.shape[0]
    if crow_B1.numel() != n_rows + 1:
        raise ValueError(f"codes have {crow_B1.numel() - 1} rows but x has {n_rows}; pass the batch the codes encode")
    order_N, crow_bags = bucket_by_prefix(crow_B1, cols_N, ends)
    return PrefixFVUs.apply(values_N.index_select(0, order_N), W_dec_FD, b_dec_D, x_BD, crow_bags,
                            cols_N.index_select(0, order_N), len(ends))
