"""Automatic interpretability without an LLM (analyses/evals/autointerp.py): planted latents on toy held-out
data written through the real feature-data pass, VocabProj on a planted decoder row, the run-folder reader."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from superscope.analyses.evals.autointerp import AutointerpConfig, evaluate_autointerp, read_autointerp, save_autointerp
from superscope.analyses.evals.context import EvalContext
from superscope.analyses.evals.detection import DetectionCounts
from superscope.analyses.evals.explanations import vocab_projection
from superscope.analyses.features import FeatureDataConfig, feature_data_for_hook
from superscope.analyses.features.storage import write_feature_folder
from superscope.analyses.runs.toy import CTX_LEN, VOCAB, D, FakeTokenizer, write_heldout
from superscope.saes import SAEConfig, create_sae

HOOK = "blocks.0.hook_resid_post"
THE, OF = 0, 1  # FakeTokenizer: 0 → "the", 1 → " of"
N_CTX = 160


def planted_rows(seed: int = 0) -> dict[str, torch.Tensor]:
    """Contexts of random tokens (with plenty of "the"); activation dims: 0 = 5·[token is "the"],
    1 = 5·[token is " of" and the context is odd] (scoring half only), 2… = Gaussian noise."""
    gen = torch.Generator().manual_seed(seed)
    contexts = torch.randint(2, VOCAB, (N_CTX, CTX_LEN), generator=gen)
    contexts[torch.rand(N_CTX, CTX_LEN, generator=gen) < 0.12] = THE
    contexts[torch.rand(N_CTX, CTX_LEN, generator=gen) < 0.08] = OF
    contexts[:, 0] = 2  # stands in for BOS
    ctx_ids = torch.arange(N_CTX).repeat_interleave(CTX_LEN - 1)
    pos = torch.arange(1, CTX_LEN).repeat(N_CTX)
    tok = contexts[ctx_ids, pos]
    acts = torch.randn(tok.numel(), D, generator=gen)
    acts[:, 0] = 5.0 * (tok == THE)
    acts[:, 1] = 5.0 * ((tok == OF) & (ctx_ids % 2 == 1))
    return {"acts": acts, "token_ids": tok, "positions": pos, "context_ids": ctx_ids, "contexts": contexts}


def planted_sae():
    """TopK (k = 3) SAE with latent 0 = dim 0 ("the"), latent 1 = dim 2 (noise: fires on ~half the tokens,
    whatever the token), latent 2 = dim 1 (" of" in the scoring half only), the rest weak random directions."""
    sae = create_sae(SAEConfig(architecture="topk", d_in=D, d_sae=12, k=3, hook_name=HOOK, model_name="toy"))
    with torch.no_grad():
        W = 0.01 * torch.randn(D, 12, generator=torch.Generator().manual_seed(1))
        W[:, 0] = torch.nn.functional.one_hot(torch.tensor(0), D)
        W[:, 1] = torch.nn.functional.one_hot(torch.tensor(2), D)
        W[:, 2] = torch.nn.functional.one_hot(torch.tensor(1), D)
        sae.W_enc.copy_(W)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("autointerp") / "run"
    write_heldout(root / "heldout" / HOOK, HOOK, planted_rows())
    from superscope.activations import load_activations

    sae = planted_sae()
    model = SimpleNamespace(W_U=torch.randn(D, VOCAB, generator=torch.Generator().manual_seed(3)),
                            tokenizer=FakeTokenizer())
    out = feature_data_for_hook(load_activations(root / "heldout" / HOOK), {"topk": sae}, model,
                                FeatureDataConfig(progress=False, top_k=20, sample_size=20, n_logits=5))
    arrays, index, strings = out["topk"]
    write_feature_folder(root / "features" / HOOK / "topk", arrays, index, strings)
    context = EvalContext(HOOK, load_model=lambda: model, heldout_dir=root / "heldout" / HOOK,
                          features_root=root / "features" / HOOK)
    return SimpleNamespace(root=root, sae=sae, context=context, model=model)


def test_planted_token_latent_is_explained_and_detected_perfectly(planted):
    res = evaluate_autointerp(planted.sae, planted.context, AutointerpConfig(n_vocab_tokens=5))
    assert res.explanation[0] == ["the"]
    assert res.balanced_accuracy[0] == 1.0 and res.f1[0] == 1.0
    assert res.contexts[0] and all("[[the]]" in c for c in res.contexts[0])
    # the noise latent: its token set predicts nothing about where it fires
    assert 0.4 < res.balanced_accuracy[1] < 0.6
    assert res.positives[1] > 500
    # no leakage: latent 2 fires only in odd (scoring) contexts, so it has nothing to be explained from
    assert res.explanation[2] == [] and math.isnan(res.balanced_accuracy[2]) and res.positives[2] > 0
    assert res.n_scoring_tokens == (N_CTX // 2) * (CTX_LEN - 1)
    assert res.vocab_proj_source == "feature data" and len(res.promoted[0]) == 5
    assert res.n_scored <= 12 and 0.5 < res.mean_balanced_accuracy <= 1.0
    assert sum(res.hist_counts) == res.n_scored
    assert "balanced accuracy mean" in repr(res)
    assert len(res.figure().data) == 2


def test_previous_token_pairs_and_scoring_cap(planted):
    res = evaluate_autointerp(planted.sae, planted.context,
                              AutointerpConfig(use_previous_token=True, max_scoring_tokens=500, n_vocab_tokens=5))
    assert res.n_scoring_tokens == 500
    assert all(e.endswith("→the") for e in res.explanation[0])
    # pairs are narrower than the token: recall drops, precision stays perfect
    assert 0.5 < res.balanced_accuracy[0] < 1.0


def test_detection_rates_by_hand():
    # 10 tokens; latent 0: 4 positives, predicted on 5 tokens, 3 of them true
    c = DetectionCounts(10, torch.tensor([4]), torch.tensor([5]), torch.tensor([3]))
    tpr, fpr = 3 / 4, 2 / 6
    assert c.balanced_accuracy().item() == pytest.approx((tpr + 1 - fpr) / 2)
    p = tpr / (tpr + fpr)
    assert c.f1().item() == pytest.approx(2 * p * tpr / (p + tpr))


def test_vocab_proj_promotes_the_planted_token():
    V, t, s = 30, 17, 2.5
    W_U = torch.randn(64, V, generator=torch.Generator().manual_seed(0))
    gain = torch.rand(64, generator=torch.Generator().manual_seed(1)) + 0.5
    ln = torch.nn.LayerNorm(64)
    with torch.no_grad():
        ln.weight.copy_(gain)
    model = SimpleNamespace(W_U=W_U, ln_final=ln)
    sae = create_sae(SAEConfig(architecture="topk", d_in=64, d_sae=4, k=1, input_scale=s))
    with torch.no_grad():
        sae.W_dec[1] = s * W_U[:, t] / gain   # g ⊙ W_dec[1] / s = W_U[:, t]
        sae.W_dec[2] = -s * W_U[:, t] / gain
    proj = vocab_projection(sae, 5, model=model)
    assert proj.source == "computed"
    assert proj.promoted_FL[1, 0] == t and proj.suppressed_FL[2, 0] == t
    assert proj.promoted_vals_FL[1, 0] == pytest.approx(float(W_U[:, t] @ W_U[:, t]), rel=1e-4)


def test_saved_result_reads_back_for_the_browser(planted, tmp_path):
    res = evaluate_autointerp(planted.sae, planted.context, AutointerpConfig.quick())
    assert read_autointerp(tmp_path, HOOK, "topk") is None
    path = save_autointerp(res, tmp_path)
    assert path == Path(tmp_path) / "evals" / HOOK / "topk" / "autointerp.json"
    details = path.with_name("autointerp.details.json")
    assert details.is_file()
    import json
    assert "explanation" not in json.loads(path.read_text())["per_latent"]  # the text lives in the details file
    cols = read_autointerp(tmp_path, HOOK, "topk")
    assert cols["explanation"][0] == "'the'" and cols["detection_bacc"][0] == 1.0
    assert math.isnan(cols["detection_bacc"][2])
    assert len(cols["feature"]) == 12 and cols["summary"]["n_scored"] == res.n_scored
    from superscope.analyses.runs.evals import load_evals
    ev = load_evals(tmp_path)  # the details file is not read as a result of its own (save_autointerp has no suite record)
    assert not any("details" in line for line in ev.unreadable) and len(ev.unreadable) == 1
    details.unlink()
    with pytest.raises(ValueError, match="autointerp details"):
        read_autointerp(tmp_path, HOOK, "topk")


def test_bad_inputs_name_the_fix(planted):
    empty = EvalContext(HOOK, load_model=lambda: planted.model, heldout_dir=planted.context.heldout_dir)
    with pytest.raises(FileNotFoundError, match="feature data"):
        evaluate_autointerp(planted.sae, empty)
    other = create_sae(SAEConfig(architecture="topk", d_in=D, d_sae=7, k=2, hook_name=HOOK))
    with pytest.raises(ValueError, match="regenerate the feature data"):
        evaluate_autointerp(other, planted.context)
    with pytest.raises(ValueError, match="max_tokens"):
        AutointerpConfig(max_tokens=0)


def test_llm_explanations_decode_greedily_to_the_first_newline():
    script = [5, 6, 7, 9, 5]  # "a", "b", "c", "\n", never reached
    chars = {5: "a", 6: "b", 7: "c", 9: "\n"}

    class Tok:
        eos_token_id = 0

        def apply_chat_template(self, messages, **_):
            assert "[[ the]]" in messages[0]["content"]
            return {"input_ids": torch.tensor([[1, 2, 3]])}

        def decode(self, ids, skip_special_tokens=False):
            return "".join(chars[i] for i in ids)

    class LM:
        tokenizer, cfg = Tok(), SimpleNamespace(device="cpu")

        def __call__(self, ids):
            logits = torch.zeros(1, ids.shape[1], 10)
            logits[0, -1, script[ids.shape[1] - 3]] = 1.0
            return logits

    from superscope.analyses.evals.explanations import llm_explanations

    assert llm_explanations(LM(), {4: ["on[[ the]] mat"], 5: []}) == {4: "abc"}
