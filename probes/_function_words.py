"""Function tokens: the frequency definition and a linguistic word list mapped through a tokenizer.

Zhang, Lin, Li 2025 (specs/probes.md §2) define function tokens by frequency, per tokenizer and
corpus: sort token ids by count and take the most frequent until they cover 40 % of all
occurrences; everything else is a content token. The linguistic list (punctuation, articles,
prepositions, conjunctions, pronouns) is offered for comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

FUNCTION_WORDS: dict[str, tuple[str, ...]] = {
    "punctuation": (".", ",", ";", ":", "!", "?", "'", '"', "(", ")", "[", "]", "-", "--", "—", "–", "...",
                    "/", "'s", "\n", "\n\n"),
    "articles": ("the", "a", "an"),
    "prepositions": ("of", "in", "to", "for", "with", "on", "at", "from", "by", "about", "as", "into",
                     "like", "through", "after", "over", "between", "out", "against", "during", "without",
                     "before", "under", "around", "among", "up", "down", "off", "upon", "within", "toward",
                     "towards", "across", "behind", "beyond", "since", "until", "via", "per", "than"),
    "conjunctions": ("and", "or", "but", "nor", "so", "yet", "if", "because", "while", "although",
                     "though", "that", "whether", "when", "where", "unless", "whereas", "once"),
    "pronouns": ("i", "me", "my", "mine", "you", "your", "yours", "he", "him", "his", "she", "her", "hers",
                 "it", "its", "we", "us", "our", "ours", "they", "them", "their", "theirs", "this", "these",
                 "those", "who", "whom", "whose", "which", "what", "myself", "yourself", "himself",
                 "herself", "itself", "ourselves", "themselves", "there"),
}


def frequency_function_tokens(token_ids: Any, counts: Any, coverage: float = 0.4) -> tuple[np.ndarray, float]:
    """The most frequent token ids that together cover `coverage` of all occurrences.

    Returns (ids sorted by count, descending; the share of occurrences they cover, ≥ coverage).
    Ties at the boundary are broken by token id, so the set is deterministic.
    """
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    cnt = np.asarray(counts, dtype=np.int64).reshape(-1)
    if ids.shape != cnt.shape:
        raise ValueError(f"token_ids and counts differ in length: {ids.size} vs {cnt.size}")
    total = int(cnt.sum())
    if total <= 0:
        raise ValueError("no token occurrences counted; pass the counts of a non-empty corpus")
    order = np.lexsort((ids, -cnt))  # count descending, then id ascending
    cum = np.cumsum(cnt[order])
    n = int(np.searchsorted(cum, coverage * total - 1e-9 * total, side="left")) + 1
    return ids[order[:n]], float(cum[n - 1] / total)


def _encoder(tokenizer: Any) -> Callable[[str], list[int]]:
    if callable(getattr(tokenizer, "encode", None)):
        def enc(text: str) -> list[int]:
            try:
                out = tokenizer.encode(text, add_special_tokens=False)
            except TypeError:
                out = tokenizer.encode(text)
            return list(getattr(out, "ids", out))
        return enc
    if callable(tokenizer):
        return lambda text: list(tokenizer(text))
    raise TypeError("tokenizer must have .encode(text) (Hugging Face) or be a callable text -> ids")


def linguistic_function_tokens(tokenizer: Any, categories: Iterable[str] | None = None,
                               words: Mapping[str, Iterable[str]] | None = None) -> dict[str, tuple[int, ...]]:
    """Token ids of the linguistic function words, per category.

    Each word is tried as written, capitalised, and with a leading space (BPE tokenizers encode the
    word-initial space into the token); only spellings that encode to exactly one token count.
    """
    table = dict(words) if words is not None else FUNCTION_WORDS
    cats = list(categories) if categories is not None else list(table)
    unknown = [c for c in cats if c not in table]
    if unknown:
        raise ValueError(f"unknown function-word categories {unknown}; choose from {sorted(table)}")
    enc = _encoder(tokenizer)
    out: dict[str, tuple[int, ...]] = {}
    for cat in cats:
        ids: set[int] = set()
        for word in table[cat]:
            for text in {word, word.capitalize(), " " + word, " " + word.capitalize()}:
                toks = enc(text)
                if len(toks) == 1:
                    ids.add(int(toks[0]))
        out[cat] = tuple(sorted(ids))
    return out
