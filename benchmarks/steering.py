"""Benchmark: the cost of steering on the embedded model (superscope.interventions).

1. Generation: one greedy generation of N tokens (default 32, KV cache, no early EOS) with edits at the
   main hook against the same generation unsteered, timed in interleaved rounds (median); the ratio
   steered / unsteered is the figure (target ≤ 1.5). Two edits are timed: ``add`` (no encode) and
   ``scale`` (a full SAE encode of every new token).
2. Dose-response: 8 values of one ``add`` edit on 64 held-out contexts (truncated to 32 tokens), the
   values batched along the batch (``dose_response``), one clean forward per chunk (target ≤ 60 s on
   2 cores).

The SAE is the run's (``--run``) when given, else an untrained TopK of the run's shape (576 → 4608,
k = 32) — timings do not depend on training. Contexts are the run's held-out contexts, else contexts of
the embedded corpus.

    python -m superscope.benchmarks.steering --quick --json benchmarks/results/steering_quick.json
    python -m superscope.benchmarks.steering --run runs/default --json benchmarks/results/steering.json
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superscope.benchmarks._timing import environment, format_table, medians, write_json

HOOK = "blocks.15.hook_resid_post"


def load_inputs(args: argparse.Namespace) -> tuple[Any, Any, torch.Tensor]:
    from superscope.activations import load_activations, load_model
    from superscope.activations.corpus import iter_contexts
    from superscope.saes import SAEConfig, create_sae, load_sae

    model = load_model()
    folder = Path(args.run) / "saes" / args.hook / args.arch if args.run else None
    if folder is not None and (folder / "sae.safetensors").is_file():
        sae = load_sae(folder).eval()
    else:
        sae = create_sae(SAEConfig(architecture=args.arch, d_in=576, d_sae=4608, k=32, hook_name=args.hook)).eval()
    held = Path(args.run) / "heldout" / args.hook if args.run else None
    if held is not None and (held / "manifest.json").is_file():
        contexts = load_activations(held).contexts()[: args.contexts]
    else:
        it = iter_contexts(model.tokenizer, None, args.context_len, seed=0)
        contexts = torch.from_numpy(np.stack(list(itertools.islice(it, args.contexts)))).long()
    return model, sae, contexts


def timed_rounds(contenders: dict[str, Any], rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds (this process; steadier on a shared machine) per call, contenders in rotated
    order each round (as ``_timing.interleaved``), after one warm-up round."""
    names = list(contenders)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds + 1):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            contenders[name]()
            if r:
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def generation(model: Any, sae: Any, args: argparse.Namespace) -> dict[str, Any]:
    from superscope.interventions import Edit
    from superscope.interventions.generation import continue_tokens
    from superscope.interventions.steering import Steering

    tokens = model.to_tokens(args.prompt)
    gen_args = (args.new_tokens, True, 0, 1.0, None, False)
    latent = int(sae.W_dec.norm(dim=1).argmax())
    edits = {"add": [Edit(args.hook, latent, "add", 8.0)], "scale": [Edit(args.hook, latent, "scale", 4.0)]}

    def steered(name: str):
        def run() -> None:
            with Steering(model, sae, edits[name], check=False):
                continue_tokens(model, tokens, *gen_args)
        return run

    contenders = {"unsteered": lambda: continue_tokens(model, tokens, *gen_args),
                  **{f"steered ({name})": steered(name) for name in edits}}
    times, cpu = timed_rounds(contenders, args.rounds)
    med, med_cpu = medians(times), medians(cpu)
    return {"new_tokens": args.new_tokens, "prompt_tokens": int(tokens.shape[1]), "rounds": args.rounds,
            "median_s": med, "times_s": times, "median_cpu_s": med_cpu, "cpu_s": cpu,
            "ratio": {name: med[name] / med["unsteered"] for name in med if name != "unsteered"},
            "ratio_cpu": {name: med_cpu[name] / med_cpu["unsteered"] for name in med if name != "unsteered"}}


def sweep(model: Any, sae: Any, contexts: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    from superscope.interventions import Edit, dose_response

    latent = int(sae.W_dec.norm(dim=1).argmax())
    values = [float(v) for v in np.linspace(0, 28, args.values)]
    start, start_cpu = time.perf_counter(), time.process_time()
    dr = dose_response(model, sae, Edit(args.hook, latent, "add", 0.0), values, contexts,
                       context_len=args.sweep_len, max_rows=args.max_rows)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {"values": len(values), "contexts": int(contexts.shape[0]), "context_len": args.sweep_len,
            "max_rows": args.max_rows, "seconds": seconds, "cpu_seconds": cpu,
            "cpu_seconds_per_thread": cpu / torch.get_num_threads(),
            "tokens_forwarded": int(contexts.shape[0] * min(args.sweep_len, contexts.shape[1]) * (len(values) + 1)),
            "kl": list(dr.kl), "logit_delta": list(dr.logit_delta)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a run of under a minute (2 rounds, 16 contexts)")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--run", help="run folder to take the SAE and held-out contexts from (e.g. runs/default)")
    p.add_argument("--hook", default=HOOK)
    p.add_argument("--arch", default="topk")
    p.add_argument("--prompt", default="The history of the Python language began")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, help="interleaved timing rounds (median reported)")
    p.add_argument("--values", type=int, default=8, help="α values of the sweep")
    p.add_argument("--contexts", type=int, help="held-out contexts of the sweep")
    p.add_argument("--context-len", type=int, default=128, help="corpus contexts' length when there is no run")
    p.add_argument("--sweep-len", type=int, default=32, help="tokens of each context the sweep uses")
    p.add_argument("--max-rows", type=int, default=32, help="rows (contexts × values) per forward")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads of the sweep (its target is on 2 cores)")
    p.add_argument("--gen-threads", type=int, default=1,
                   help="torch threads of the generation timing (1-token forwards: a second spinning thread only "
                        "adds contention on a shared machine)")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.contexts = args.contexts or (16 if args.quick else 64)
    started = time.perf_counter()
    model, sae, contexts = load_inputs(args)
    result: dict[str, Any] = {"quick": args.quick, "hook": args.hook, "arch": sae.cfg.architecture,
                              "sae_from_run": bool(args.run), "command": "python -m superscope.benchmarks.steering "
                              + " ".join(argv if argv is not None else sys.argv[1:])}
    torch.set_num_threads(args.gen_threads)
    result["generation"] = {**generation(model, sae, args), "environment": environment()}
    torch.set_num_threads(args.threads)
    result["sweep"] = {**sweep(model, sae, contexts, args), "environment": environment()}
    result["wall_s"] = time.perf_counter() - started
    report(result)
    if args.json:
        write_json(args.json, result)
    return result


def report(result: dict[str, Any]) -> None:
    g, s = result["generation"], result["sweep"]
    print(f"\ngreedy generation of {g['new_tokens']} tokens at {result['hook']} ({result['arch']}), median of "
          f"{g['rounds']} rounds")
    rows = [[name, t, g["ratio"].get(name, 1.0), g["median_cpu_s"][name], g["ratio_cpu"].get(name, 1.0)]
            for name, t in g["median_s"].items()]
    print(format_table(["", "wall s", "× unsteered", "CPU s", "× unsteered (CPU)"], rows))
    print(f"\ndose-response: {s['values']} values × {s['contexts']} contexts × {s['context_len']} tokens: "
          f"{s['seconds']:.1f} s wall, {s['cpu_seconds']:.1f} CPU-s ({s['cpu_seconds_per_thread']:.1f} per thread; "
          f"{s['tokens_forwarded']} tokens forwarded)")
    print(f"wall time {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
