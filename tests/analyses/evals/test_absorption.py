"""Feature absorption (analyses/evals/absorption.py) on hand-built activations and SAEs.

Words of four letters are x = 3·u_letter + w_word (u orthonormal, w a unit word-identity direction
orthogonal to every u). The SAE has one latent per letter (encoder = decoder = u_letter, bias −1) and a
fifth latent. In the *absorbing* SAE the fifth latent is a token-specific latent for "short"
(decoder ∝ 3·u_s + w_short, a sharp encoder that fires on "short" alone) and the "s" latent's encoder
subtracts 3·w_short, so it stays silent on "short" (Chanin et al. 2024's picture of absorption). In the
*clean* SAE the fifth latent never fires and the "s" latent fires on every s-word.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from superscope.analyses.evals.absorption import (
    CAVEAT,
    AbsorptionConfig,
    absorption_from_activations,
    evaluate_absorption,
    summary,
)
from superscope.analyses.evals.first_letter import first_letter_labels, single_token_words
from superscope.saes import TopKSAE

D, PER_LETTER, CLASSES = 64, 60, "abst"
S = CLASSES.index("s")


def words_and_acts(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=gen))
    u = Q[:, : len(CLASSES)].T  # letter directions [4, D]
    words, labels, rows = [], [], []
    for c, letter in enumerate(CLASSES):
        for i in range(PER_LETTER):
            w = Q[:, len(CLASSES):] @ torch.randn(D - len(CLASSES), generator=gen)
            words.append("short" if (letter, i) == ("s", 0) else f"{letter}{i:02d}")
            labels.append(c)
            rows.append(3 * u[c] + w / w.norm())
    acts = torch.stack(rows)
    # "short" (row S·PER_LETTER) and every other second word are held out of the fits
    test = torch.zeros(len(words), dtype=torch.bool)
    test[::2] = True
    return words, np.array(labels), acts, u, test


def hand_sae(u, acts, short_row: int, suppress: float, absorber: bool) -> TopKSAE:
    """Letter latents 0..3, latent 4 = the "short" latent (absorber=True) or a silent one."""
    sae = TopKSAE(TopKSAE.config(d_in=D, d_sae=len(CLASSES) + 1, k=2))
    x_short = acts[short_row]
    with torch.no_grad():
        sae.W_enc.zero_(), sae.W_dec.zero_(), sae.b_enc.fill_(-1.0), sae.b_dec.zero_()
        sae.W_enc[:, : len(CLASSES)] = u.T
        sae.W_dec[: len(CLASSES)] = u
        w_short = x_short - 3 * u[S]
        sae.W_enc[:, S] -= suppress * w_short
        d_short = x_short / x_short.norm()
        sae.W_dec[len(CLASSES)] = d_short
        if absorber:  # fires only on x·d > 3 (x_short·d = √10 ≈ 3.16; other s-words ≈ 2.85)
            sae.W_enc[:, len(CLASSES)] = 20 * d_short
            sae.b_enc[len(CLASSES)] = -20 * 3.0
    return sae


@pytest.fixture(scope="module")
def toy():
    words, labels, acts, u, test = words_and_acts()
    return words, labels, acts, u, test, words.index("short")


CFG = AbsorptionConfig(min_feats_for_eval=10)


def run(toy, sae):
    words, labels, acts, _, test, _ = toy
    return absorption_from_activations(sae, acts, labels, class_names=CLASSES, words=words, test_mask_N=test,
                                       config=CFG)


def test_planted_absorbing_latent_is_found(toy):
    words, labels, acts, u, test, short = toy
    res = run(toy, hand_sae(u, acts, short, suppress=3.0, absorber=True))
    s = res.letters[S]
    assert s.evaluated and s.split_feats == (S,) and s.num_split_features == 1
    assert s.num_probe_true_positives == PER_LETTER // 2  # the probe gets every held-out s-word right
    assert s.num_full_absorption == 1
    assert s.full_absorption_rate == pytest.approx(1 / s.num_probe_true_positives)
    assert s.mean_absorption_fraction == pytest.approx(1 / s.num_probe_true_positives)
    top = s.examples[0]
    assert (top["word"], top["is_full_absorption"], top["top_projection_feat"]) == ("short", True, len(CLASSES))
    assert top["absorption_fraction"] == 1.0 and top["top_projection_feat_probe_cos"] > 0.5
    assert len(s.examples) == 1
    for r in res.letters:
        assert r.evaluated and r.probe_f1 == 1.0
        if r.first_letter != "s":
            assert r.mean_absorption_fraction == 0 and r.num_full_absorption == 0 and r.split_feats == (
                CLASSES.index(r.first_letter),)
    assert res.mean_absorption_fraction_score == pytest.approx(1 / s.num_probe_true_positives / len(CLASSES))


def test_clean_sae_has_no_absorption(toy):
    words, labels, acts, u, test, short = toy
    res = run(toy, hand_sae(u, acts, short, suppress=0.0, absorber=False))
    assert res.n_letters_evaluated == len(CLASSES)
    assert res.mean_absorption_fraction_score == 0 and res.mean_full_absorption_score == 0
    assert all(r.examples == () and r.num_split_features == 1 for r in res.letters)


def test_partial_absorption_is_a_fraction_not_full(toy):
    """The "s" latent still fires weakly on "short" (encoder −1.5·w_short: pre = 3 − 1.5 − 1 = 0.5):
    the absorber carries most of the projection, so 0 < fraction < 1, and it is not full absorption."""
    words, labels, acts, u, test, short = toy
    res = run(toy, hand_sae(u, acts, short, suppress=1.5, absorber=True))
    s = res.letters[S]
    assert s.num_full_absorption == 0
    (ex,) = s.examples
    assert ex["word"] == "short" and 0.6 < ex["absorption_fraction"] < 0.95


def test_result_dict_uses_saebench_fields_and_is_strict_json(toy):
    words, labels, acts, u, test, short = toy
    res = run(toy, hand_sae(u, acts, short, suppress=3.0, absorber=True))
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["eval_type_id"] == "absorption_first_letter"
    assert set(d["eval_result_metrics"]["mean"]) == {
        "mean_absorption_fraction_score", "mean_full_absorption_score", "mean_num_split_features",
        "std_dev_absorption_fraction_score", "std_dev_full_absorption_score", "std_dev_num_split_features"}
    assert [r["first_letter"] for r in d["eval_result_details"]] == list(CLASSES)
    assert set(d["eval_result_details"][0]) == {"first_letter", "mean_absorption_fraction", "full_absorption_rate",
                                                "num_full_absorption", "num_probe_true_positives",
                                                "num_split_features"}
    assert d["eval_result_unstructured"]["caveat"] == CAVEAT and "1B" in CAVEAT
    assert summary(d)["mean_absorption_fraction_score"] == pytest.approx(res.mean_absorption_fraction_score)
    fig = res.figure()
    assert [len(t.x) for t in fig.data] == [len(CLASSES)] * 3
    assert "absorption fraction" in repr(res) and len(repr(res).splitlines()) <= 3


def test_letters_below_the_minimums_are_not_evaluated(toy):
    words, labels, acts, u, test, short = toy
    cfg = AbsorptionConfig(min_feats_for_eval=PER_LETTER)  # more true positives than any letter has
    res = absorption_from_activations(hand_sae(u, acts, short, 3.0, True), acts, labels, class_names=CLASSES,
                                      test_mask_N=test, config=cfg)
    assert res.n_letters_evaluated == 0 and math.isnan(res.mean_absorption_fraction_score)
    assert res.to_dict()["eval_result_metrics"]["mean"]["mean_absorption_fraction_score"] is None


def test_bad_input_gives_one_clear_line(toy):
    words, labels, acts, u, test, short = toy
    sae = hand_sae(u, acts, short, 3.0, True)
    with pytest.raises(ValueError, match="d_model=32 but the SAE has d_in=64"):
        absorption_from_activations(sae, acts[:, :32], labels, class_names=CLASSES)
    with pytest.raises(ValueError, match="non-empty word list"):
        absorption_from_activations(sae, acts[:0], labels[:0], class_names=CLASSES)
    with pytest.raises(ValueError, match="word list is empty"):
        first_letter_labels([])
    bad = acts.clone()
    bad[3, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        absorption_from_activations(sae, bad, labels, class_names=CLASSES)
    with pytest.raises(ValueError, match="labels must lie"):
        absorption_from_activations(sae, acts, labels + 1, class_names=CLASSES)
    with pytest.raises(ValueError, match="test_fraction"):
        AbsorptionConfig(test_fraction=1.0)


def test_letter_probes_match_scikit_learn():
    """The batched L-BFGS fit minimises scikit-learn's balanced L2 logistic objective: same probes."""
    from sklearn.linear_model import LogisticRegression

    from superscope.analyses.evals.first_letter import fit_letter_probes

    gen = np.random.default_rng(0)
    x = gen.normal(size=(300, 6)) * np.array([1, 5, 0.2, 30, 1, 1]) + 3
    labels = gen.integers(0, 3, size=300)
    x[:, 0] += 1.5 * (labels == 0)  # make class 0 separable-ish; classes 1 and 2 are noise
    test = torch.from_numpy(gen.random(300) < 0.25)
    probes = fit_letter_probes(torch.from_numpy(x).float(), labels, 4, test, C=0.3)
    train = ~test.numpy()
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    for c in range(3):
        ref = LogisticRegression(C=0.3, class_weight="balanced", tol=1e-10, max_iter=10_000)
        ref.fit((x[train] - mu) / sd, labels[train] == c)
        np.testing.assert_allclose(probes.W_CD[c].numpy(), ref.coef_[0] / sd, rtol=2e-3, atol=1e-5)
        assert float(probes.b_C[c]) == pytest.approx(ref.intercept_[0] - (ref.coef_[0] * mu / sd).sum(), abs=1e-3)
    # class 3 has no rows: a probe that never fires
    assert float(probes.W_CD[3].abs().sum()) == 0 and float(probes.b_C[3]) == -1 and math.isnan(probes.f1_C[3])
    assert float(probes.f1_C[0]) > 0.6


def test_evaluate_absorption_on_a_tiny_model_caches_per_hook(tmp_path):
    """The model path end to end on a 2-layer random Llama: the word list, one forward per word, the
    cache (a second SAE of the hook never loads the model), and a clear line for a mismatched SAE."""
    from superscope.activations import load_model
    from superscope.analyses.evals.context import EvalContext
    from tests.tiny_model import build_tiny_model

    folder, _ = build_tiny_model(tmp_path)
    loads = []

    def load():
        loads.append(1)
        return load_model(str(folder))

    hook = "blocks.1.hook_resid_post"
    ctx = EvalContext(hook=hook, load_model=load, cache_dir=tmp_path / "cache")
    cfg = AbsorptionConfig(min_feats_for_eval=1, min_GT_probe_f1=0.0, test_fraction=0.3, max_k_value=3)
    sae = TopKSAE(TopKSAE.config(d_in=32, d_sae=48, k=4))
    first = evaluate_absorption(sae, ctx, cfg)
    words = single_token_words(ctx.tokenizer)
    assert first.n_words == len(words) > 20 and all(w.strip().isalpha() for _, w in words)
    assert first.n_test_words == round(0.3 * len(words)) and first.inference_mode == "row-local"
    assert {p.name.split("_")[0] for p in (tmp_path / "cache" / "absorption").iterdir()} == {"words", "probes"}
    again = evaluate_absorption(TopKSAE(TopKSAE.config(d_in=32, d_sae=48, k=4)),
                                EvalContext(hook=hook, load_model=lambda: pytest.fail("model loaded again"),
                                            cache_dir=tmp_path / "cache"), cfg)
    assert again.to_dict() == first.to_dict() and loads == [1]
    with pytest.raises(ValueError, match=f"residual at {hook} has d_model=32 but the SAE has d_in=16"):
        evaluate_absorption(TopKSAE(TopKSAE.config(d_in=16, d_sae=48, k=4)), ctx, cfg)


def test_batch_dependent_saes_are_encoded_per_token_and_restored():
    """FC / MC select within a batch; a word list is not a corpus batch, so they run in threshold mode."""
    from superscope.analyses.evals.absorption import per_token_mode
    from superscope.saes import MutualChoiceSAE

    sae = MutualChoiceSAE(MutualChoiceSAE.config(d_in=8, d_sae=16, k=2))
    sae.train()
    with per_token_mode(sae) as mode:
        assert mode == "threshold" and sae.cfg.inference_mode == "threshold" and not sae.training
    assert sae.cfg.inference_mode == "batch" and sae.training
    with per_token_mode(TopKSAE(TopKSAE.config(d_in=8, d_sae=16, k=2))) as mode:
        assert mode == "row-local"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_result_with_the_sae_and_activations_on_cuda(toy):
    words, labels, acts, u, test, short = toy
    sae = hand_sae(u, acts, short, suppress=3.0, absorber=True)
    cpu = run(toy, sae).to_dict()
    gpu = absorption_from_activations(sae.to("cuda"), acts.to("cuda"), labels, class_names=CLASSES, words=words,
                                      test_mask_N=test, config=CFG).to_dict()
    assert gpu["eval_result_details"] == cpu["eval_result_details"]
