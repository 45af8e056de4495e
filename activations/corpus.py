"""Corpora and fixed-length token contexts.

A ``Corpus`` names where text comes from (the embedded CPython prose, local files, or a Hugging Face
dataset) and which split to read. ``iter_contexts`` turns it into contexts of ``context_len`` token
ids for a model's tokenizer, packed without padding (SAELens-style):

    stream   = doc₁ ⟨sep⟩ doc₂ ⟨sep⟩ doc₃ …          (⟨sep⟩ = the BOS token)
    context  = [BOS] + the next (context_len − 1) tokens of the stream

Held-out split: a document belongs to ``eval`` when the BLAKE2b hash of its text, read as a number in
[0, 1), is below ``eval_fraction``; otherwise to ``train``. The split is by document (no text is shared
between the two) and independent of the seed and the order.

Order: fixed by ``seed`` (see ``documents.py``). When the corpus is exhausted the stream repeats it,
re-shuffled (epoch e uses seed + 7919·e), with a warning.
"""

from __future__ import annotations

import hashlib
import itertools
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import documents
from .documents import CorpusNotAvailableError

__all__ = ["Corpus", "CorpusNotAvailableError", "as_corpus", "bos_id", "context_batches", "iter_contexts"]

DEFAULT_CONTEXT_LEN = 128


@dataclass(frozen=True)
class Corpus:
    """Where the text comes from, and which split."""

    source: str = "default"
    """'default' (prose shipped with CPython), a local .txt/.md/.rst/.jsonl file or folder, or a Hugging Face
    dataset name (streamed; needs the hub)."""
    split: Literal["train", "eval"] = "train"
    """Which side of the held-out split to read (hash split by document)."""
    eval_fraction: float = 0.05
    """Fraction of documents held out for evaluation."""
    text_field: str = "text"
    """Field holding the text in .jsonl lines and Hugging Face rows."""
    hf_config: str | None = None
    """Hugging Face dataset configuration (e.g. 'wikitext-103-raw-v1')."""
    hf_split: str = "train"
    """Hugging Face split to stream (our train/eval split is made inside it)."""
    shuffle_buffer: int = 10_000
    """Documents in the buffer shuffle of streamed / long sources."""

    def __post_init__(self) -> None:
        if self.split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', got {self.split!r}")
        if not 0 < self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")
        if self.shuffle_buffer < 1:
            raise ValueError("shuffle_buffer must be at least 1")
        if not isinstance(self.source, str) or not self.source:
            raise ValueError("source must be 'default', a local path, or a Hugging Face dataset name")

    @property
    def kind(self) -> Literal["embedded", "local", "hf"]:
        """'embedded', 'local' (the path exists or looks like one) or 'hf'."""
        if self.source == "default":
            return "embedded"
        path = Path(self.source).expanduser()
        if path.exists() or self.source.startswith((".", "/", "~")) or path.suffix in documents.LOCAL_SUFFIXES:
            return "local"
        return "hf"

    def with_split(self, split: Literal["train", "eval"]) -> Corpus:
        """The same corpus, other split."""
        return replace(self, split=split)

    def in_split(self, text: str) -> bool:
        """Whether a document belongs to this corpus' split."""
        h = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") / 2**64
        return (h < self.eval_fraction) == (self.split == "eval")

    def documents(self, seed: int = 0) -> Iterator[str]:
        """The documents of this split, in the order fixed by ``seed`` (one pass)."""
        if self.kind == "embedded":
            docs = documents.embedded_documents(seed)
        elif self.kind == "local":
            docs = documents.local_documents(Path(self.source).expanduser(), seed, self.text_field,
                                             min(self.shuffle_buffer, 1000))
        else:
            docs = documents.hf_documents(self.source, seed, self.hf_config, self.hf_split, self.text_field,
                                          self.shuffle_buffer)
        return (d for d in docs if self.in_split(d))

    def describe(self) -> dict[str, Any]:
        """JSON-safe description (for manifests and run.json)."""
        out = asdict(self)
        out["kind"] = self.kind
        if self.kind == "embedded":
            import platform

            out["python"] = platform.python_version()  # the embedded text is this Python's docs
        elif self.kind == "local":
            out["source"] = str(Path(self.source).expanduser().resolve())
        return out


def as_corpus(corpus: Corpus | str | Path | None) -> Corpus:
    """``None`` → the embedded default; a string or path → ``Corpus(source=...)``."""
    if corpus is None:
        return Corpus()
    if isinstance(corpus, Corpus):
        return corpus
    if isinstance(corpus, (str, Path)):
        return Corpus(source=str(corpus))
    raise TypeError(f"corpus must be a Corpus, a path or a dataset name, not {type(corpus).__name__}")


def bos_id(tokenizer: Any) -> int:
    """The token that starts every context (BOS; EOS when the tokenizer has no BOS)."""
    for attr in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    raise ValueError("the tokenizer has neither a BOS nor an EOS token; cannot delimit contexts")


def _doc_groups(docs: Iterator[str], max_docs: int = 32, max_chars: int = 16_384) -> Iterator[list[str]]:
    """Documents in groups for batched tokenisation, small enough that a short harvest reads little text."""
    group: list[str] = []
    size = 0
    for doc in docs:
        group.append(doc)
        size += len(doc)
        if len(group) >= max_docs or size >= max_chars:
            yield group
            group, size = [], 0
    if group:
        yield group


def _token_stream(tokenizer: Any, docs: Iterator[str], sep: int) -> Iterator[np.ndarray]:
    for group in _doc_groups(docs):
        for ids in tokenizer(group, add_special_tokens=False, verbose=False)["input_ids"]:
            yield np.asarray([*ids, sep], dtype=np.int64)


def _pack(stream: Iterator[np.ndarray], context_len: int, bos: int) -> Iterator[np.ndarray]:
    body = context_len - 1
    pending = np.empty(0, dtype=np.int64)
    for ids in stream:
        pending = np.concatenate([pending, ids])
        n = len(pending) // body
        if n:
            block = np.empty((n, context_len), dtype=np.int64)
            block[:, 0] = bos
            block[:, 1:] = pending[: n * body].reshape(n, body)
            yield from block
            pending = pending[n * body:]


def iter_contexts(tokenizer: Any, corpus: Corpus | str | None = None, context_len: int = DEFAULT_CONTEXT_LEN,
                  seed: int = 0, max_epochs: int | None = None) -> Iterator[np.ndarray]:
    """Contexts ``[context_len]`` (int64 token ids, BOS first) of ``corpus``; endless unless ``max_epochs``."""
    corpus = as_corpus(corpus)
    if context_len < 2:
        raise ValueError(f"context_len must be at least 2 (BOS + one token), got {context_len}")
    bos = bos_id(tokenizer)
    produced = 0
    for epoch in itertools.count():
        if max_epochs is not None and epoch >= max_epochs:
            return
        if epoch == 1:
            warnings.warn(f"corpus {corpus.source!r} ({corpus.split}) ran out after {produced} contexts of "
                          f"{context_len} tokens; repeating it re-shuffled", stacklevel=2)
        docs = corpus.documents(seed + 7919 * epoch)
        for ctx in _pack(_token_stream(tokenizer, docs, bos), context_len, bos):
            produced += 1
            yield ctx
        if produced == 0:
            raise ValueError(f"corpus {corpus.source!r} ({corpus.split} split) holds less than one context of "
                             f"{context_len} tokens; use more text, a shorter context_len or the other split")


def context_batches(tokenizer: Any, corpus: Corpus | str | None, n_contexts: int, batch_size: int,
                    context_len: int = DEFAULT_CONTEXT_LEN, seed: int = 0, skip: int = 0) -> Iterator[np.ndarray]:
    """Contexts ``skip … skip + n_contexts − 1`` of the stream, in batches ``[≤ batch_size, context_len]``."""
    stream = itertools.islice(iter_contexts(tokenizer, corpus, context_len, seed), skip, skip + n_contexts)
    while rows := list(itertools.islice(stream, batch_size)):
        yield np.stack(rows)
