"""Every dispatch path gives the reference's outputs and gradients.

``SUPERSCOPE_KERNELS=reference`` (the naive specs) against the default CPU path, for each dispatch
function on shapes large enough that the fast paths take their threshold branches, and for every
SAE variant and mode end to end: reconstruction, codes, losses (incl. AuxK / aux_zipf) and the
gradient of every parameter. ``run_sae_step`` is reused by the Triton-interpreter SAE test.
"""

from __future__ import annotations

import pytest
import torch

from superscope.kernels import dispatch
from superscope.saes import SAEConfig, create_sae, known_architectures
from superscope.saes.losses import aux_zipf_loss, auxk_loss, normalized_mse

CASES = [(arch, "batch", {}) for arch in known_architectures()] + [
    ("feature_choice", "batch", {"capacity_mode": "zipf", "zipf_exponent": 1.0}),
    ("mutual_choice", "threshold", {}),
    ("feature_choice", "threshold", {}),
]


def run_sae_step(arch: str, mode: str, kw: dict, n_tokens: int = 1024, d_in: int = 16, d_sae: int = 128,
                 k: int = 4, device: str = "cpu", dtype: str = "float32") -> dict[str, torch.Tensor]:
    """One forward + losses + backward; returns outputs and every parameter gradient (on the CPU)."""
    gen = torch.Generator().manual_seed(0)
    sae = create_sae(SAEConfig(architecture=arch, d_in=d_in, d_sae=d_sae, k=k, inference_mode=mode, dtype=dtype, **kw))
    sae.reset_parameters(1)
    with torch.no_grad():
        sae.b_enc.copy_(0.1 * torch.randn(d_sae, generator=gen))
        sae.b_dec.copy_(0.1 * torch.randn(d_in, generator=gen))
        sae.freq_ema_F.copy_(torch.rand(d_sae, generator=gen) * 0.05)
        for name, buf in sae.named_buffers():
            if name.startswith("theta") and buf.is_floating_point():
                buf.fill_(0.3)
    sae.to(device)
    if mode == "threshold":
        sae.eval()
    x = (torch.randn(n_tokens, d_in, generator=gen) + 0.5).to(device)
    out = sae(x)
    dead_F = (torch.arange(d_sae) % 3 == 0).to(device)
    l_rec = normalized_mse(out.x_scaled, out.x_hat_scaled)
    l_aux = auxk_loss(sae, out, dead_F, k_aux=6)
    l_zipf = aux_zipf_loss(sae, out, sae.freq_ema_F, dead_F, k_aux=6)
    (l_rec + l_aux + l_zipf).backward()
    result = {"x_hat": out.x_hat, "codes": out.codes.to_dense(), "l_rec": l_rec, "l_aux": l_aux, "l_zipf": l_zipf}
    result.update({f"grad_{n}": p.grad for n, p in sae.named_parameters()})
    return {name: t.detach().float().cpu() for name, t in result.items()}


def assert_same_results(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join([c[0], c[1], *map(str, c[2].values())]))
def test_sae_reference_equals_cpu_path(case, monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    theirs = run_sae_step(*case)
    monkeypatch.setenv(dispatch.ENV_VAR, "auto")
    ours = run_sae_step(*case)
    assert_same_results(ours, theirs)
    assert (ours["codes"] != 0).any() and ours["l_aux"] > 0


def _select_problem(b=512, f=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, f, generator=gen) - 0.5).relu()


@pytest.mark.parametrize("name", ["topm_global", "topm_per_column", "encode_topk", "encoder_preacts",
                                  "threshold_select", "selected_preacts", "sparse_decode"])
def test_each_dispatch_function_reference_equals_cpu(name, monkeypatch):
    gen = torch.Generator().manual_seed(1)
    acts = _select_problem()
    xc, W_enc, b_enc = torch.randn(300, 24, generator=gen), torch.randn(24, 256, generator=gen), torch.randn(256, generator=gen)
    cap = torch.randint(0, 9, (256,), generator=gen)
    cap[:2] = 512
    mask = torch.rand(300, 256, generator=gen) < 0.05
    rows, cols = mask.nonzero(as_tuple=True)
    crow = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(rows, minlength=300).cumsum(0)])
    pre = (xc @ W_enc + b_enc)[rows, cols]
    calls = {
        "topm_global": lambda: dispatch.topm_global(acts, 16 * 512),
        "topm_per_column": lambda: dispatch.topm_per_column(acts, cap),
        "encode_topk": lambda: _sorted_topk(dispatch.encode_topk(xc, W_enc, b_enc, 7)),
        "encoder_preacts": lambda: (dispatch.encoder_preacts(xc, W_enc, b_enc),),
        "threshold_select": lambda: dispatch.threshold_select(acts, torch.tensor(0.8)),
        "selected_preacts": lambda: _with_grads(
            lambda a, w, b: dispatch.selected_preacts(a, w, b, crow, cols, pre), xc, W_enc, b_enc),
        "sparse_decode": lambda: _with_grads(
            lambda v, w: dispatch.sparse_decode(v, crow, cols, w), pre.relu(), W_enc.T.contiguous()),
    }
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    theirs = calls[name]()
    monkeypatch.setenv(dispatch.ENV_VAR, "cpu")
    ours = calls[name]()
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if a.dtype.is_floating_point:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        else:
            assert torch.equal(a, b)


def _sorted_topk(result):
    values, idx = result
    return values.sort(dim=1).values, idx.sort(dim=1).values


def _with_grads(fn, *inputs):
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return (out.detach(), *[t.grad for t in leaves])


def test_bad_backend_name(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "fastest")
    with pytest.raises(ValueError, match="SUPERSCOPE_KERNELS"):
        dispatch.backend_for(torch.zeros(1))
    monkeypatch.setenv(dispatch.ENV_VAR, "triton")
    with pytest.raises(RuntimeError, match="CUDA"):
        dispatch.backend_for(torch.zeros(1))
