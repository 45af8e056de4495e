"""Benchmark: probe throughput on precomputed SAE codes (F = 4608 features, k = 32 active per token).

Contenders, each streaming the same batches of codes once per call:
  - ``entropy_dense`` / ``entropy_sparse``: ``effective_features_from_codes`` on dense codes
    [B, 4608] (~32 non-zeros per row) / on sparse (rows, cols, vals) triples, with the bootstrap;
  - ``entropy_naive``: the plain per-batch ``z.abs().sum(0)`` a first implementation would use
    (and the reference code's ``np.mean(np.abs(acts), axis=0)``), no bootstrap — the peer;
  - ``graph_dense`` / ``graph_sparse``: ``function_token_graph_from_codes`` (streaming bipartite graph
    plus its summary metrics) on (token_ids [B], codes) pairs, Zipf-distributed token ids;
  - ``graph_naive``: per batch ``(z > 0).nonzero()`` → keys token·F + feature → ``torch.unique``,
    merged at the end — the peer.
Target (issue 5): ≥ 200k tokens/s for entropy and graph on dense codes. Rounds are interleaved and
medians reported; only ratios from the same run are meaningful (the machine is shared). Wall-clock
throughput on a shared machine falls with its load, so the table also gives tokens per CPU-second
of this process (all its threads, best of 2 extra calls), which other processes affect far less.

    python -m superscope.benchmarks.probes --quick --json probes.json
"""

from __future__ import annotations

import argparse
import time

import torch

from superscope.benchmarks._timing import (
    all_ratios,
    environment,
    format_table,
    interleaved,
    medians,
    write_json,
)
from superscope.probes.function_tokens import function_token_graph_from_codes
from superscope.probes.superposition_entropy import effective_features_from_codes

F, K, B, VOCAB = 4608, 32, 4096, 49152
TARGET = 200_000


def make_codes(n_batches: int, seed: int = 0, distinct: int = 4) -> tuple[list, list, list]:
    """Dense codes, the same codes as sparse triples, and Zipf token ids, per batch.

    Only `distinct` batches are generated (a dense batch is 75 MB) and the stream cycles through them;
    token ids are fresh per batch so the graph keeps growing as on a real corpus."""
    gen = torch.Generator().manual_seed(seed)
    zipf = 1.0 / torch.arange(1, VOCAB + 1, dtype=torch.float64)
    dense, sparse = [], []
    for _ in range(min(distinct, n_batches)):
        cols = torch.rand(B, F, generator=gen).topk(K, dim=1).indices  # K distinct features per token
        vals = torch.rand(B, K, generator=gen) + 0.01
        dense.append(torch.zeros(B, F).scatter_(1, cols, vals))
        rows = torch.arange(B).repeat_interleave(K)
        sparse.append((rows, cols.reshape(-1), vals.reshape(-1), B))
    tokens = [torch.multinomial(zipf, B, replacement=True, generator=gen) for _ in range(n_batches)]
    cycle = [i % len(dense) for i in range(n_batches)]
    return [dense[i] for i in cycle], [sparse[i] for i in cycle], tokens


def naive_entropy(dense: list) -> float:
    mass = sum(z.abs().sum(0).double() for z in dense)
    p = mass / mass.sum()
    return float(torch.exp(-torch.special.xlogy(p, p).sum()))


def naive_graph(dense: list, tokens: list) -> int:
    keys = []
    for z, tok in zip(dense, tokens):
        r, c = (z > 0).nonzero(as_tuple=True)
        keys.append(torch.unique(tok[r] * F + c))
    return int(torch.unique(torch.cat(keys)).numel())


def _cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="probe throughput on precomputed codes")
    parser.add_argument("--quick", action="store_true", help="a run of under a minute")
    parser.add_argument("--batches", type=int, default=None, help=f"batches of {B} tokens per call")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", type=str, default=None, help="write results here")
    args = parser.parse_args(argv)
    n_batches = args.batches or (12 if args.quick else 48)
    rounds = args.rounds or (3 if args.quick else 5)
    dense, sparse, tokens = make_codes(n_batches)
    n_tokens = n_batches * B
    contenders = {
        "entropy_dense": lambda: effective_features_from_codes(dense, F, 576),
        "entropy_sparse": lambda: effective_features_from_codes(sparse, F, 576),
        "entropy_naive": lambda: naive_entropy(dense),
        "graph_dense": lambda: function_token_graph_from_codes(zip(tokens, dense), F),
        "graph_sparse": lambda: function_token_graph_from_codes(zip(tokens, sparse), F),
        "graph_naive": lambda: naive_graph(dense, tokens),
    }
    med = medians(interleaved(contenders, rounds))
    tps = {name: n_tokens / t for name, t in med.items()}
    cpu = {name: n_tokens / min(_cpu_seconds(fn) for _ in range(2)) for name, fn in contenders.items()}
    rows = [[name, f"{tps[name]:,.0f}", f"{tps[name] / TARGET:.2f}", f"{cpu[name]:,.0f}",
             f"{med[name.split('_')[0] + '_naive'] / med[name]:.2f}"] for name in contenders]
    print(f"{n_tokens} tokens per call, F={F}, k={K}, B={B}, median of {rounds} rounds, "
          f"load {environment()['load_avg_1m']:.1f}")
    print(format_table(["contender", "tokens/s (wall)", f"÷ target {TARGET:,}", "tokens/CPU-s", "× naive peer"], rows))
    if args.json:
        write_json(args.json, {"tokens_per_call": n_tokens, "F": F, "k": K, "B": B, "rounds": rounds,
                               "seconds": med, "tokens_per_s": tps, "tokens_per_cpu_s": cpu, "ratios": all_ratios(med),
                               "target_tokens_per_s": TARGET, "environment": environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
