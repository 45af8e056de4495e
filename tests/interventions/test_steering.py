"""The edit semantics on the tiny bridge, for every registered architecture: an edit that changes no
code is exact, ablating a latent that never fires changes nothing, clamp makes the re-encoded code equal
the value, edits compose in the order given (checked against a plain reference), bad input fails clearly."""

from __future__ import annotations

import pytest
import torch

from superscope.interventions import Edit, steered
from superscope.interventions.steering import Steering
from tests.interventions.conftest import HOOKS, acts_at, arch_modes, make_sae

H0, H1 = HOOKS


def logits(model, tokens):
    with torch.no_grad():
        return model(tokens)


@pytest.mark.parametrize(("arch", "mode"), arch_modes())
def test_empty_and_identity_edits_are_exact(tiny_model, tokens, arch, mode):
    sae = make_sae(tiny_model, tokens, arch, H0, mode)
    clean = logits(tiny_model, tokens)
    with steered(tiny_model, sae, []):
        assert torch.equal(logits(tiny_model, tokens), clean)
    # encodes, computes a zero delta and writes the rows back: still bit for bit
    for edit in (Edit(H0, 5, "scale", 1.0), Edit(H0, 7, "add", 0.0)):
        with steered(tiny_model, sae, [edit]):
            assert torch.equal(logits(tiny_model, tokens), clean), edit
    with steered(tiny_model, sae, [Edit(H0, 5, "add", 3.0)]):
        assert not torch.equal(logits(tiny_model, tokens), clean)  # the hooks are live
    assert torch.equal(logits(tiny_model, tokens), clean)  # and removed on exit


@pytest.mark.parametrize(("arch", "mode"), arch_modes())
def test_ablating_a_latent_that_never_fires_changes_nothing(tiny_model, tokens, arch, mode):
    sae = make_sae(tiny_model, tokens, arch, H0, mode)
    z = sae.encode(acts_at(tiny_model, tokens, H0))
    never = int((z > 0).sum(0).argmin())
    assert (z[:, never] == 0).all()
    fires = int((z > 0).sum(0).argmax())
    clean = logits(tiny_model, tokens)
    with steered(tiny_model, sae, [Edit(H0, never, "ablate")]):
        assert torch.equal(logits(tiny_model, tokens), clean)
    with steered(tiny_model, sae, [Edit(H0, fires, "ablate")]):
        assert not torch.equal(logits(tiny_model, tokens), clean)


def _edited_acts(model, tokens, sae, edits, hook):
    """The activation at ``hook`` after the steering hook (a later hook on the same point reads it)."""
    seen = {}
    with steered(model, sae, edits), model.hooks(fwd_hooks=[(hook, lambda a, hook: seen.setdefault("x", a.clone()))]):
        logits(model, tokens)
    return seen["x"][tokens != model.tokenizer.bos_token_id]


def _clamp_cases():
    from superscope.saes import known_architectures
    cases = [("topk", "batch"), ("mutual_choice", "threshold"), ("feature_choice", "threshold")]
    return cases + ([("jumprelu", "batch")] if "jumprelu" in known_architectures() else [])


@pytest.mark.parametrize(("arch", "mode"), _clamp_cases())
def test_clamp_makes_the_reencoded_code_equal_the_value(tiny_model, tokens, arch, mode):
    sae = make_sae(tiny_model, tokens, arch, H0, mode)
    x = acts_at(tiny_model, tokens, H0)
    f = 11
    with torch.no_grad():
        v = 1.5 * float(((x * 0.7 - sae.b_dec) @ sae.W_enc + sae.b_enc).max())  # above any threshold, in the top k
    z_after = sae.encode(_edited_acts(tiny_model, tokens, sae, [Edit(H0, f, "clamp", v)], H0))
    torch.testing.assert_close(z_after[:, f], torch.full_like(z_after[:, f], v), rtol=1e-5, atol=1e-5)
    # delta_clamp sets z_f = v in the reconstruction only: re-encoded it is off by the encoder-decoder gain
    z_delta = sae.encode(_edited_acts(tiny_model, tokens, sae, [Edit(H0, f, "delta_clamp", v)], H0))
    assert (z_delta[:, f] - v).abs().max() > 0.05 * v


def _reference_hook(sae, edits):
    """Plain dense maths of the edits module docstring, applied in order to every non-BOS row."""
    def hook(act, hook, keep):
        x = act[keep]
        for e in edits:
            s, w = sae.cfg.input_scale, sae.W_dec[e.latent]
            z = sae.encode(x)[:, e.latent]
            pre = (x * s - sae.b_dec) @ sae.W_enc[:, e.latent] + sae.b_enc[e.latent]
            coef = {"add": e.value * s / w.norm(), "scale": (e.value - 1) * z, "ablate": -z,
                    "delta_clamp": e.value - z, "clamp": (e.value - pre) / (w @ sae.W_enc[:, e.latent])}[e.op]
            x = x + torch.as_tensor(coef).reshape(-1, 1) * w / s
        out = act.clone()
        out[keep] = x
        return out
    return hook


def test_edits_at_two_hooks_compose_in_the_order_given(tiny_model, tokens):
    saes = {H0: make_sae(tiny_model, tokens, "topk", H0), H1: make_sae(tiny_model, tokens, "mutual_choice", H1, "threshold")}
    first = [Edit(H0, 3, "clamp", 2.0), Edit(H0, 9, "add", 1.5), Edit(H0, 3, "scale", 0.5)]
    second = [Edit(H1, 20, "delta_clamp", 1.0), Edit(H1, 21, "ablate")]
    edits = [first[0], second[0], first[1], second[1], first[2]]
    with steered(tiny_model, saes, edits):
        ours = logits(tiny_model, tokens)
    keep = tokens != tiny_model.tokenizer.bos_token_id
    ref_hooks = [(H0, lambda a, hook: _reference_hook(saes[H0], first)(a, hook, keep)),
                 (H1, lambda a, hook: _reference_hook(saes[H1], second)(a, hook, keep))]
    with torch.no_grad(), tiny_model.hooks(fwd_hooks=ref_hooks):
        ref = tiny_model(tokens)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    with steered(tiny_model, saes, [first[2], first[1], first[0], *second]):  # another order, another result
        assert (logits(tiny_model, tokens) - ours).abs().max() > 1e-3


def test_bos_positions_are_not_edited(tiny_model, tokens):
    sae = make_sae(tiny_model, tokens, "topk", H0)
    clean = logits(tiny_model, tokens)
    with steered(tiny_model, sae, [Edit(H0, 3, "add", 10.0)]):
        out = logits(tiny_model, tokens)
    assert torch.equal(out[:, 0], clean[:, 0]) and not torch.equal(out[:, 1], clean[:, 1])


def test_record_reads_the_latent_before_and_after(tiny_model, tokens):
    sae = make_sae(tiny_model, tokens, "topk", H0)
    with Steering(tiny_model, sae, [Edit(H0, 4, "clamp", 3.0)], record=True) as s:
        logits(tiny_model, tokens)
    before, after = s.readout[H0]
    z = sae.encode(acts_at(tiny_model, tokens, H0))
    torch.testing.assert_close(before[:, 0], z[:, 4])
    torch.testing.assert_close(after[:, 0], torch.full_like(after[:, 0], 3.0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: [Edit(H0, 64, "add", 1.0)], "latent 64 out of range: the topk SAE at blocks.0.hook_resid_post has 64"),
    (lambda: [Edit("blocks.7.hook_resid_post", 1, "add", 1.0)], "unknown hook name 'blocks.7.hook_resid_post'"),
    (lambda: [Edit(H1, 1, "add", 1.0)], "no SAE for hook 'blocks.1.hook_resid_post'"),
    (lambda: [Edit(H0, 1, "add", float("nan"))], "must be finite, got nan"),
    (lambda: [Edit(H0, 1, "boost", 1.0)], "unknown edit op 'boost'"),
    (lambda: [Edit(H0, -2, "add", 1.0)], "non-negative integer"),
])
def test_bad_edits_fail_with_one_clear_line(tiny_model, tokens, make, message):
    sae = make_sae(tiny_model, tokens, "topk", H0)
    with pytest.raises(ValueError, match=message), steered(tiny_model, sae, make()):
        pass


def test_sae_of_the_wrong_width_is_refused(tiny_model):
    from superscope.saes import SAEConfig, create_sae
    sae = create_sae(SAEConfig(architecture="topk", d_in=16, d_sae=64, k=4, hook_name=H0))
    with pytest.raises(ValueError, match=r"expects d_in=16 but the model's activation there has shape \[32\]"), \
            steered(tiny_model, sae, [Edit(H0, 1, "add", 1.0)]):
        pass


def test_parse_edit():
    from superscope.interventions import parse_edit
    assert parse_edit("12", H0) == Edit(H0, 12, "add", 1.0)
    assert parse_edit("12:clamp:5", H0) == Edit(H0, 12, "clamp", 5.0)
    assert parse_edit(f"{H1}/7:ablate", H0) == Edit(H1, 7, "ablate", 0.0)
    with pytest.raises(ValueError, match="LATENT"):
        parse_edit("x:add", H0)
