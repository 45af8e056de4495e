"""A token's feature set on the held-out tokens: the features an SAE uses on every occurrence of that
token — its neighbourhood in the function-token graph (Zhang, Lin, Li 2025, specs/probes.md), counted the
way the probe counts (corpus-order batches of ``PROBE_BATCH`` rows, the SAE in its saved mode, so a
batch-dependent rule sees the same batches).

For tokens t in a set T, over the first ``max_tokens`` held-out rows r with token id tok(r):

    count[t, f] = #{r : tok(r) = t, z_rf > 0}        mean[t, f] = Σ_{r: tok(r)=t} z_rf / count[t, f]

All of T in one pass over the held-out rows (the SAE encodes each batch once, whatever |T|), on the
sparse codes (no dense [B, F] tensor). The dashboard's Function tokens page shows one token's set; the
precompute step of ``superscope run`` writes the sets of each graph's most frequent tokens into
``<run>/cache/token_features/<hook>/<arch>/<max_tokens>.json`` with its inputs' signature (the SAE's
weights and the held-out manifest: size + modification time), so the page's first load reads a file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from superscope.analyses.runs.folder import CACHE_DIR, RunFolder

PROBE_BATCH = 4096
DEFAULT_MAX_TOKENS = 32768
PRECOMPUTE_TOKENS = 20
"""How many of a graph's most frequent tokens the precompute step covers (the page opens on the first)."""


@torch.no_grad()
def token_feature_sets(run_root: str | Path, hook: str, arch: str, token_ids: Sequence[int],
                       max_tokens: int = DEFAULT_MAX_TOKENS) -> dict[int, dict]:
    """{token id: {"n_occurrences", "tokens_scanned", "features": [[feature, times fired on the token, mean
    activation], …]}} — features most often fired first (ties: lower index first)."""
    from superscope.activations import load_activations
    from superscope.saes import load_sae

    run = RunFolder(Path(run_root))
    held = load_activations(run.heldout(hook))
    sae = load_sae(run.sae(hook, arch)).eval()
    wanted = sorted({int(t) for t in token_ids})
    if not wanted:
        return {}
    lookup = torch.full((max(wanted) + 1,), -1, dtype=torch.int64)
    lookup[torch.tensor(wanted)] = torch.arange(len(wanted))
    F = sae.cfg.d_sae
    count_TF = torch.zeros(len(wanted) * F, dtype=torch.int64)
    sum_TF = torch.zeros(len(wanted) * F, dtype=torch.float64)
    n_T = torch.zeros(len(wanted), dtype=torch.int64)
    seen = 0
    for ids_B, x_BD in held.pairs(PROBE_BATCH):
        if seen >= max_tokens:
            break
        seen += ids_B.numel()
        slot_B = torch.where(ids_B < lookup.numel(), lookup[ids_B.clamp_max(lookup.numel() - 1)], -1)
        if not bool((slot_B >= 0).any()):
            continue
        n_T += torch.bincount(slot_B[slot_B >= 0], minlength=len(wanted))
        codes = sae(x_BD.to(sae.W_enc.device)).codes
        rows_N = torch.repeat_interleave(torch.arange(codes.n_rows), codes.crow_B1.diff().cpu())
        slot_N = slot_B.index_select(0, rows_N)
        keep = (slot_N >= 0) & (codes.values_N.cpu() > 0)
        flat_N = slot_N[keep] * F + codes.cols_N.cpu()[keep]
        count_TF.index_add_(0, flat_N, torch.ones_like(flat_N))
        sum_TF.index_add_(0, flat_N, codes.values_N.cpu()[keep].double())
    count_TF, sum_TF = count_TF.view(len(wanted), F), sum_TF.view(len(wanted), F)
    out = {}
    for slot, token in enumerate(wanted):
        used = count_TF[slot].nonzero().squeeze(1)
        order = used[torch.argsort(-count_TF[slot, used] * (F + 1) + used)]  # count desc, then index asc
        out[token] = {"n_occurrences": int(n_T[slot]), "tokens_scanned": seen,
                      "features": [[int(f), int(count_TF[slot, f]), float(sum_TF[slot, f] / count_TF[slot, f])]
                                   for f in order.tolist()]}
    return out


def precomputed_path(run_root: str | Path, hook: str, arch: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> Path:
    """``<run>/cache/token_features/<hook>/<arch>/<max_tokens>.json``."""
    return Path(run_root) / CACHE_DIR / "token_features" / hook / arch / f"{int(max_tokens)}.json"


def inputs_signature(run_root: str | Path, hook: str, arch: str) -> dict[str, int]:
    """Size + modification time (ns) of the SAE's weights and of the held-out manifest at ``hook``."""
    run = RunFolder(Path(run_root))
    return run.files_signature((run.sae(hook, arch) / "sae.safetensors", run.heldout(hook) / "manifest.json"))


def save_precomputed(run_root: str | Path, hook: str, arch: str, sets: dict[int, dict],
                     max_tokens: int = DEFAULT_MAX_TOKENS) -> Path:
    """Write ``sets`` (from ``token_feature_sets``) with the inputs' signature, atomically."""
    from superscope.saes.atomic_io import write_json

    return write_json(precomputed_path(run_root, hook, arch, max_tokens),
                      {"signature": inputs_signature(run_root, hook, arch), "max_tokens": int(max_tokens),
                       "sets": {str(t): s for t, s in sets.items()}})


def load_precomputed(run_root: str | Path, hook: str, arch: str, token_id: int,
                     max_tokens: int = DEFAULT_MAX_TOKENS) -> dict | None:
    """The precomputed set of ``token_id``, or None when absent, stale, unreadable or not covered."""
    try:
        saved = json.loads(precomputed_path(run_root, hook, arch, max_tokens).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("signature") != inputs_signature(run_root, hook, arch):
        return None
    found = (saved.get("sets") or {}).get(str(int(token_id)))
    return found if isinstance(found, dict) and "features" in found else None


def precompute_token_features(run_root: str | Path, n_tokens: int = PRECOMPUTE_TOKENS,
                              max_tokens: int = DEFAULT_MAX_TOKENS) -> list[str]:
    """For each hook of the function-token probe's graphs (its SAE and held-out activations present), the sets
    of the ``n_tokens`` most frequent tokens; a fresh file is kept. Returns the written (or kept) files."""
    run = RunFolder(Path(run_root))
    try:
        ft = json.loads(run.probe("function_tokens").read_text())
    except (OSError, ValueError):
        return []
    arch, files = ft.get("architecture"), []
    for hook, graph in sorted((ft.get("graphs") or {}).items()):
        ids = [int(t) for t in (graph.get("token_ids") or [])[:n_tokens]]
        if not ids or not arch or not (run.sae(hook, arch) / "sae.safetensors").exists() \
                or not (run.heldout(hook) / "manifest.json").exists():
            continue
        if any(load_precomputed(run.root, hook, arch, t, max_tokens) is None for t in ids):
            save_precomputed(run.root, hook, arch, token_feature_sets(run.root, hook, arch, ids, max_tokens), max_tokens)
        files.append(str(precomputed_path(run.root, hook, arch, max_tokens).relative_to(run.root)))
    return files
