"""Corpus sources, packing into contexts, determinism and the held-out split."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from superscope.activations.corpus import Corpus, CorpusNotAvailableError, as_corpus, context_batches, iter_contexts
from superscope.activations.documents import clean, embedded_documents


def _write_docs(folder, texts):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "docs.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    return folder / "docs.jsonl"


def _docs(n=60, length=50):
    return [f"document {i}: " + "".join(chr(97 + (i * 7 + j) % 26) for j in range(length)) for i in range(n)]


def test_contexts_have_bos_and_fixed_length(char_tokenizer, tmp_path):
    path = _write_docs(tmp_path, _docs())
    ctxs = list(iter_contexts(char_tokenizer, str(path), context_len=16, max_epochs=1))
    assert len(ctxs) > 10
    assert all(c.shape == (16,) and c[0] == 1 for c in ctxs)


def test_packing_wastes_no_tokens(char_tokenizer, tmp_path):
    """The context bodies concatenated are exactly the stream doc₁ BOS doc₂ BOS … (no padding, no gaps)."""
    path = _write_docs(tmp_path, _docs(40))
    corpus = Corpus(str(path))
    ctxs = list(iter_contexts(char_tokenizer, corpus, context_len=16, seed=3, max_epochs=1))
    stream = [t for d in corpus.documents(3) for t in [*char_tokenizer([d])["input_ids"][0], 1]]
    bodies = np.concatenate([c[1:] for c in ctxs])
    assert len(stream) - len(bodies) < 15  # only the last partial context is dropped
    np.testing.assert_array_equal(bodies, stream[: len(bodies)])


def test_same_seed_same_contexts_other_seed_other_order(char_tokenizer, tmp_path):
    path = _write_docs(tmp_path, _docs())
    a = np.stack(list(itertools.islice(iter_contexts(char_tokenizer, str(path), 16, seed=0), 20)))
    b = np.stack(list(itertools.islice(iter_contexts(char_tokenizer, str(path), 16, seed=0), 20)))
    c = np.stack(list(itertools.islice(iter_contexts(char_tokenizer, str(path), 16, seed=1), 20)))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_train_and_eval_splits_partition_documents(tmp_path):
    texts = _docs(400)
    path = _write_docs(tmp_path, texts)
    train = set(Corpus(str(path)).documents(0))
    held = set(Corpus(str(path), split="eval", eval_fraction=0.1).documents(0))
    train10 = set(Corpus(str(path), eval_fraction=0.1).documents(0))
    assert train10.isdisjoint(held) and train10 | held == set(texts)
    assert 15 <= len(held) <= 70  # ~10 % of 400
    assert len(train) > len(train10)  # default fraction 0.05 holds out fewer
    assert set(Corpus(str(path), split="eval", eval_fraction=0.1).documents(5)) == held  # seed-independent


def test_corpus_repeats_with_a_warning_when_exhausted(char_tokenizer, tmp_path):
    path = _write_docs(tmp_path, _docs(10))
    one_epoch = len(list(iter_contexts(char_tokenizer, str(path), 16, max_epochs=1)))
    with pytest.warns(UserWarning, match="ran out"):
        more = list(itertools.islice(iter_contexts(char_tokenizer, str(path), 16), one_epoch + 5))
    assert len(more) == one_epoch + 5


def test_corpus_smaller_than_one_context_is_an_error(char_tokenizer, tmp_path):
    path = _write_docs(tmp_path, ["tiny"])
    with pytest.raises(ValueError, match="less than one context"):
        next(iter_contexts(char_tokenizer, str(path), 128))


def test_context_batches_skip_matches_stream(char_tokenizer, tmp_path):
    path = _write_docs(tmp_path, _docs())
    full = np.concatenate(list(context_batches(char_tokenizer, str(path), 12, 5, 16)))
    later = np.concatenate(list(context_batches(char_tokenizer, str(path), 7, 3, 16, skip=5)))
    assert full.shape == (12, 16)
    np.testing.assert_array_equal(full[5:], later)


def test_local_text_folder(char_tokenizer, tmp_path):
    (tmp_path / "a.txt").write_text("\n\n".join(f"paragraph {i} " * 20 for i in range(30)))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("markdown text " * 200)
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    docs = list(Corpus(str(tmp_path), eval_fraction=0.01).documents(0))
    assert any("markdown" in d for d in docs) and any("paragraph 3 " in d for d in docs)
    assert all(len(d) <= 9000 for d in docs)


def test_bad_local_inputs(char_tokenizer, tmp_path):
    with pytest.raises(CorpusNotAvailableError, match="does not exist"):
        list(Corpus(str(tmp_path / "missing.txt")).documents())
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(ValueError, match="unsupported suffix"):
        list(Corpus(str(tmp_path / "x.csv")).documents())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    with pytest.raises(ValueError, match="text_field"):
        list(Corpus(str(bad), eval_fraction=0.01).documents())
    with pytest.raises(ValueError, match="split"):
        Corpus(split="test")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        as_corpus(42)  # type: ignore[arg-type]


def test_hf_dataset_offline_error_is_clear(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    corpus = Corpus("someone/some-dataset-that-is-not-cached")
    assert corpus.kind == "hf"
    with pytest.raises(CorpusNotAvailableError, match="corpus='default'"):
        next(corpus.documents())


def test_embedded_corpus_is_cpython_prose_and_deterministic():
    first = list(itertools.islice(embedded_documents(0), 40))
    assert first == list(itertools.islice(embedded_documents(0), 40))
    assert first != list(itertools.islice(embedded_documents(1), 40))
    everything = " ".join(first)
    assert len(everything) > 20_000 and "*****" not in everything
    assert Corpus().kind == "embedded" and Corpus().describe()["python"]


def test_clean_drops_rules_and_blank_runs():
    assert clean('The "assert" statement\n**********************\n\n\n\nAssert ...') == \
        'The "assert" statement\n\nAssert ...'


@pytest.mark.slow
def test_embedded_corpus_with_the_real_tokenizer(model):
    ctx = next(iter_contexts(model.tokenizer, None, 64, seed=0))
    assert ctx[0] == model.tokenizer.bos_token_id and len(ctx) == 64
    text = model.tokenizer.decode(ctx[1:])
    assert len(text) > 100 and sum(ch.isalpha() for ch in text) > 0.5 * len(text)
