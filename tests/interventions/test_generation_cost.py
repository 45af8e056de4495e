"""Generation side by side, the cost of an edit (KL, ΔCE, latent shift) and the dose-response sweep on the
tiny bridge; the batched sweep must equal one edit_cost per value."""

from __future__ import annotations

import pytest
import torch

from superscope.interventions import Edit, dose_response, edit_cost, generate
from tests.interventions.conftest import HOOKS, acts_at, make_sae

H0, H1 = HOOKS


def test_generate_greedy_and_seeded_sampling(tiny_model, tokens):
    sae = make_sae(tiny_model, tokens, "topk", H0)
    same = generate(tiny_model, sae, [], "Note 3: sparse", max_new_tokens=8, stop_at_eos=False)
    assert same.clean == same.steered and len(same.steered_tokens) == 8
    assert same.kl_per_token == (0.0,) * 8
    big = generate(tiny_model, sae, [Edit(H0, 3, "add", 40.0)], "Note 3: sparse", max_new_tokens=8, stop_at_eos=False)
    assert big.clean == same.clean and big.steered_tokens != big.clean_tokens
    assert len(big.kl_per_token) == 8 and min(big.kl_per_token) > 0
    a = generate(tiny_model, sae, [Edit(H0, 3, "add", 2.0)], "Note 3", max_new_tokens=8, greedy=False, seed=5,
                 stop_at_eos=False)
    b = generate(tiny_model, sae, [Edit(H0, 3, "add", 2.0)], "Note 3", max_new_tokens=8, greedy=False, seed=5,
                 stop_at_eos=False)
    c = generate(tiny_model, sae, [Edit(H0, 3, "add", 2.0)], "Note 3", max_new_tokens=8, greedy=False, seed=6,
                 stop_at_eos=False)
    assert (a.clean, a.steered) == (b.clean, b.steered)
    assert (a.clean, a.steered) != (c.clean, c.steered)
    assert set(a.to_dict()) >= {"clean", "steered", "kl_per_token", "mean_kl", "edits"}
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(tiny_model, sae, [], "")


def test_edit_cost(tiny_model, tokens):
    saes = {H0: make_sae(tiny_model, tokens, "topk", H0), H1: make_sae(tiny_model, tokens, "topk", H1, seed=1)}
    none = edit_cost(tiny_model, saes, [Edit(H0, 3, "scale", 1.0)], tokens.split(1))
    assert none.kl == 0 and none.ce_delta == 0
    assert none.n_tokens == int((tokens[:, :-1] != tiny_model.tokenizer.bos_token_id).sum())
    busy = int(saes[H1].encode(acts_at(tiny_model, tokens, H1)).mean(0).argmax())
    cost = edit_cost(tiny_model, saes, [Edit(H0, 3, "clamp", 4.0), Edit(H1, busy, "add", 5.0)], tokens.split(1))
    assert cost.kl > 0 and cost.ce_delta != 0
    first, second = cost.latents
    assert first.arriving == pytest.approx(first.clean) and first.after == pytest.approx(4.0, rel=1e-4)
    assert first.fired_after == 1.0
    assert second.arriving != pytest.approx(second.clean)  # the edit at blocks.0 reaches blocks.1's SAE
    assert second.after > second.arriving


@pytest.mark.parametrize(("arch", "mode", "op"), [("topk", "batch", "add"), ("mutual_choice", "batch", "scale"),
                                                  ("feature_choice", "threshold", "clamp")])
def test_dose_response_batched_equals_one_run_per_value(tiny_model, tokens, arch, mode, op):
    sae = make_sae(tiny_model, tokens, arch, H0, mode)
    values = [0.0, 2.0, 6.0] if op != "clamp" else [0.5, 2.0, 6.0]
    edit = Edit(H0, 5, op, 1.0)
    dr = dose_response(tiny_model, sae, edit, values, tokens, target=7, context_len=12, max_rows=4)
    for v, kl in zip(values, dr.kl):
        alone = edit_cost(tiny_model, sae, [edit.with_value(v)], tokens[:, :12].split(1) if mode == "threshold"
                          or arch == "topk" else [tokens[:, :12]])
        assert kl == pytest.approx(alone.kl, rel=1e-4, abs=1e-7), v
    if op == "add":
        assert dr.kl[0] == 0 and dr.logit_delta[0] == 0
        assert dr.kl[2] > dr.kl[1] > 0
    fig = dr.figure()
    assert len(fig.data) == 3 and list(fig.data[0].x) == values


def test_dose_response_default_target_and_bad_values(tiny_model, tokens):
    sae = make_sae(tiny_model, tokens, "topk", H0)
    dr = dose_response(tiny_model, sae, Edit(H0, 5, "add", 0.0), [0.0, 20.0], tokens, context_len=12)
    promoted = int((sae.W_dec[5] @ tiny_model.W_U).argmax())
    assert dr.target_id == promoted and dr.logit_delta[1] > 0  # pushing along d_f raises its promoted token
    with pytest.raises(ValueError, match="finite"):
        dose_response(tiny_model, sae, Edit(H0, 5, "add", 0.0), [1.0, float("nan")], tokens)
    with pytest.raises(ValueError, match="target token id"):
        dose_response(tiny_model, sae, Edit(H0, 5, "add", 0.0), [1.0], tokens, target=10**6)
    assert torch.is_tensor(tokens)
