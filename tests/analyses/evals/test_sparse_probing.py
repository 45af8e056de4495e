"""Sparse probing: constructed cases with known answers, the text harvest on a tiny model, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from superscope.analyses.evals import sparse_probing, text_activations
from superscope.analyses.evals.context import EvalContext
from superscope.analyses.evals.sparse_probing import (
    SparseProbingConfig,
    SparseProbingResult,
    encode,
    evaluate_sparse_probing,
    probe_dataset,
    top_k_by_mean_diff,
)
from superscope.analyses.evals.text_activations import text_activations as harvest_texts
from superscope.saes import TopKSAE
from tests.tiny_model import build_tiny_model

TINY_HOOK = "blocks.1.hook_resid_post"
SMALL = SparseProbingConfig(datasets=("123_world_country_United_Kingdom",), ks=(1, 2), max_tokens=8, n_train=8,
                            n_test=6, batch_size=4)


def planted_sae(d: int, f: int, latent: int, direction: torch.Tensor) -> TopKSAE:
    """A TopK SAE whose latent ``latent`` reads ``direction`` and whose other latents are orthogonal to it."""
    sae = TopKSAE(TopKSAE.config(d_in=d, d_sae=f, k=4)).eval()
    with torch.no_grad():
        W = sae.W_enc - direction[:, None] * (direction @ sae.W_enc)[None, :]
        W[:, latent] = direction
        sae.W_enc.copy_(W)
    return sae


def class_data(n: int, direction: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x = noise ⟂ direction + 6·y·direction, y balanced."""
    y = torch.arange(n) % 2
    noise = torch.randn(n, direction.numel(), generator=gen)
    noise -= (noise @ direction)[:, None] * direction
    return noise + 6.0 * y[:, None] * direction, y


def test_top_k_by_mean_diff_ranks_columns_by_absolute_class_mean_difference():
    x = torch.tensor([[1.0, 0.0, 5.0, 2.0], [1.0, 0.0, 1.0, 2.0], [0.0, 3.0, 5.0, 2.0], [0.0, 3.0, 1.0, 2.0]])
    y = torch.tensor([1, 1, 0, 0])  # |Δμ| = 1, 3, 0, 0
    assert top_k_by_mean_diff(x, y, 3).tolist() == [1, 0, 2]  # ties: lower index first
    assert top_k_by_mean_diff(x, y, 10).tolist() == [1, 0, 2, 3]  # k > F: every column


def test_a_planted_latent_equal_to_the_class_direction_probes_perfectly_with_k1():
    gen = torch.Generator().manual_seed(1)
    u = torch.nn.functional.normalize(torch.randn(16, generator=gen), dim=0)
    sae = planted_sae(16, 32, latent=7, direction=u)
    x_train, y_train = class_data(80, u, gen)
    x_test, y_test = class_data(200, u, gen)
    z_train, z_test = encode(sae, x_train), encode(sae, x_test)
    assert z_test[y_test == 1, 7].min() > 5.9 and z_test[y_test == 0, 7].abs().max() < 1e-5
    cfg = SparseProbingConfig(ks=(1, 2, 5))
    out = probe_dataset("planted", x_train, y_train, z_train, x_test, y_test, z_test, cfg)
    assert out.sae_top_latents[0] == 7
    assert out.sae_top_k_test_accuracy[1] == 1.0
    assert out.llm_test_accuracy == 1.0 and out.sae_test_accuracy == 1.0


def test_a_batch_dependent_sae_probes_with_its_thresholds():
    """Feature Choice in batch mode gives latent 7 only ⌈k·B/F⌉ = 10 of the 40 positive texts; with its
    learned thresholds (θ = 0 here) it fires on every positive, so k = 1 probes perfectly."""
    from superscope.saes import FeatureChoiceSAE

    gen = torch.Generator().manual_seed(4)
    u = torch.nn.functional.normalize(torch.randn(16, generator=gen), dim=0)
    planted = planted_sae(16, 32, 7, u)
    sae = FeatureChoiceSAE(FeatureChoiceSAE.config(d_in=16, d_sae=32, k=4)).eval()
    sae.load_state_dict(planted.state_dict(), strict=False)
    assert sae.cfg.inference_mode == "batch"
    x_train, y_train = class_data(80, u, gen)
    x_test, y_test = class_data(80, u, gen)
    assert (encode(sae, x_test)[:, 7] > 0).sum() <= 10  # batch mode: the capacity binds
    out = probe_dataset("planted", x_train, y_train, encode(sae, x_train, "threshold"), x_test, y_test,
                        encode(sae, x_test, "threshold"), SparseProbingConfig(ks=(1,)))
    assert out.sae_top_k_test_accuracy[1] == 1.0 and sae.cfg.inference_mode == "batch"  # the mode is restored


def test_labels_unrelated_to_the_activations_probe_at_chance():
    gen = torch.Generator().manual_seed(2)
    sae = TopKSAE(TopKSAE.config(d_in=16, d_sae=64, k=8)).eval()
    x_train, x_test = torch.randn(200, 16, generator=gen), torch.randn(600, 16, generator=gen)
    y_train, y_test = torch.randint(0, 2, (200,), generator=gen), torch.randint(0, 2, (600,), generator=gen)
    out = probe_dataset("random", x_train, y_train, encode(sae, x_train), x_test, y_test, encode(sae, x_test),
                        SparseProbingConfig())
    accs = [out.llm_test_accuracy, out.sae_test_accuracy, *out.sae_top_k_test_accuracy.values(),
            *out.llm_top_k_test_accuracy.values()]
    assert all(0.4 < a < 0.6 for a in accs), accs


def test_result_dict_uses_saebench_names_and_round_trips():
    gen = torch.Generator().manual_seed(3)
    u = torch.nn.functional.normalize(torch.randn(16, generator=gen), dim=0)
    sae = planted_sae(16, 32, 7, u)
    cfg = SparseProbingConfig(ks=(1, 2))
    details = []
    for name in ("a", "b"):
        x, y = class_data(40, u, gen)
        details.append(probe_dataset(name, x[:20], y[:20], encode(sae, x[:20]), x[20:], y[20:], encode(sae, x[20:]), cfg))
    result = SparseProbingResult("blocks.0.hook_resid_post", tuple(details), cfg.ks, "last", {"n_train": 20})
    d = result.to_dict()
    assert set(d["eval_result_metrics"]["llm"]) == {"llm_test_accuracy", "llm_top_1_test_accuracy",
                                                     "llm_top_2_test_accuracy"}
    assert set(d["eval_result_metrics"]["sae"]) == {"sae_test_accuracy", "sae_top_1_test_accuracy",
                                                     "sae_top_2_test_accuracy"}
    assert [x["dataset_name"] for x in d["eval_result_details"]] == ["a", "b"]
    assert d["eval_result_metrics"]["sae"]["sae_top_1_test_accuracy"] == 1.0
    again = SparseProbingResult.from_dict(d)
    assert again.to_dict() == d
    assert sparse_probing.summary(d)["llm_test_accuracy"] == result.llm_test_accuracy
    assert len(result.figure().data) == 1 + len(cfg.ks)
    assert "SAE top-1 100 %" in repr(result) and len(repr(result).splitlines()) <= 3


# ---- the text harvest and the whole metric on a tiny model -----------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from superscope.activations.models import load_model

    folder, _ = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    return load_model(str(folder))


def test_batched_right_padded_pooling_equals_each_text_alone(tiny_model):
    from superscope.activations.capture import run_hooks

    texts = ["Note 3: sparse", "features hidden in superposition, layer 5.", "Note", "autoencoders find features"]
    for pooling in ("last", "mean"):
        batched = harvest_texts(tiny_model, TINY_HOOK, texts, pooling, max_tokens=6, batch_size=4)
        for i, text in enumerate(texts):
            ids = text_activations.tokenize_texts(tiny_model.tokenizer, [text], 6)[0]
            h = run_hooks(tiny_model, torch.tensor([ids]), [TINY_HOOK])[TINY_HOOK][0]
            expected = h[-1] if pooling == "last" else h[1:].mean(0)
            torch.testing.assert_close(batched[i], expected, atol=1e-4, rtol=1e-4)
    assert len(text_activations.tokenize_texts(tiny_model.tokenizer, [texts[1]], 6)[0]) == 7  # BOS + 6


def test_the_metric_end_to_end_caches_the_harvest(tiny_model, tmp_path: Path, monkeypatch):
    sae = TopKSAE(TopKSAE.config(d_in=32, d_sae=64, k=4)).eval()
    context = EvalContext(TINY_HOOK, lambda: tiny_model, tmp_path / "cache")
    result = evaluate_sparse_probing(sae, context, SMALL)
    assert [d.dataset_name for d in result.details] == ["123_world_country_United_Kingdom"]
    assert result.details[0].n_train == 8 and result.details[0].n_test == 6
    assert all(0.0 <= a <= 1.0 for a in result.details[0].sae_top_k_test_accuracy.values())
    cached = list((tmp_path / "cache" / "sparse_probing").glob("*.safetensors"))
    assert len(cached) == 1

    def no_forward(*args, **kwargs):
        raise AssertionError("the cached activations were not reused")
    monkeypatch.setattr(text_activations, "_harvest", no_forward)
    assert evaluate_sparse_probing(sae, context, SMALL).to_dict() == result.to_dict()
    with pytest.raises(AssertionError, match="not reused"):  # other texts → another fingerprint → a harvest
        evaluate_sparse_probing(sae, context, SparseProbingConfig(**{**SMALL.__dict__, "seed": 1}))


# ---- bad input: one line each ------------------------------------------------------------------------
def test_an_sae_of_another_width_is_one_line(tiny_model, tmp_path: Path):
    sae = TopKSAE(TopKSAE.config(d_in=16, d_sae=32, k=4)).eval()
    with pytest.raises(ValueError, match=r"d_in=16 but blocks.1.hook_resid_post of the model is 32 wide") as err:
        evaluate_sparse_probing(sae, EvalContext(TINY_HOOK, lambda: tiny_model, tmp_path), SMALL)
    assert "\n" not in str(err.value)


def test_a_missing_dataset_fails_before_the_model_loads():
    def no_model():
        raise AssertionError("the model was loaded")
    sae = TopKSAE(TopKSAE.config(d_in=16, d_sae=32, k=4)).eval()
    config = SparseProbingConfig(datasets=("92_glue_sst2", "no_such_set"))
    with pytest.raises(ValueError, match="no probing dataset named 'no_such_set'") as err:
        evaluate_sparse_probing(sae, EvalContext(TINY_HOOK, no_model), config)
    assert "\n" not in str(err.value)


def test_an_empty_split_is_one_line():
    with pytest.raises(ValueError, match="a split would be empty"):
        SparseProbingConfig(n_test=0)
    with pytest.raises(ValueError, match="no texts to harvest"):
        harvest_texts(None, TINY_HOOK, [])


def test_config_checks():
    with pytest.raises(ValueError, match="distinct positive"):
        SparseProbingConfig(ks=(1, 1))
    with pytest.raises(ValueError, match="pooling must be one of"):
        SparseProbingConfig(pooling="max")
    quick = SparseProbingConfig.quick()
    assert len(quick.datasets) < len(SparseProbingConfig().datasets) and quick.ks == (1, 2, 5, 20)
    assert SparseProbingConfig(datasets=["92_glue_sst2"]).datasets == ("92_glue_sst2",)


@pytest.mark.slow
def test_the_embedded_model_gives_one_finite_vector_per_text():
    from superscope.activations import load_model

    texts = ["a chilling tale of one of the great crimes", "the worst kind of hollywood heart-string plucking",
             "def __init__(self, function):", "Goffs Oak"]
    acts = harvest_texts(load_model(), "blocks.15.hook_resid_post", texts, "last", max_tokens=16, batch_size=4)
    assert acts.shape == (4, 576) and torch.isfinite(acts).all()
    assert (acts.norm(dim=1) > 1).all()
