"""Fixtures for the intervention tests: the tiny 2-layer Llama bridge (tests/tiny_model.py, width 32) and
SAEs of every registered architecture at its two residual hooks, with encoders that do not mirror their
decoders (so clamp and delta_clamp differ) and thresholds that let some latents fire."""

from __future__ import annotations

import pytest
import torch

from superscope.kernels.threads import torch_threads

HOOKS = ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
D, F, K = 32, 64, 4
TEXTS = ["Note 3: sparse autoencoders find features hidden in superposition, layer 3.",
         "Note 5: sparse autoencoders find features hidden"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from superscope.activations import load_model
    from tests.tiny_model import build_tiny_model

    folder, _ = build_tiny_model(tmp_path_factory.mktemp("tiny_model"))
    return load_model(str(folder))


@pytest.fixture(scope="session")
def tokens(tiny_model):
    return tiny_model.to_tokens(TEXTS)


def acts_at(model, tokens, hook):
    from superscope.activations.capture import run_hooks
    acts = run_hooks(model, tokens, [hook])[hook]
    return acts[tokens != model.tokenizer.bos_token_id]


def make_sae(model, tokens, arch: str, hook: str, mode: str = "batch", seed: int = 0):
    """An SAE at ``hook`` with W_enc = 1.3·W_decᵀ + noise, b_enc < 0, input_scale 0.7, and thresholds at the
    80th percentile of ReLU(pre) on the fixture's tokens (MC θ, FC θ_f, JumpReLU θ_f)."""
    from superscope.saes import SAEConfig, create_sae

    sae = create_sae(SAEConfig(architecture=arch, d_in=D, d_sae=F, k=K, hook_name=hook, input_scale=0.7,
                               inference_mode=mode))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.reset_parameters(seed)
        sae.W_enc.mul_(1.3).add_(0.05 * torch.randn(D, F, generator=gen))
        sae.b_enc.fill_(-0.05)
        sae.b_dec.copy_(0.01 * torch.randn(D, generator=gen))
        x = acts_at(model, tokens, hook)
        pre = ((x * 0.7 - sae.b_dec) @ sae.W_enc + sae.b_enc).clamp_min(0)
        q = pre.quantile(0.8, dim=0).clamp_min(1e-3)
        if hasattr(sae, "log_threshold"):
            sae.log_threshold.copy_(q.log())
        if hasattr(sae, "theta_F"):
            if isinstance(sae.theta_F, torch.nn.Parameter) or "theta_F" in dict(sae.named_buffers()):
                sae.theta_F.copy_(q)
        if "theta" in dict(sae.named_buffers()):
            sae.theta.fill_(float(pre.flatten().quantile(0.9)))
    return sae.eval()


def arch_modes():
    """(architecture, inference mode) for every registered variant: both modes for batch-dependent ones."""
    from superscope.saes import known_architectures, sae_class

    out = []
    for arch in known_architectures():
        modes = ("batch", "threshold") if sae_class(arch).batch_dependent else ("batch",)
        out += [(arch, m) for m in modes]
    return out
