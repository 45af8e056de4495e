"""Training recipe for the reachability models: Coconut with its multi-stage curriculum, CoT, No-CoT.

Coconut (Hao et al. 2024, Sec. 3; Zhu et al. 2025, Sec. 5): stage = epoch // epochs_per_stage, capped
at hops_max. A sample at stage s uses k = min(s, hops) continuous thoughts; with probability p_mix
k is instead drawn uniformly from 0..min(s, hops) (revisiting earlier stages). The optimizer is
reset when the stage changes (Coconut's `reset_optimizer`). CoT and No-CoT get the same model, the
same problems, epochs, batch size and optimizer ("the same budget").
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from superscope.probes.bfs.batches import sequence_loss
from superscope.probes.bfs.checkpoint import save_checkpoint
from superscope.probes.bfs.evaluate import accuracy
from superscope.probes.bfs.generator import GraphConfig, generate_problems, make_splits
from superscope.probes.bfs.model import GPT, ModelConfig, pick_device
from superscope.probes.bfs.tokens import Vocab


@dataclass
class TrainConfig:
    """One training run (defaults: the small CPU configuration; see TrainConfig.gpu())."""

    method: Literal["coconut", "cot", "nocot"] = "coconut"
    """Continuous thoughts, a written-out path, or the answer directly."""
    supervision: Literal["shortest_path", "bfs"] = "shortest_path"
    """Coconut stage target: a node on a shortest path, or any frontier node (the "BFS" variant)."""
    d_model: int = 128
    """Residual width (paper: 768)."""
    n_heads: int = 4
    """Attention heads (paper: 8)."""
    n_layers: int = 2
    """Transformer blocks (paper: 2)."""
    d_mlp: int = 512
    """MLP width (GPT-2: 4 × d_model)."""
    n_train: int = 6000
    """Training problems (edges and candidates are reshuffled every epoch)."""
    n_valid: int = 500
    """Validation problems (best epoch is kept)."""
    n_test: int = 2000
    """Held-out test problems, drawn from a seed the training never sees."""
    epochs: int = 20
    """Total epochs."""
    epochs_per_stage: int = 2
    """Coconut: epochs per curriculum stage (stage = epoch // epochs_per_stage)."""
    p_mix: float = 0.1
    """Coconut: probability of training a sample at a uniformly drawn earlier stage."""
    reset_optimizer: bool = True
    """Coconut: fresh AdamW state at every stage change."""
    batch_size: int = 64
    """Problems per optimizer step."""
    lr: float = 1e-3
    """AdamW learning rate (constant after warmup)."""
    warmup_steps: int = 100
    """Linear warmup steps (after every optimizer reset too)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    seed: int = 0
    """Seeds the splits, the initialisation and the shuffles."""
    quick_eval_seed: int = 12345
    """Seed of the small fixed evaluation set recorded in the checkpoint (checked by the tests)."""
    quick_eval_n: int = 200
    """Size of that set."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where to train."""
    threads: int = 2
    """torch CPU threads (the shared machine has 2 cores)."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.epochs_per_stage < 1:
            raise ValueError("epochs and epochs_per_stage must be >= 1")
        if not 0.0 <= self.p_mix <= 1.0:
            raise ValueError("p_mix must lie in [0, 1]")
        if min(self.n_train, self.n_valid, self.batch_size) < 1:
            raise ValueError("n_train, n_valid and batch_size must be >= 1")

    @staticmethod
    def gpu() -> "TrainConfig":
        """The paper's size (2 layers, 8 heads, d_model 768) on CUDA with more data and epochs."""
        return TrainConfig(d_model=768, n_heads=8, d_mlp=3072, n_train=20000, epochs=40,
                           epochs_per_stage=5, lr=1e-4, batch_size=128, device="cuda")


def stage_for_epoch(epoch: int, cfg: TrainConfig, graph: GraphConfig) -> int:
    """Coconut curriculum stage; the last stage (hops_max) is kept until the end."""
    return min(epoch // cfg.epochs_per_stage, graph.hops_max)


def sample_thoughts(hops: list[int], stage: int, p_mix: float, rng: np.random.Generator) -> list[int]:
    """k = min(stage, hops) per sample, or with probability p_mix a uniform draw from 0..that."""
    ks = []
    for h in hops:
        top = min(stage, h)
        ks.append(int(rng.integers(0, top + 1)) if rng.random() < p_mix else top)
    return ks


def model_config(cfg: TrainConfig, graph: GraphConfig) -> ModelConfig:
    vocab = Vocab(graph.n_node_tokens)
    max_len = 3 * graph.max_edges + 8 + 2 * graph.hops_max + 4
    return ModelConfig(vocab_size=vocab.size, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                       d_model=cfg.d_model, d_mlp=cfg.d_mlp, max_len=max_len)


@dataclass
class TrainOutcome:
    model: GPT
    metrics: dict
    log: list[dict] = field(default_factory=list)


def _make_optimizer(model: GPT, cfg: TrainConfig):
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(cfg.warmup_steps, 1)))
    return opt, sched


def _batch_loss(model, probs, cfg, vocab, stage, rng):
    ks = sample_thoughts([p.hops for p in probs], stage, cfg.p_mix, rng) if cfg.method == "coconut" else [0] * len(probs)
    return sequence_loss(model, probs, ks, cfg.method, cfg.supervision, vocab, rng)


def train(cfg: TrainConfig, graph: GraphConfig, progress: bool = True) -> TrainOutcome:
    """Train one model; returns the best-validation model and its metrics (test set included)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    dev = pick_device(cfg.device)
    vocab = Vocab(graph.n_node_tokens)
    splits = make_splits(graph, cfg.n_train, cfg.n_valid, cfg.n_test, cfg.seed)
    model = GPT(model_config(cfg, graph)).to(dev)
    opt, sched = _make_optimizer(model, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    best, best_acc, log, stage = None, -1.0, [], -1
    for epoch in range(cfg.epochs):
        new_stage = stage_for_epoch(epoch, cfg, graph) if cfg.method == "coconut" else 0
        if new_stage != stage and stage >= 0 and cfg.reset_optimizer:
            opt, sched = _make_optimizer(model, cfg)
        stage = new_stage
        order = rng.permutation(cfg.n_train)
        bar = tqdm(range(0, cfg.n_train, cfg.batch_size), desc=f"{cfg.method} epoch {epoch} stage {stage}",
                   disable=not progress, leave=False)
        losses = []
        model.train()
        for i in bar:
            probs = [splits["train"][j] for j in order[i : i + cfg.batch_size]]
            loss = _batch_loss(model, probs, cfg, vocab, stage, rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        val = accuracy(model, splits["valid"], vocab, cfg.method).accuracy
        row = {"epoch": epoch, "stage": stage, "loss": float(np.mean(losses)), "valid_acc": val,
               "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        log.append(row)
        if progress:
            tqdm.write(f"epoch {epoch:3d} stage {stage} loss {row['loss']:.4f} valid {val:.3f} "
                       f"wall {row['wall_s']:.0f}s cpu {row['cpu_s']:.0f}s")
        final_stage = cfg.method != "coconut" or stage == graph.hops_max
        if final_stage and val >= best_acc:
            best_acc, best = val, copy.deepcopy(model.state_dict())
    model.load_state_dict(best if best is not None else model.state_dict())
    model.eval()
    metrics = _final_metrics(model, splits, cfg, graph, vocab)
    metrics.update(train_wall_s=time.perf_counter() - t0, train_cpu_s=time.process_time() - c0)
    return TrainOutcome(model=model, metrics=metrics, log=log)


def _final_metrics(model, splits, cfg: TrainConfig, graph: GraphConfig, vocab: Vocab) -> dict:
    quick = generate_problems(graph, cfg.quick_eval_n, cfg.quick_eval_seed)
    return {
        "valid": accuracy(model, splits["valid"], vocab, cfg.method).to_dict(),
        "test": accuracy(model, splits["test"], vocab, cfg.method).to_dict(),
        "quick_eval": {"seed": cfg.quick_eval_seed, "n": cfg.quick_eval_n,
                       "accuracy": accuracy(model, quick, vocab, cfg.method).accuracy},
    }


def train_and_save(cfg: TrainConfig, graph: GraphConfig, out: str | Path, progress: bool = True) -> TrainOutcome:
    """Train, then write `<out>.safetensors` + `<out>.json` atomically (weights on CPU)."""
    outcome = train(cfg, graph, progress)
    meta = {"train": asdict(cfg), "metrics": outcome.metrics, "log": outcome.log,
            "torch": torch.__version__}
    save_checkpoint(out, outcome.model, graph, cfg.method, meta)
    return outcome


def with_overrides(cfg: TrainConfig, **kw) -> TrainConfig:
    """Copy of cfg with the given (non-None) fields replaced."""
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None})
