"""CE-loss recovered and KL with a reconstruction spliced into the model (saes/model_metrics.py).

Three anchors of the definition (specs/saes.md "Metrics"): an identity "SAE" recovers everything
(recovered = 1, KL = 0), a zero reconstruction recovers nothing (recovered = 0), and a known
perturbation gives the value computed by hand — in closed form on a two-token stand-in model, and
by an independent forward hook on the Hugging Face layers of the tiny Llama (tests/tiny_model.py).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from superscope.saes.model_metrics import splice_metrics
from tests.tiny_model import build_tiny_model

HOOK = "blocks.0.hook_resid_post"


class Reconstruction(torch.nn.Module):
    """A stand-in SAE whose reconstruction is a fixed function of its input."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return SimpleNamespace(x_hat=self.fn(x))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from superscope.activations.models import load_model

    folder, _ = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    model = load_model(str(folder))
    texts = ["Note 3: sparse autoencoders find features hidden in superposition, layer 3.",
             "Note 41: features hidden in superposition, sparse autoencoders find them."]
    ids = [model.tokenizer.encode(t) for t in texts]
    n = min(len(i) for i in ids)
    tokens = torch.tensor([i[:n] for i in ids])
    assert (tokens[:, 0] == model.tokenizer.bos_token_id).all() and n > 8
    return model, tokens


def test_identity_recovers_everything_and_zero_recovers_nothing(tiny):
    model, tokens = tiny
    saes = {"identity": Reconstruction(lambda x: x), "zero": Reconstruction(torch.zeros_like)}
    out = splice_metrics(model, saes, HOOK, [tokens[:1], tokens[1:]])
    ident, zero = out["identity"], out["zero"]
    assert ident.n_tokens == zero.n_tokens == tokens.numel() - tokens.shape[0]
    assert ident.ce_zero - ident.ce_clean > 0.01  # the ablation matters: the ratio is well defined
    assert ident.ce_sae == pytest.approx(ident.ce_clean, abs=1e-6)
    assert ident.ce_loss_recovered == pytest.approx(1.0, abs=1e-5)
    assert abs(ident.kl_div) < 1e-6
    assert zero.ce_sae == pytest.approx(zero.ce_zero, abs=1e-6)
    assert zero.ce_loss_recovered == pytest.approx(0.0, abs=1e-5)
    assert zero.kl_div > 1e-3


def _reference_ce_kl(model, tokens, perturb, bos_id):
    """CE and KL of the spliced model computed without saes.model_metrics: a torch forward hook on the
    Hugging Face decoder layer 0 (whose output is blocks.0.hook_resid_post) and the formulas written out."""
    hf = model.original_model
    keep = tokens != bos_id

    def hook(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        h = torch.where(keep[..., None], perturb(h), h)
        return (h, *output[1:]) if isinstance(output, tuple) else h

    with torch.no_grad():
        clean = hf(tokens).logits.double()
        handle = hf.model.layers[0].register_forward_hook(hook)
        try:
            spliced = hf(tokens).logits.double()
        finally:
            handle.remove()
    target = tokens[:, 1:]
    p, logq = F.softmax(clean[:, :-1], -1), F.log_softmax(spliced[:, :-1], -1)
    ce_clean = float(-F.log_softmax(clean[:, :-1], -1).gather(-1, target[..., None]).mean())
    ce_sae = float(-logq.gather(-1, target[..., None]).mean())
    kl = float((p * (p.log() - logq)).sum(-1).mean())
    return ce_clean, ce_sae, kl


def test_a_known_perturbation_matches_an_independent_computation(tiny):
    """x̂ = 0.5·x + δ (a fixed offset per position) on the real bridge, against the HF model hooked by hand."""
    model, tokens = tiny
    bos = model.tokenizer.bos_token_id
    gen = torch.Generator().manual_seed(0)
    delta = 0.02 * torch.randn(tokens.shape[1], model.cfg.d_model, generator=gen)
    rows_delta = delta.expand(*tokens.shape, -1)[tokens != bos]  # splice_metrics passes the kept rows [n, d]
    out = splice_metrics(model, {"p": Reconstruction(lambda x: 0.5 * x + rows_delta)}, HOOK, [tokens], bos_id=bos)["p"]
    ce_clean, ce_sae, kl = _reference_ce_kl(model, tokens, lambda h: 0.5 * h + delta, bos)
    _, ce_zero, _ = _reference_ce_kl(model, tokens, torch.zeros_like, bos)
    assert out.ce_clean == pytest.approx(ce_clean, rel=1e-6)
    assert out.ce_zero == pytest.approx(ce_zero, rel=1e-6)
    assert out.ce_sae == pytest.approx(ce_sae, rel=1e-6)
    assert out.kl_div == pytest.approx(kl, rel=1e-4)
    assert out.kl_div > 1e-3  # the perturbation is felt
    # the random tiny model barely uses layer 0 (CE_zero − CE_clean ≈ 0.013 nats), so the ratio magnifies
    # float32 rounding of the CEs: rel 1e-3 (it is −3.77 here: halving hurts more than zeroing)
    assert out.ce_loss_recovered == pytest.approx((ce_zero - ce_sae) / (ce_zero - ce_clean), rel=1e-3)


class TwoTokenModel:
    """logits = the hook's activation = E[token], vocabulary {0, 1}: every number has a closed form."""

    E = torch.tensor([[0.0, 2.0], [0.0, 2.0]])  # both tokens predict token 1 with margin 2

    def __call__(self, tokens):
        return self.run_with_hooks(tokens, fwd_hooks=[])

    def run_with_hooks(self, tokens, fwd_hooks):
        act = self.E[tokens]
        for name, fn in fwd_hooks:
            assert name == "embed"
            act = fn(act)
        return act


def test_halving_the_logits_gives_the_hand_computed_values():
    """Tokens 1 1 1: two predictions of token 1. Clean logits (0, 2), zero ablation (0, 0), the
    halved reconstruction (0, 1); CE = ln(1 + e^(−margin)), KL between two Bernoulli laws."""
    out = splice_metrics(TwoTokenModel(), {"half": Reconstruction(lambda x: 0.5 * x)}, "embed",
                         [torch.tensor([[1, 1, 1]])])["half"]
    ce_clean, ce_zero, ce_half = math.log1p(math.exp(-2)), math.log(2), math.log1p(math.exp(-1))
    p, q = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-1))
    kl = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    assert out.n_tokens == 2
    assert out.ce_clean == pytest.approx(ce_clean, rel=1e-6) and out.ce_zero == pytest.approx(ce_zero, rel=1e-6)
    assert out.ce_sae == pytest.approx(ce_half, rel=1e-6)
    assert out.ce_loss_recovered == pytest.approx((ce_zero - ce_half) / (ce_zero - ce_clean), rel=1e-6)  # 0.5826
    assert out.kl_div == pytest.approx(kl, rel=1e-5)  # 0.0304


def test_bos_positions_are_left_unmodified():
    """With bos_id the BOS position keeps its clean activation in the spliced and ablated runs."""
    model = TwoTokenModel()
    tokens = torch.tensor([[0, 1, 1]])
    zero = splice_metrics(model, {"zero": Reconstruction(torch.zeros_like)}, "embed", [tokens], bos_id=0)["zero"]
    plain = splice_metrics(model, {"zero": Reconstruction(torch.zeros_like)}, "embed", [tokens])["zero"]
    # position 0 (BOS) predicts token 1: clean margin 2 when kept, ln 2 when ablated
    assert zero.ce_zero == pytest.approx((math.log1p(math.exp(-2)) + math.log(2)) / 2, rel=1e-6)
    assert plain.ce_zero == pytest.approx(math.log(2), rel=1e-6)
