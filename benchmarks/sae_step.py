"""Benchmark: one SAE training step (forward, backward, optimizer step) against peers, on CPU or GPU.

Every contender trains on the same random activations x [B, d] (fixed seed), one full step per call:
  - ``floor``: the bare encoder GEMM forward x @ W_enc + b_enc (no autograd) — the lower bound of a
    step (specs/kernels.md);
  - ``ours_topk`` / ``ours_mc`` / ``ours_fc``: superscope's real ``Trainer.train_step`` (forward, losses,
    backward, decoder-gradient projection, grad clip, Adam, decoder renorm, firing statistics,
    threshold updates) for TopK, Mutual Choice and Feature Choice (uniform capacities);
  - ``ours_matryoshka_batchtopk`` / ``saelens_matryoshka_batchtopk``: Matryoshka-BatchTopK with the
    prefixes F/16, F/8, F/4, F/2, F in both (ours: the prefix losses on the sparse codes, kernels/prefix_losses;
    SAELens: a dense partial decode per level, inner MSE losses added to the outer one);
  - ``ours_jumprelu`` / ``saelens_jumprelu``: JumpReLU as Anthropic trains it (tanh sparsity, c = 4, STE to
    the input, bandwidth 0.5, pre-activation loss 3e-6) — ours in L0-target mode at k, thresholds starting
    at L0 = k (the codes are sparse); SAELens' ``JumpReLUTrainingSAE`` computes the dense [B, F] codes;
  - ``saelens_topk`` / ``saelens_batchtopk``: SAELens 6.x training SAEs stepped like its
    ``SAETrainer._train_step``: ``training_forward_pass`` → firing statistics → ``loss.backward`` →
    grad clip 1.0 → Adam step → zero_grad (+ BatchTopK's threshold update inside the forward pass);
  - ``sparsify_topk``: EleutherAI ``sparsify.SparseCoder`` stepped like its trainer: forward (returns
    the FVU) → backward → remove the decoder-parallel gradient → Adam step → zero_grad → firing
    statistics. On CPU its eager decoder (embedding_bag) is used (SPARSIFY_DISABLE_TRITON=1).
No feature is dead during the measurement (each contender's dead window is far longer than the
run), so no contender computes an auxiliary loss; all use Adam.

Rounds are interleaved (every contender once per round, rotated order) and medians reported; only
ratios from the same run are meaningful. Targets (issue 2): ours TopK ≥ 1.5× sparsify and ≥ 3×
SAELens TopK; ours MC ≥ 3× SAELens BatchTopK; ours FC ≥ 0.7× ours TopK (throughput); issue 15: ours
Matryoshka-BatchTopK ≥ 3× SAELens' (``--only`` picks contenders, e.g. the Matryoshka pair).

    python -m superscope.benchmarks.sae_step --quick --json sae_step.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")  # before sparsify is imported: eager decoder on CPU
# Before torch loads libgomp: idle OpenMP threads sleep instead of spinning. On a shared, oversubscribed
# machine spinning threads burn the time slices their partners need, and every parallel region then
# costs a scheduler slice (ms): that measures the machine's load, not the code. No effect on a quiet
# machine beyond µs wake-ups. Applies to every contender alike; override by exporting the variable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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

# (fast contender, slow contender, minimum speed-up t_slow / t_fast)
TARGETS = [
    ("ours_topk", "sparsify_topk", 1.5),
    ("ours_topk", "saelens_topk", 3.0),
    ("ours_mc", "saelens_batchtopk", 3.0),
    ("ours_matryoshka_batchtopk", "saelens_matryoshka_batchtopk", 3.0),
    ("ours_jumprelu", "saelens_jumprelu", 3.0),
    ("ours_fc", "ours_topk", 0.7),
]


def make_activations(batch: int, d: int, device: str, seed: int = 0) -> torch.Tensor:
    """Gaussian activations with a non-zero mean direction (like a residual stream)."""
    gen = torch.Generator().manual_seed(seed)
    mean_D = 2.0 * torch.randn(d, generator=gen)
    return (torch.randn(batch, d, generator=gen) + mean_D).to(device)


def floor_step(x: torch.Tensor, d_sae: int) -> Callable[[], Any]:
    W_enc = torch.randn(x.shape[1], d_sae, device=x.device) / x.shape[1] ** 0.5
    b_enc = torch.zeros(d_sae, device=x.device)

    def step() -> Any:
        with torch.no_grad():
            return torch.addmm(b_enc, x, W_enc)
    return step


def ours_step(arch: str, x: torch.Tensor, d_sae: int, k: int) -> Callable[[], Any]:
    from superscope.saes import SAEConfig, TrainConfig, Trainer

    B, d = x.shape
    tc = TrainConfig(total_tokens=B * 1_000_000, batch_size=B, progress=False)  # dead window: 10M tokens
    trainer = Trainer(SAEConfig(architecture=arch, d_in=d, d_sae=d_sae, k=k), tc)
    trainer.initialise(x)
    trainer.sae.train()
    return lambda: trainer.train_step(x)


def saelens_step(arch: str, x: torch.Tensor, d_sae: int, k: int) -> Callable[[], Any]:
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    B, d = x.shape
    dev = str(x.device)
    coefficients: dict[str, float] = {}
    if arch == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=d_sae, k=k, device=dev))
    elif arch == "matryoshka_batchtopk":  # the same widths as ours (F/16 … F)
        from sae_lens import MatryoshkaBatchTopKTrainingSAE, MatryoshkaBatchTopKTrainingSAEConfig

        from superscope.saes.config import default_prefixes
        sae = MatryoshkaBatchTopKTrainingSAE(MatryoshkaBatchTopKTrainingSAEConfig(
            d_in=d, d_sae=d_sae, k=k, device=dev, matryoshka_widths=default_prefixes(d_sae)))
    elif arch == "jumprelu":  # Anthropic's recipe, as ours (see the module docstring)
        from sae_lens.saes.jumprelu_sae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig

        sae = JumpReLUTrainingSAE(JumpReLUTrainingSAEConfig(
            d_in=d, d_sae=d_sae, device=dev, jumprelu_sparsity_loss_mode="tanh", jumprelu_tanh_scale=4.0,
            jumprelu_ste_to_input=True, jumprelu_bandwidth=0.5, pre_act_loss_coefficient=3e-6))
        coefficients = {"l0": 1.0}
    else:
        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=d, d_sae=d_sae, k=k, device=dev))
    opt = torch.optim.Adam(sae.parameters(), lr=2e-4, betas=(0.9, 0.999))
    since_fired_F = torch.zeros(d_sae, device=x.device)
    freq_F = torch.zeros(d_sae, device=x.device)
    window = 1000  # SAELens' default dead_feature_window (in steps)

    def step() -> Any:  # SAETrainer._train_step
        sae.train()
        out = sae.training_forward_pass(TrainStepInput(
            sae_in=x, coefficients=coefficients, dead_neuron_mask=(since_fired_F > window).bool(),
            n_training_steps=0, is_logging_step=False))
        with torch.no_grad():
            firing = out.feature_acts.bool().float()
            did_fire = firing.sum(-2).bool()
            since_fired_F.add_(1)
            since_fired_F[did_fire] = 0
            freq_F.add_(firing.sum(0))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        return out.loss.detach()
    return step


def sparsify_step(x: torch.Tensor, d_sae: int, k: int) -> Callable[[], Any]:
    from sparsify import SparseCoder, SparseCoderConfig

    B, d = x.shape
    sae = SparseCoder(d, SparseCoderConfig(k=k, num_latents=d_sae), device=x.device)
    opt = torch.optim.Adam(sae.parameters(), lr=2e-4 / (d_sae / 2**14) ** 0.5)
    since_fired_F = torch.zeros(d_sae, dtype=torch.long, device=x.device)
    dead_threshold = 10_000_000  # sparsify's default dead_feature_threshold (tokens)

    def step() -> Any:  # sparsify Trainer.fit, loss_fn="fvu"
        out = sae(x, dead_mask=since_fired_F > dead_threshold)
        did_fire_F = torch.zeros(d_sae, dtype=torch.bool, device=x.device)
        did_fire_F[out.latent_indices.flatten()] = True
        loss = out.fvu + out.auxk_loss / 32
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            since_fired_F.add_(B)
            since_fired_F[did_fire_F] = 0
        return loss.detach()
    return step


def build_contenders(x: torch.Tensor, d_sae: int, k: int, skip: set[str],
                     only: set[str] = frozenset()) -> dict[str, Callable[[], Any]]:
    makers: dict[str, Callable[[], Callable[[], Any]]] = {
        "floor": lambda: floor_step(x, d_sae),
        "ours_topk": lambda: ours_step("topk", x, d_sae, k),
        "ours_mc": lambda: ours_step("mutual_choice", x, d_sae, k),
        "ours_fc": lambda: ours_step("feature_choice", x, d_sae, k),
        "saelens_topk": lambda: saelens_step("topk", x, d_sae, k),
        "saelens_batchtopk": lambda: saelens_step("batchtopk", x, d_sae, k),
        "ours_jumprelu": lambda: ours_step("jumprelu", x, d_sae, k),
        "saelens_jumprelu": lambda: saelens_step("jumprelu", x, d_sae, k),
        "ours_matryoshka_batchtopk": lambda: ours_step("matryoshka_batchtopk", x, d_sae, k),
        "saelens_matryoshka_batchtopk": lambda: saelens_step("matryoshka_batchtopk", x, d_sae, k),
        "sparsify_topk": lambda: sparsify_step(x, d_sae, k),
    }
    return {name: make() for name, make in makers.items() if name not in skip and (not only or name in only)}


def target_rows(med: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for fast, slow, minimum in TARGETS:
        if fast in med and slow in med:
            value = speedup(med, fast, slow)
            rows.append({"contender": fast, "versus": slow, "speedup": value, "target": minimum,
                         "met": value >= minimum})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds and B=2048 (< 1 minute)")
    p.add_argument("--json", help="write all figures and ratios to this JSON file")
    p.add_argument("--d-in", type=int, default=576)
    p.add_argument("--d-sae", type=int, default=4608)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=None, help="tokens per step (default 4096; 2048 with --quick)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 7; 2 with --quick)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--skip", default="", help="comma-separated contenders to leave out")
    p.add_argument("--only", default="", help="comma-separated contenders to run (default: all)")
    args = p.parse_args(argv)
    batch = args.batch or (2048 if args.quick else 4096)
    rounds = args.rounds or (2 if args.quick else 7)

    torch.manual_seed(0)
    x = make_activations(batch, args.d_in, args.device)
    contenders = build_contenders(x, args.d_sae, args.k, {s for s in args.skip.split(",") if s},
                                  {s for s in args.only.split(",") if s})
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    timed = {name: (lambda fn=fn: (fn(), sync())) for name, fn in contenders.items()}
    times = interleaved(timed, rounds=rounds, warmup=1)
    med = medians(times)

    floor = med.get("floor")
    rows = [[name, 1e3 * t, batch / t, t / floor if floor else float("nan"), 1e3 * min(times[name]),
             1e3 * max(times[name])] for name, t in sorted(med.items(), key=lambda kv: kv[1])]
    shape = f"d={args.d_in} F={args.d_sae} k={args.k} B={batch} fp32 {args.device}"
    print(f"\nSAE training step, {shape}, {rounds} interleaved rounds (medians)\n")
    print(format_table(["contender", "median ms", "tokens/s", "× floor", "min ms", "max ms"], rows))
    targets = target_rows(med)
    print("\nTargets (speed-up = t_versus / t_contender)\n")
    print(format_table(["contender", "versus", "speed-up", "target", "met"],
                       [[r["contender"], r["versus"], r["speedup"], r["target"], r["met"]] for r in targets]))
    command = "python -m superscope.benchmarks.sae_step " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {"benchmark": "sae_step", "command": command.strip(), "shape": {"d_in": args.d_in, "d_sae": args.d_sae, "k": args.k,
              "batch": batch, "dtype": "float32", "device": args.device}, "rounds": rounds,
              "quick": args.quick, "median_s": med, "times_s": times, "ratios_time": all_ratios(med),
              "tokens_per_s": {n: batch / t for n, t in med.items()}, "targets": targets,
              "environment": environment()}
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
