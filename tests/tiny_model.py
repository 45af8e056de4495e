"""A tiny stand-in language model for harvest tests: a 2-layer random Llama with a small byte-level BPE
tokenizer, saved as a Hugging Face folder and loaded with ``load_model(folder)`` (the real path)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def build_tiny_model(root: Path) -> tuple[Path, Path]:
    """Write ``root/model`` (model + tokenizer) and a small jsonl corpus ``root/docs.jsonl``; return both."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [f"Note {i}: sparse autoencoders find features hidden in superposition, layer {i % 7}. " * 6
             for i in range(60)]
    corpus = root / "docs.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": t}) for t in texts))
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<unk>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<unk>")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=64, bos_token_id=fast.bos_token_id,
                                         eos_token_id=fast.eos_token_id))
    torch.random.set_rng_state(gen_state)
    model.save_pretrained(root / "model")
    fast.save_pretrained(root / "model")
    return root / "model", corpus
