"""Contenders for ``benchmarks/kernel_speed.py``: each builder returns {name: zero-argument callable} on
shared inputs. "ours" is the Triton kernel on CUDA and the CPU path (``selection.py`` /
``sparse_ops.py``) elsewhere; "reference" the plain-torch spec; the rest are peers measured in the
same run (bare cuBLAS GEMM, flat ``torch.topk``, dense matmul, ``F.embedding_bag``, sparsify's Triton
embedding bag, whole training steps of SAELens and sparsify).

Letters: B tokens, D = d_in, F features, K = k, M = k·B the batch budget, N selected pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as Fn
from torch import Tensor

from superscope.kernels import selection, selection_reference, sparse_ops, sparse_ops_reference
from superscope.kernels.dispatch import _encode_topk_torch
from superscope.kernels.sparse_codes import crow_uniform

Contenders = dict[str, Callable[[], Any]]


def make_problem(batch: int, d: int, n_features: int, k: int, dtype: torch.dtype, device: str, seed: int = 0):
    """Activations with a mean direction (like a residual stream), an SAE-like encoder (W_enc = W_decᵀ,
    unit decoder rows), and TopK codes of that encoder."""
    gen = torch.Generator(device=device).manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=gen, device=device)  # noqa: E731
    x_BD = rand(batch, d) + rand(d)
    W_dec_FD = rand(n_features, d)
    W_dec_FD /= W_dec_FD.norm(dim=1, keepdim=True)
    x_BD, W_dec_FD, b_enc_F = x_BD.to(dtype), W_dec_FD.to(dtype), (0.1 * rand(n_features)).to(dtype)
    W_enc_DF = W_dec_FD.T.contiguous()
    with torch.no_grad():
        pre_BF = torch.addmm(b_enc_F, x_BD, W_enc_DF)
        vals_BK, idx_BK = pre_BF.topk(k, dim=1)
        idx_BK, order = idx_BK.sort(dim=1)
        vals_BK = vals_BK.gather(1, order).relu()
    return {"x_BD": x_BD, "W_enc_DF": W_enc_DF, "b_enc_F": b_enc_F, "W_dec_FD": W_dec_FD,
            "acts_BF": pre_BF.relu_(), "idx_BK": idx_BK, "vals_BK": vals_BK}


def _triton(module: str):
    import importlib

    return importlib.import_module(f"superscope.kernels.{module}")


def encoder(p: dict, k: int) -> Contenders:
    x, W, b = p["x_BD"], p["W_enc_DF"], p["b_enc_F"]
    cont: Contenders = {
        "gemm": lambda: torch.addmm(b, x, W),
        "gemm_topk": lambda: torch.addmm(b, x, W).topk(k, dim=1, sorted=False),
    }
    if x.is_cuda:
        fused = _triton("triton_encode_topk").fused_encode_topk
        cont["ours"] = lambda: fused(x, W, b, k)
    else:
        cont["ours"] = lambda: _encode_topk_torch(x, W, b, k)
    return cont


def global_selection(p: dict, k: int) -> Contenders:
    acts = p["acts_BF"]
    m = k * acts.shape[0]
    ours = _triton("triton_selection").topm_global if acts.is_cuda else selection.topm_global
    return {
        "ours": lambda: ours(acts, m),
        "reference": lambda: selection_reference.topm_global_reference(acts, m),
        "flat_topk": lambda: acts.view(-1).topk(m, sorted=False),
    }


def column_selection(p: dict, k: int) -> Contenders:
    acts = p["acts_BF"]
    n_rows, n_cols = acts.shape
    per = math.ceil(k * n_rows / n_cols)  # uniform capacities, Σ m_f ≈ M
    cap_F = torch.full((n_cols,), per, dtype=torch.long, device=acts.device)
    ours = _triton("triton_selection").topm_per_column if acts.is_cuda else selection.topm_per_column
    return {
        "ours": lambda: ours(acts, cap_F),
        "reference": lambda: selection_reference.topm_per_column_reference(acts, cap_F),
        "column_topk": lambda: acts.topk(per, dim=0, sorted=False),
    }


def _decode_impls(p: dict) -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    """name → f(values_BK, W_dec_FD) -> x̂ [B, D]; each differentiable in both."""
    idx_BK = p["idx_BK"]
    B, K = idx_BK.shape
    crow, cols = crow_uniform(B, K, device=idx_BK.device), idx_BK.reshape(-1)
    ours = _triton("triton_sparse_decode").sparse_decode if idx_BK.is_cuda else sparse_ops.sparse_decode

    def dense(v, W):
        z_BF = torch.zeros(B, W.shape[0], dtype=v.dtype, device=v.device).scatter(1, idx_BK, v)
        return z_BF @ W

    impls = {
        "ours": lambda v, W: ours(v.reshape(-1), crow, cols, W),
        "reference": lambda v, W: sparse_ops_reference.sparse_decode_reference(v.reshape(-1), crow, cols, W),
        "dense": dense,
        "embedding_bag": lambda v, W: Fn.embedding_bag(idx_BK, W, per_sample_weights=v, mode="sum"),
    }
    if idx_BK.is_cuda:
        try:
            from sparsify.xformers import xformers_embedding_bag
        except ImportError:
            pass
        else:
            impls["sparsify_triton"] = lambda v, W: xformers_embedding_bag(idx_BK, W, v)
    return impls


def decode_forward(p: dict) -> Contenders:
    v, W = p["vals_BK"], p["W_dec_FD"]

    def run(fn):
        with torch.no_grad():
            return fn(v, W)
    return {name: (lambda fn=fn: run(fn)) for name, fn in _decode_impls(p).items()}


def decode_forward_backward(p: dict) -> Contenders:
    v0, W0 = p["vals_BK"], p["W_dec_FD"]
    g = torch.randn(v0.shape[0], W0.shape[1], device=W0.device).to(W0.dtype)
    v, W = v0.clone().requires_grad_(), W0.clone().requires_grad_()

    def run(fn):
        v.grad = W.grad = None
        fn(v, W).backward(g)
    return {name: (lambda fn=fn: run(fn)) for name, fn in _decode_impls(p).items()}


def encoder_backward(p: dict) -> Contenders:
    """Selected pre-activations, forward + backward (∂xc, ∂W_enc, ∂b_enc) for TopK codes."""
    x0, W0, b0, idx_BK = p["x_BD"], p["W_enc_DF"], p["b_enc_F"], p["idx_BK"]
    B, K = idx_BK.shape
    crow, cols = crow_uniform(B, K, device=x0.device), idx_BK.reshape(-1)
    with torch.no_grad():
        pre_N = torch.addmm(b0, x0, W0).gather(1, idx_BK).reshape(-1)
    g_N = torch.randn(pre_N.numel(), device=pre_N.device).to(pre_N.dtype)
    leaves = [t.clone().requires_grad_() for t in (x0, W0, b0)]
    ours = _triton("triton_sparse_encode_backward").selected_preacts if x0.is_cuda else sparse_ops.selected_preacts

    def run(fn):
        for t in leaves:
            t.grad = None
        fn(*leaves, crow, cols, pre_N).backward(g_N)
    return {"ours": lambda: run(ours), "reference": lambda: run(sparse_ops_reference.selected_preacts_reference)}


# ---- whole training steps (builders: each allocates its own SAE + optimizer) --------------------
def step_builders(x_BD: Tensor, n_features: int, k: int) -> dict[str, Callable[[], Callable[[], Any]]]:
    return {"floor": lambda: _floor_step(x_BD, n_features), "ours": lambda: _ours_step(x_BD, n_features, k),
            "saelens": lambda: _saelens_step(x_BD, n_features, k),
            "sparsify": lambda: _sparsify_step(x_BD, n_features, k)}


def _floor_step(x_BD: Tensor, n_features: int):
    W = torch.randn(x_BD.shape[1], n_features, device=x_BD.device, dtype=x_BD.dtype)
    b = torch.zeros(n_features, device=x_BD.device, dtype=x_BD.dtype)
    return lambda: torch.addmm(b, x_BD, W)


def _ours_step(x_BD: Tensor, n_features: int, k: int):
    """superscope's real ``Trainer.train_step``: forward, loss, backward, grad projection + clip, Adam,
    decoder renorm, firing statistics (no dead features during the measurement: no AuxK)."""
    from superscope.saes import SAEConfig, TrainConfig, Trainer

    B, d = x_BD.shape
    dtype = str(x_BD.dtype).removeprefix("torch.")
    tc = TrainConfig(total_tokens=B * 1_000_000, batch_size=B, progress=False)
    trainer = Trainer(SAEConfig(architecture="topk", d_in=d, d_sae=n_features, k=k, dtype=dtype), tc)
    trainer.initialise(x_BD)
    trainer.sae.train()
    return lambda: trainer.train_step(x_BD)


def _saelens_step(x_BD: Tensor, n_features: int, k: int):
    """SAELens 6.x TopK training SAE stepped like ``SAETrainer._train_step``."""
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    B, d = x_BD.shape
    dtype = str(x_BD.dtype).removeprefix("torch.")
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=n_features, k=k, device=str(x_BD.device), dtype=dtype))
    opt = torch.optim.Adam(sae.parameters(), lr=2e-4)
    since_fired_F = torch.zeros(n_features, device=x_BD.device)

    def step():
        out = sae.training_forward_pass(TrainStepInput(sae_in=x_BD, coefficients={},
                                                       dead_neuron_mask=since_fired_F > 1000,
                                                       n_training_steps=0, is_logging_step=False))
        with torch.no_grad():
            fired = out.feature_acts.bool().any(0)
            since_fired_F.add_(1)
            since_fired_F[fired] = 0
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        return float(out.loss.detach())
    return step


def _sparsify_step(x_BD: Tensor, n_features: int, k: int):
    """EleutherAI sparsify ``SparseCoder`` stepped like its trainer (on CUDA: its bf16 autocast forward
    and Triton embedding-bag decoder, as shipped)."""
    from sparsify import SparseCoder, SparseCoderConfig

    B, d = x_BD.shape
    sae = SparseCoder(d, SparseCoderConfig(k=k, num_latents=n_features), device=x_BD.device, dtype=x_BD.dtype)
    opt = torch.optim.Adam(sae.parameters(), lr=2e-4)
    since_fired_F = torch.zeros(n_features, dtype=torch.long, device=x_BD.device)

    def step():
        out = sae(x_BD, dead_mask=since_fired_F > 10_000_000)
        loss = out.fvu + out.auxk_loss / 32
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            since_fired_F.add_(B)
            since_fired_F[out.latent_indices.flatten()] = 0
        sae.set_decoder_norm_to_unit_norm()
        return float(loss.detach())
    return step
