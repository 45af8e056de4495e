"""Benchmark: batch-level selection (Mutual Choice / BatchTopK, Feature Choice) vs flat ``torch.topk``.

On the same post-ReLU activations [B, F] (an SAE-like encoder applied to activations with a mean
direction), timed in interleaved rounds, medians reported:
  - ``mc``: global top-M, M = k·B (``dispatch.topm_global``: threshold search + mask);
  - ``fc``: per-column top-m_f with uniform capacities m_f = ⌈M/F⌉ (``dispatch.topm_per_column``);
  - ``flat_topk``: ``torch.topk(M)`` over the B·F values — the naive rule, bare (no mask, no CSR);
  - ``column_topk``: ``torch.topk(m_f, dim=0)`` — the naive per-column rule for uniform capacities, bare;
  - ``row_topk``: ``torch.topk(k, dim=1)`` (TopK's per-row selection), for scale.
Identity: MC's pairs equal the reference ``topm_global_reference`` (flat topk + mask) exactly; FC's
pairs equal the positive entries of the bare per-column ``torch.topk`` (continuous values: no ties).
Target (issue 2): MC and FC ≥ 5× faster than the flat ``torch.topk`` at B=2048, F=32768, k=32.

    python -m superscope.benchmarks.selection --quick --json selection.json
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see sae_step.py: measure the code, not the load

import torch

from superscope.benchmarks._timing import (
    all_ratios,
    environment,
    format_table,
    interleaved,
    medians,
    speedup,
    write_json,
)
from superscope.kernels import crow_from_rows, dispatch, selection_reference

TARGET = 5.0


def make_acts(batch: int, d: int, n_features: int, device: str, seed: int = 0) -> torch.Tensor:
    """ReLU(x @ W_enc + b_enc) with unit decoder rows, W_enc = W_decᵀ, x with a mean direction."""
    gen = torch.Generator().manual_seed(seed)
    x_BD = torch.randn(batch, d, generator=gen) + torch.randn(d, generator=gen)
    W_FD = torch.randn(n_features, d, generator=gen)
    W_FD /= W_FD.norm(dim=1, keepdim=True)
    b_F = 0.1 * torch.randn(n_features, generator=gen)
    x_BD, W_FD, b_F = x_BD.to(device), W_FD.to(device), b_F.to(device)
    with torch.no_grad():
        return torch.addmm(b_F, x_BD, W_FD.T.contiguous()).relu_()


def check_identity(acts_BF: torch.Tensor, k: int) -> dict[str, bool]:
    """Exact equality of ours with the naive rules."""
    B, F = acts_BF.shape
    m, cap = k * B, math.ceil(k * B / F)
    crow, cols = dispatch.topm_global(acts_BF, m)
    rows_ref, cols_ref = selection_reference.topm_global_reference(acts_BF, m)
    mc_equal = torch.equal(cols, cols_ref) and torch.equal(crow, crow_from_rows(rows_ref, B))
    crow_fc, cols_fc = dispatch.topm_per_column(acts_BF, torch.full((F,), cap, device=acts_BF.device))
    top = acts_BF.topk(cap, dim=0)
    mask = torch.zeros_like(acts_BF, dtype=torch.bool).scatter_(0, top.indices, top.values > 0)
    rows_naive, cols_naive = mask.nonzero(as_tuple=True)
    fc_equal = torch.equal(cols_fc, cols_naive) and torch.equal(crow_fc, crow_from_rows(rows_naive, B))
    return {"mc_equals_flat_topk_reference": bool(mc_equal), "fc_equals_column_topk": bool(fc_equal),
            "mc_selected": int(cols.numel()), "fc_selected": int(cols_fc.numel())}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds (< 1 minute)")
    p.add_argument("--json", help="write all figures and ratios to this JSON file")
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--d-sae", type=int, default=32768)
    p.add_argument("--d-in", type=int, default=576, help="width of the activations the encoder reads")
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 9; 3 with --quick)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    B, F, k = args.batch, args.d_sae, args.k
    m, cap = k * B, math.ceil(k * B / F)

    acts = make_acts(B, args.d_in, F, args.device)
    flat, cap_F = acts.reshape(-1), torch.full((F,), cap, device=acts.device)
    identity = check_identity(acts, k)
    contenders = {
        "mc": lambda: dispatch.topm_global(acts, m),
        "fc": lambda: dispatch.topm_per_column(acts, cap_F),
        "flat_topk": lambda: flat.topk(m, sorted=False),
        "column_topk": lambda: acts.topk(cap, dim=0, sorted=False),
        "row_topk": lambda: acts.topk(k, dim=1, sorted=False),
    }
    sync = torch.cuda.synchronize if acts.is_cuda else (lambda: None)
    times = interleaved({n: (lambda fn=fn: (fn(), sync())) for n, fn in contenders.items()}, rounds=rounds)
    med = medians(times)

    shape = f"B={B} F={F} k={k} (M={m}, m_f={cap}) fp32 {args.device}"
    print(f"\nSelection, {shape}, {rounds} interleaved rounds (medians)\n")
    rows = [[n, 1e3 * t, med["flat_topk"] / t, 1e3 * min(times[n]), 1e3 * max(times[n])]
            for n, t in sorted(med.items(), key=lambda kv: kv[1])]
    print(format_table(["contender", "median ms", "speed-up vs flat_topk", "min ms", "max ms"], rows))
    targets = [{"contender": n, "versus": "flat_topk", "speedup": speedup(med, n, "flat_topk"),
                "target": TARGET, "met": speedup(med, n, "flat_topk") >= TARGET} for n in ("mc", "fc")]
    targets.append({"contender": "fc", "versus": "column_topk", "speedup": speedup(med, "fc", "column_topk"),
                    "target": None, "met": None})
    print("\nTargets (speed-up = t_versus / t_contender) and identity\n")
    print(format_table(["contender", "versus", "speed-up", "target", "met"],
                       [[t["contender"], t["versus"], t["speedup"], t["target"] or "-",
                         "-" if t["met"] is None else t["met"]] for t in targets]))
    print(f"\nMC pairs == flat torch.topk reference: {identity['mc_equals_flat_topk_reference']} "
          f"({identity['mc_selected']} pairs); FC pairs == per-column torch.topk: "
          f"{identity['fc_equals_column_topk']} ({identity['fc_selected']} pairs)")
    result = {"benchmark": "selection", "shape": {"batch": B, "d_sae": F, "k": k, "m": m, "m_f": cap,
              "d_in": args.d_in, "dtype": "float32", "device": args.device}, "rounds": rounds,
              "quick": args.quick, "median_s": med, "times_s": times, "ratios_time": all_ratios(med),
              "targets": targets, "identity": identity,
              "environment": environment()}
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
