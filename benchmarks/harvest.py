"""Benchmark: harvest throughput against peers, and harvest peak memory.

Throughput (tokens/s on the same contexts, same batch size, same process, rounds interleaved so
machine noise hits every method alike; the median over rounds is reported):
  - superscope ``harvest`` at one hook (end to end: tokenising the corpus, the early-stopped bridge
    forward, row extraction), in memory and with shards written to disk;
  - the bare Hugging Face model run to the same depth (a forward hook on ``layers[L]`` stops it), with
    eager attention (what the bridge uses, needed for attention hooks) and with SDPA (HF's default);
  - TransformerLens ``run_with_cache`` (full forward, whole cache).
Targets: harvest ≥ 0.85× the bare HF forward; faster than ``run_with_cache``.

Also tokens per CPU-second of the process: on a shared machine other jobs stretch the wall clock, not
our CPU time, so the CPU ratios are the steadier comparison.

Peak memory: ``harvest`` of N tokens at one hook with shards on disk, each in a fresh subprocess, as
the process' peak RSS (VmHWM), at two token counts that both span at least one full shard; the growth
per token between them is extrapolated to 1M tokens (target < 2 GiB). With --quick the counts are
small, the hook is blocks.0 (memory does not depend on depth; the forward is 13× cheaper) and the 1M
figure is an extrapolation; say so when quoting it.

    python -m superscope.benchmarks.harvest --quick --json out.json
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

GIB = 2**30


class _Stop(Exception):
    pass


def hf_forward_to(hf_model: Any, layer: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Bare HF forward of the base model that stops after decoder layer ``layer`` (returns its output)."""
    out: dict[str, torch.Tensor] = {}

    def stop(module: Any, args: Any, output: Any) -> None:
        out["h"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    def run(tokens: torch.Tensor) -> torch.Tensor:
        handle = hf_model.model.layers[layer].register_forward_hook(stop)
        try:
            with torch.inference_mode():
                hf_model.model(tokens, use_cache=False)
        except _Stop:
            pass
        finally:
            handle.remove()
        return out.pop("h")

    return run


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    from superscope.activations.corpus import iter_contexts
    from superscope.activations.harvesting import harvest
    from superscope.activations.hooks import hook_layer
    from superscope.activations.models import _load_gguf, embedded_gguf_path, load_model

    model = load_model()
    layer = hook_layer(args.hook)
    n_ctx = args.tokens // args.context_len
    n_tokens = n_ctx * args.context_len
    contexts = list(itertools.islice(iter_contexts(model.tokenizer, None, args.context_len, seed=0), n_ctx))
    batches = [torch.from_numpy(np.stack(contexts[i:i + args.batch_size])) for i in range(0, n_ctx, args.batch_size)]
    hf_eager, _ = _load_gguf(embedded_gguf_path(), torch.float32)
    hf_eager.eval()
    hf_sdpa = copy.deepcopy(hf_eager)
    hf_sdpa.set_attn_implementation("sdpa")
    eager_run, sdpa_run = hf_forward_to(hf_eager, layer), hf_forward_to(hf_sdpa, layer)

    def run_cache() -> None:
        for b in batches:
            with torch.inference_mode():
                model.run_with_cache(b)

    tmp = Path(tempfile.mkdtemp(prefix="harvest-bench-"))
    counter = iter(range(10**6))
    methods: dict[str, Callable[[], Any]] = {
        "harvest (memory)": lambda: harvest(model, [args.hook], n_tokens, batch_size=args.batch_size,
                                            context_len=args.context_len, progress=False),
        "harvest (shards on disk)": lambda: harvest(model, [args.hook], n_tokens, batch_size=args.batch_size,
                                                    context_len=args.context_len, progress=False,
                                                    out_dir=tmp / str(next(counter))),
        "HF forward to layer (eager attn)": lambda: [eager_run(b) for b in batches],
        "HF forward to layer (sdpa attn)": lambda: [sdpa_run(b) for b in batches],
        "TL run_with_cache (full)": run_cache,
    }
    # same activations: harvest vs the bare HF forward (the bridge keeps raw HF weights)
    ours = harvest(model, [args.hook], n_tokens, batch_size=args.batch_size, context_len=args.context_len,
                   progress=False)[args.hook]
    bos = model.tokenizer.bos_token_id
    ref = torch.cat([eager_run(b)[b != bos] for b in batches])
    max_diff = float((torch.cat(list(ours.batches(4096, shuffle=False))) - ref).abs().max())
    for fn in methods.values() if args.warmup else ():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in methods}
    cpu: dict[str, list[float]] = {k: [] for k in methods}
    try:
        for _ in range(args.rounds):
            for name, fn in methods.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"hook": args.hook, "layer": layer, "tokens": n_tokens, "batch_size": args.batch_size,
            "context_len": args.context_len, "rounds": args.rounds, "threads": torch.get_num_threads(),
            "tokens_per_s": {k: n_tokens / statistics.median(v) for k, v in wall.items()},
            "tokens_per_cpu_s": {k: n_tokens / statistics.median(v) for k, v in cpu.items()},
            "wall_s": wall, "cpu_s": cpu, "max_abs_diff_vs_hf_eager": max_diff}


# Peak RSS = VmHWM of /proc/self/status (ru_maxrss would include the forked parent's pages on Linux).
# A thread samples it with the harvest's progress (positions in complete shards, from the manifest).
_MEMORY_CHILD = """
import json, os, resource, shutil, sys, tempfile, threading, time, torch
def peak():
    try:
        return int([l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]) * 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
torch.set_num_threads({threads})
from superscope.activations.models import load_model
from superscope.activations.harvesting import harvest
model = load_model()
after_load, out, samples, done = peak(), tempfile.mkdtemp(), [], threading.Event()
def sample():
    while not done.wait(0.2):
        try:
            m = json.load(open(os.path.join(out, {hook!r}, "manifest.json")))
            samples.append((sum(s["n_contexts"] for s in m["shards"]) * m["context_len"], peak()))
        except (OSError, ValueError, KeyError):
            pass
threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
src = harvest(model, [{hook!r}], {n}, batch_size={bs}, context_len={cl}, out_dir=out, progress=False)[{hook!r}]
seconds = time.perf_counter() - start
done.set()
samples.append((src.meta["n_contexts"] * src.meta["context_len"], peak()))
print(json.dumps({{"after_load": after_load, "peak": peak(), "rows": src.n_tokens, "samples": samples,
                   "shards": len(src.meta["shards"]), "seconds": seconds}}))
shutil.rmtree(out)
"""


def memory(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of a fresh process that loads the model and harvests ``--mem-tokens`` to disk; the growth
    per token is the slope of the peak over the second half of the run (after allocator warm-up)."""
    code = _MEMORY_CHILD.format(threads=torch.get_num_threads(), hook=args.mem_hook, n=args.mem_tokens,
                                bs=args.batch_size, cl=args.context_len)
    # cwd outside the repository: its root folders (kernels/, …) must not shadow installed packages
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=tempfile.gettempdir())
    if done.returncode:
        raise RuntimeError(f"memory subprocess failed:\n{done.stderr[-2000:]}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    by_pos: dict[int, int] = {}
    for pos, peak in run.pop("samples"):
        by_pos[pos] = max(peak, by_pos.get(pos, 0))
    positions = max(by_pos)
    late = sorted((p, v) for p, v in by_pos.items() if p >= positions / 2)
    slope = float(np.polyfit(*zip(*late), 1)[0]) if len(late) >= 2 else 0.0
    growth = max(0.0, slope)
    target = 1_000_000
    return {"hook": args.mem_hook, "tokens": positions, **run, "curve": sorted(by_pos.items()),
            "growth_bytes_per_token": growth, "peak_1M_bytes": run["peak"] + growth * max(0, target - positions),
            "peak_1M_is_extrapolated": positions < target}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a run of under a minute (small token counts)")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--hook", default="blocks.12.hook_resid_post", help="hook to harvest")
    p.add_argument("--tokens", type=int, help="tokens per throughput measurement")
    p.add_argument("--rounds", type=int, help="interleaved timing rounds (median reported)")
    p.add_argument("--batch-size", type=int, default=8, help="contexts per forward pass (all methods)")
    p.add_argument("--context-len", type=int, default=128)
    p.add_argument("--mem-tokens", type=int, help="tokens harvested in the memory run")
    p.add_argument("--mem-hook", help="hook of the memory runs (default: --hook; blocks.0 with --quick, for speed: "
                                      "the harvest's memory does not depend on depth)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: per-core figures, stable on a shared machine; "
                        "0 = torch's choice)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false")
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args(argv)
    args.tokens = args.tokens or (1024 if args.quick else 8192)
    args.rounds = args.rounds or (2 if args.quick else 5)
    # several full shards (~29k tokens each at d=576, float32), so the slope is past the first shard
    args.mem_tokens = args.mem_tokens or (65_536 if args.quick else 262_144)
    args.mem_hook = args.mem_hook or ("blocks.0.hook_resid_post" if args.quick else args.hook)
    if args.quick:
        args.warmup = False
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    result: dict[str, Any] = {"quick": args.quick, "throughput": throughput(args)}
    if not args.skip_memory:
        result["memory"] = memory(args)
    result["wall_s"] = time.perf_counter() - started
    report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(result: dict[str, Any]) -> None:
    t = result["throughput"]
    print(f"\nharvest throughput at {t['hook']} (forward stops after block {t['layer']}), {t['tokens']} tokens, "
          f"batch {t['batch_size']}×{t['context_len']}, {t['threads']} threads, median of {t['rounds']} rounds")
    print("tokens/s by wall clock, and per CPU-second of this process (steadier on a shared machine)")
    print(f"{'method':34s} {'tok/s':>7s} {'×eager':>7s} {'×sdpa':>6s} | {'tok/cpu-s':>9s} {'×eager':>7s} {'×sdpa':>6s}")
    wall, cpu = t["tokens_per_s"], t["tokens_per_cpu_s"]
    eager, sdpa = "HF forward to layer (eager attn)", "HF forward to layer (sdpa attn)"
    for name in wall:
        print(f"{name:34s} {wall[name]:7.0f} {wall[name] / wall[eager]:7.2f} {wall[name] / wall[sdpa]:6.2f} | "
              f"{cpu[name]:9.0f} {cpu[name] / cpu[eager]:7.2f} {cpu[name] / cpu[sdpa]:6.2f}")
    cache = "TL run_with_cache (full)"
    print(f"harvest vs run_with_cache: {wall['harvest (memory)'] / wall[cache]:.1f}× faster (wall), "
          f"{cpu['harvest (memory)'] / cpu[cache]:.1f}× (cpu); max |harvest − HF| = {t['max_abs_diff_vs_hf_eager']:.2e}")
    if "memory" in result:
        m = result["memory"]
        print(f"peak RSS harvesting {m['tokens']} tokens at {m['hook']} to disk ({m['shards']} shards, "
              f"{m['seconds']:.0f} s): {m['peak'] / GIB:.2f} GiB (after model load {m['after_load'] / GIB:.2f} GiB)")
        tag = "extrapolated" if m["peak_1M_is_extrapolated"] else "measured"
        print(f"growth over the 2nd half {m['growth_bytes_per_token']:.1f} B/token → peak for 1M tokens "
              f"{m['peak_1M_bytes'] / GIB:.2f} GiB ({tag}; target < 2 GiB)")
    print(f"wall time {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
