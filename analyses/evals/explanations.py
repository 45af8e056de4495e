"""Explanations of SAE latents without an LLM: input-centric token sets and output-centric VocabProj.

Input-centric (what a latent reads): the tokens its examples fire on, from the feature data
(``features/<hook>/<arch>/``: the top-K activating examples and the quantile-band examples, both
drawn from the held-out shards). To score an explanation on tokens it was not built from, the
held-out contexts are split deterministically by parity of their context index:

    explanation half = even context indices      scoring half = odd context indices

and only the examples whose held-out row lies in an even context enter the explanation. The key of
an example is its firing token, or with ``use_previous_token`` the pair (previous token, token).
Per latent f, the keys are ranked by how many of its explanation examples (top and band examples,
duplicates removed) carry them; the explanation is the top-ranked key plus every further key seen on
at least ``min_count`` examples, at most ``max_tokens`` keys. Ties rank by key id (deterministic).

Output-centric (what a latent writes), VocabProj (Gur-Arieh et al. 2025, "Enhancing automated
interpretability with output-centric feature descriptions", arXiv 2501.08319, §3): the decoder
direction in the model's residual units, W_dec[f] / s (the SAE decodes x̂ = (z W_dec + b_dec) / s),
read through the final norm's scale g and the unembedding,

    vocab_proj_f = (g ⊙ W_dec[f] / s) @ W_U      [V]

whose largest entries are the promoted tokens and smallest the suppressed ones. This is the same
quantity the feature data stores as its direct logit effect (``analyses.features.static``), so it is
read from there when stored and computed (chunked over latents) otherwise.

Letters: F latents, K top examples, B bands, E examples per band, W window, X = K + B·E examples,
M explanation keys per latent, L promoted / suppressed tokens, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from safetensors import safe_open
from torch import Tensor

from superscope.analyses.features.static import logit_effects, unembedding
from superscope.analyses.features.storage import TENSORS, FeatureData

KEY_BASE = 1 << 24
"""A pair key is (previous + 1) · KEY_BASE + token; token ids must stay below it."""


def explanation_half(context_ids: Tensor) -> Tensor:
    """True for rows in the explanation half (even context index), False for the scoring half (odd)."""
    return context_ids % 2 == 0


def pair_keys(prev: Tensor, tok: Tensor, use_previous_token: bool) -> Tensor:
    """The key of a token occurrence: the token id, or (prev + 1)·KEY_BASE + token (prev = −1: none)."""
    if not use_previous_token:
        return tok.long()
    return (prev.long() + 1) * KEY_BASE + tok.long()


def key_tokens(key: Tensor) -> tuple[Tensor, Tensor]:
    """(previous token or −1, token) of keys made by ``pair_keys`` (a plain token key gives previous −1)."""
    return key // KEY_BASE - 1, key % KEY_BASE


@dataclass(frozen=True)
class TokenExplanations:
    """Per latent, its explanation keys (token ids, or pair keys with ``use_previous_token``).

    keys_FM       int64 [F, M], −1 = padding; sorted by count, most frequent first
    counts_FM     int64 [F, M]: explanation examples carrying the key
    n_examples_F  int64 [F]: distinct explanation-half examples of the latent (0: nothing to explain from)
    contexts      per latent, up to ``n_contexts`` short contexts of its top explanation-half examples,
                  the firing token in [[double brackets]]
    """

    keys_FM: Int[Tensor, "F M"]
    counts_FM: Int[Tensor, "F M"]
    n_examples_F: Int[Tensor, " F"]
    contexts: list[list[str]]
    use_previous_token: bool


def read_examples(fd: FeatureData) -> dict[str, Tensor]:
    """The example arrays of a feature-data folder, whole (rows, window token ids)."""
    names = ("top_rows_FK", "top_tokens_FKW", "band_rows_FBE", "band_tokens_FBEW")
    with safe_open(str(fd.folder / TENSORS), framework="pt") as f:
        missing = [n for n in names if n not in f.keys()]
        if missing:
            raise ValueError(f"{fd.folder} lacks {missing}; regenerate the feature data (superscope run)")
        return {n: f.get_tensor(n) for n in names}


def _examples_FX(ex: dict[str, Tensor], window: int) -> tuple[Tensor, Tensor, Tensor]:
    """rows_FX, token_FX, prev_FX of the top and band examples together (row −1 = no example)."""
    F = ex["top_rows_FK"].shape[0]
    rows = torch.cat([ex["top_rows_FK"], ex["band_rows_FBE"].reshape(F, -1)], 1).long()
    band_FXW = ex["band_tokens_FBEW"].reshape(F, -1, ex["band_tokens_FBEW"].shape[-1])
    toks_FXW = torch.cat([ex["top_tokens_FKW"], band_FXW], 1)
    prev = toks_FXW[..., window - 1] if window >= 1 else torch.full_like(rows, -1)
    return rows, toks_FXW[..., window].long(), prev.long()


@torch.no_grad()
def token_explanations(fd: FeatureData, explain_row_R: Bool[Tensor, " R"], max_tokens: int = 8, min_count: int = 2,
                       use_previous_token: bool = False, n_contexts: int = 3,
                       context_window: int = 4) -> TokenExplanations:
    """Input-centric explanations of every latent at once from the feature data's examples whose
    held-out row r has ``explain_row_R[r]`` (see the module docstring for the rule)."""
    ex = read_examples(fd)
    window = int(fd.index["window"])
    rows_FX, tok_FX, prev_FX = _examples_FX(ex, window)
    F = rows_FX.shape[0]
    if rows_FX.numel() and int(rows_FX.max()) >= explain_row_R.numel():
        raise ValueError(f"the feature data in {fd.folder} names held-out row {int(rows_FX.max())} but the held-out "
                         f"activations have {explain_row_R.numel()} rows; regenerate the feature data for this run")
    ok_FX = (rows_FX >= 0) & (tok_FX >= 0)
    ok_FX &= explain_row_R[rows_FX.clamp_min(0)]
    key_FX = pair_keys(prev_FX, tok_FX, use_previous_token)
    f_X = torch.arange(F).unsqueeze(1).expand_as(rows_FX)
    # distinct examples (a top example can also be a band example: same row), as 1-D codes f·R + row
    R = max(explain_row_R.numel(), 1)
    ex_E, inv = torch.unique(f_X[ok_FX] * R + rows_FX[ok_FX], return_inverse=True)
    key_E = torch.zeros_like(ex_E).scatter_(0, inv, key_FX[ok_FX])  # a row has one key
    f_E = ex_E // R
    n_examples_F = torch.bincount(f_E, minlength=F)
    keys_K, k_E = torch.unique(key_E, return_inverse=True)
    n_keys = max(keys_K.numel(), 1)
    code_P, counts = torch.unique(f_E * n_keys + k_E, return_counts=True)  # sorted by (f, key)
    # rank keys within a latent by count (descending), ties by key (ascending): two stable sorts
    order = torch.sort(-counts, stable=True).indices
    order = order[torch.sort(code_P[order] // n_keys, stable=True).indices]
    f_P, count_P = code_P[order] // n_keys, counts[order]
    key_P = keys_K[code_P[order] % n_keys] if keys_K.numel() else code_P[order]
    starts_F = torch.cumsum(torch.bincount(f_P, minlength=F), 0) - torch.bincount(f_P, minlength=F)
    rank_P = torch.arange(f_P.numel()) - starts_F[f_P]
    keep = (rank_P < max_tokens) & ((rank_P == 0) | (count_P >= min_count))
    keys_FM = torch.full((F, max_tokens), -1, dtype=torch.int64)
    counts_FM = torch.zeros((F, max_tokens), dtype=torch.int64)
    keys_FM[f_P[keep], rank_P[keep]] = key_P[keep]
    counts_FM[f_P[keep], rank_P[keep]] = count_P[keep]
    top_ok_FK = ok_FX[:, :ex["top_rows_FK"].shape[1]]
    contexts = short_contexts(fd, ex["top_tokens_FKW"], top_ok_FK, window, n_contexts, context_window)
    return TokenExplanations(keys_FM, counts_FM, n_examples_F, contexts, use_previous_token)


def short_contexts(fd: FeatureData, top_tokens_FKW: Tensor, ok_FK: Tensor, window: int, n: int,
                   half_width: int) -> list[list[str]]:
    """Up to ``n`` strings per latent: ±``half_width`` tokens around its top usable examples."""
    h = min(half_width, window)
    toks = top_tokens_FKW[..., window - h:window + h + 1].tolist()
    ok = ok_FK.tolist()
    out = []
    for f_toks, f_ok in zip(toks, ok):
        ctxs = []
        for win, use in zip(f_toks, f_ok):
            if not use:
                continue
            left = "".join(fd.token(t) for t in win[:h] if t >= 0)
            right = "".join(fd.token(t) for t in win[h + 1:] if t >= 0)
            ctxs.append(f"{left}[[{fd.token(win[h])}]]{right}")
            if len(ctxs) == n:
                break
        out.append(ctxs)
    return out


def key_text(fd: FeatureData, key: int, use_previous_token: bool) -> str:
    """A key as text: the token string, or "prev→token" for a pair key."""
    if not use_previous_token:
        return fd.token(key)
    prev, tok = (int(v) for v in key_tokens(torch.tensor(key)))
    return f"{fd.token(prev) if prev >= 0 else '<start>'}→{fd.token(tok)}"


@dataclass(frozen=True)
class VocabProjection:
    """Output-centric explanation: top promoted / suppressed token ids per latent and their effects."""

    promoted_FL: Int[Tensor, "F L"]
    promoted_vals_FL: Tensor
    suppressed_FL: Int[Tensor, "F L"]
    suppressed_vals_FL: Tensor
    source: str
    """"feature data" (read from the stored logit effects) or "computed" (from the model's W_U)."""


@torch.no_grad()
def vocab_projection(sae: Any, n: int, fd: FeatureData | None = None, model: Any = None) -> VocabProjection:
    """VocabProj of every latent of ``sae`` (module docstring): from the feature data when it stores at least
    ``n`` logit effects per latent, else computed from ``model`` (``W_U``, ``ln_final``)."""
    if fd is not None and "logit_top_ids_FL" in fd.arrays and fd.arrays["logit_top_ids_FL"].shape[1] >= n \
            and fd.arrays["logit_top_ids_FL"].shape[0] == sae.cfg.d_sae:
        a = fd.arrays
        return VocabProjection(a["logit_top_ids_FL"][:, :n], a["logit_top_vals_FL"][:, :n],
                               a["logit_bot_ids_FL"][:, :n], a["logit_bot_vals_FL"][:, :n], "feature data")
    if model is None:
        raise ValueError("VocabProj needs the model's unembedding: give a model, or feature data with logit effects")
    W_U, gain = unembedding(model)
    eff = logit_effects(sae.W_dec.detach().to(W_U.device), sae.cfg.input_scale, W_U, gain, n)
    return VocabProjection(eff["logit_top_ids_FL"], eff["logit_top_vals_FL"], eff["logit_bot_ids_FL"],
                           eff["logit_bot_vals_FL"], "computed")


LLM_PROMPT = ("In each snippet one token is marked with [[double brackets]].\n{snippets}\n"
              "What do the marked tokens have in common? Answer in a few words.")


@torch.no_grad()
def llm_explanations(model: Any, contexts: dict[int, list[str]], max_new_tokens: int = 24) -> dict[int, str]:
    """A one-line explanation per latent, written by ``model`` (the embedded SmolLM2-135M-Instruct, a
    TransformerLens bridge) from its short contexts: chat template, greedy decoding until a newline or the end
    token. A 135M model gives weak descriptions; callers mark them "llm" and do not score them.

    Decoding is a plain loop of full forwards (no KV cache): the bridge's and transformers' ``generate``
    returned degenerate text ("The-----…") for this model while its forward is right; the prompt is short."""
    tok = model.tokenizer
    out = {}
    for f, ctxs in contexts.items():
        if not ctxs:
            continue
        prompt = LLM_PROMPT.format(snippets="\n".join(f"- {c}" for c in ctxs))
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt")
        ids = (ids if isinstance(ids, torch.Tensor) else ids["input_ids"]).to(model.cfg.device)
        new: list[int] = []
        for _ in range(max_new_tokens):
            seq = torch.cat([ids, torch.tensor([new], dtype=ids.dtype, device=ids.device)], 1)
            nxt = int(model(seq)[0, -1].argmax())
            if nxt == tok.eos_token_id or "\n" in tok.decode([nxt]):
                break
            new.append(nxt)
        out[f] = tok.decode(new, skip_special_tokens=True).strip().lstrip("-•* ").strip()  # the model likes bullets
    return out
