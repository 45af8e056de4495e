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
from superscope.probes.bfs.checkpoint import save_bfs_checkpoint
from superscope.probes.bfs.evaluate import accuracy
from superscope.probes.bfs.generator import GraphConfig, generate_problems, make_splits
from superscope.probes.bfs.model import GPT, ModelConfig, pick_device
from superscope.probes.bfs.tokens import Vocab


@dataclass
class BFSTrainConfig:
    """One training run (defaults: the small CPU configuration; see BFSTrainConfig.gpu())."""

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
    d_mlp: int = 256
    """MLP width (GPT-2: 4 × d_model; the CPU default halves it, attention does the search)."""
    thought_gain: float = 0.02
    """Initial learned scale of a thought fed back (ModelConfig.thought_gain; 1.0 = plain Coconut)."""
    positions: Literal["learned", "rotary"] = "rotary"
    """Position encoding; rotary on CPU (learned absolute positions plateau far longer), GPT-2's on GPU."""
    n_train: int = 10000
    """Training problems per epoch (edges and candidates are reshuffled every epoch)."""
    fresh_train: bool = True
    """Draw a new training set every epoch (the generator costs ~2 CPU-s per 10k problems), so the
    model never sees a problem twice and cannot over-fit; False reuses one set for all epochs."""
    n_valid: int = 500
    """Validation problems (best epoch is kept)."""
    n_test: int = 2000
    """Held-out test problems, drawn from a seed the training never sees."""
    epochs: int = 34
    """Total epochs."""
    stage0_epochs: int = 5
    """Coconut: epochs of stage 0 (no thoughts: the written path, i.e. CoT) before the first thought."""
    epochs_per_stage: int = 3
    """Coconut: epochs per later stage (stage = 1 + (epoch − stage0_epochs) // epochs_per_stage)."""
    p_mix: float = 0.1
    """Coconut: probability of training a sample at a uniformly drawn earlier stage."""
    reset_optimizer: bool = True
    """Coconut: fresh AdamW state at every stage change."""
    batch_size: int = 64
    """Problems per optimizer step."""
    lr: float = 2e-3
    """AdamW peak learning rate (after warmup; constant until the final decay)."""
    beta2: float = 0.98
    """AdamW second-moment decay."""
    warmup_steps: int = 50
    """Linear warmup steps (after every optimizer reset too)."""
    decay_epochs: int = 20
    """The learning rate falls linearly to 0 over the last decay_epochs epochs (0: constant; the
    default spans the whole last Coconut stage)."""
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
    bf16: bool = True
    """Run matmuls under bfloat16 autocast while training (≈1.5× faster on CPUs with avx512_bf16)."""
    threads: int = 1
    """torch CPU threads (1: on a busy 2-core machine a second thread mostly spins; measured 0.06 vs 0.77 s CPU/step)."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.epochs_per_stage < 1 or self.stage0_epochs < 0:
            raise ValueError("epochs and epochs_per_stage must be >= 1, stage0_epochs >= 0")
        if not 0.0 <= self.p_mix <= 1.0:
            raise ValueError("p_mix must lie in [0, 1]")
        if min(self.n_train, self.n_valid, self.batch_size) < 1:
            raise ValueError("n_train, n_valid and batch_size must be >= 1")
        if self.decay_epochs < 0:
            raise ValueError("decay_epochs must be >= 0 (0: constant learning rate)")
        if not self.thought_gain > 0:
            raise ValueError("thought_gain must be > 0 (1.0 feeds thoughts back unscaled)")

    @staticmethod
    def gpu() -> BFSTrainConfig:
        """The paper's size (2 layers, 8 heads, d_model 768) on CUDA with more data and epochs."""
        return BFSTrainConfig(d_model=768, n_heads=8, d_mlp=3072, positions="learned", n_train=20000, epochs=60,
                           stage0_epochs=20, epochs_per_stage=5, decay_epochs=25, lr=1e-4, beta2=0.999, batch_size=128,
                           device="cuda", threads=4, bf16=False)


def stage_for_epoch(epoch: int, cfg: BFSTrainConfig, graph: GraphConfig) -> int:
    """Coconut curriculum stage: 0 for stage0_epochs, then +1 every epochs_per_stage, capped at hops_max."""
    if epoch < cfg.stage0_epochs:
        return 0
    return min(1 + (epoch - cfg.stage0_epochs) // cfg.epochs_per_stage, graph.hops_max)


def sample_thoughts(hops: list[int], stage: int, p_mix: float, rng: np.random.Generator) -> list[int]:
    """k = min(stage, hops) per sample, or with probability p_mix a uniform draw from 0..that."""
    ks = []
    for h in hops:
        top = min(stage, h)
        ks.append(int(rng.integers(0, top + 1)) if rng.random() < p_mix else top)
    return ks


def model_config(cfg: BFSTrainConfig, graph: GraphConfig) -> ModelConfig:
    vocab = Vocab(graph.n_node_tokens)
    max_len = 3 * graph.max_edges + 8 + 2 * graph.hops_max + 4
    return ModelConfig(vocab_size=vocab.size, n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_model=cfg.d_model,
                       d_mlp=cfg.d_mlp, max_len=max_len, positions=cfg.positions, thought_gain=cfg.thought_gain)


@dataclass
class TrainOutcome:
    model: GPT
    metrics: dict
    log: list[dict] = field(default_factory=list)


def lr_factor(cfg: BFSTrainConfig, step_since_reset: int, epoch_progress: float) -> float:
    """Multiplier of cfg.lr: linear warmup after each optimizer reset, times the final linear decay.

    epoch_progress is the fractional epoch (epoch + batch / batches); the decay runs from
    epochs − decay_epochs (factor 1) to epochs (factor 0); decay_epochs > epochs decays from the start.
    """
    warm = min(1.0, (step_since_reset + 1) / max(cfg.warmup_steps, 1))
    if cfg.decay_epochs <= 0:
        return warm
    span = min(cfg.decay_epochs, cfg.epochs)
    return warm * min(1.0, max(0.0, (cfg.epochs - epoch_progress) / span))


def _make_optimizer(model: GPT, cfg: BFSTrainConfig):
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay)
    return opt, {"step": 0}


def _batch_loss(model, probs, cfg, vocab, stage, rng):
    hops = [p.hops for p in probs]
    ks = sample_thoughts(hops, stage, cfg.p_mix, rng) if cfg.method == "coconut" else [0] * len(probs)
    return sequence_loss(model, probs, ks, cfg.method, cfg.supervision, vocab, rng)


def _run_epoch(model, opt, sched, train_set, cfg, vocab, stage, rng, epoch: int, desc: str, progress: bool) -> float:
    """One pass over the (reshuffled) training problems; returns the mean loss."""
    order = rng.permutation(len(train_set))
    bar = tqdm(range(0, len(train_set), cfg.batch_size), desc=desc, disable=not progress, leave=False)
    losses = []
    model.train()
    device_type = next(model.parameters()).device.type
    n_batches = len(bar)
    for b, i in enumerate(bar):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg, sched["step"], epoch + b / n_batches)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = _batch_loss(model, [train_set[j] for j in order[i : i + cfg.batch_size]], cfg, vocab, stage, rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched["step"] += 1
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return float(np.mean(losses))


def train_set(epoch: int, splits: dict, cfg: BFSTrainConfig, graph: GraphConfig) -> list:
    """The epoch's training problems: the fixed split, or (fresh_train, epoch > 0) a new draw.

    Epoch e's seed is child 3 + e of SeedSequence(cfg.seed); children 0-2 seed the train/valid/test
    splits (make_splits), so fresh sets never reuse the valid or test seeds.
    """
    if not cfg.fresh_train or epoch == 0:
        return splits["train"]
    child = np.random.SeedSequence(cfg.seed).spawn(3 + epoch + 1)[3 + epoch]
    return generate_problems(graph, cfg.n_train, int(child.generate_state(1)[0]))


def _validate(model, valid, cfg: BFSTrainConfig, vocab: Vocab, stage: int) -> dict:
    """Accuracy with the method's protocol; at Coconut stage 0 also the CoT (greedy path) accuracy."""
    row = {"valid_acc": accuracy(model, valid, vocab, cfg.method).accuracy}
    if cfg.method == "coconut" and stage == 0:
        row["valid_cot_acc"] = accuracy(model, valid, vocab, "cot").accuracy
    return row


def train_bfs(cfg: BFSTrainConfig, graph: GraphConfig, progress: bool = True, on_best=None) -> TrainOutcome:
    """Train one model; returns the best-validation model (at the last stage) and its metrics.

    `on_best(model, log)` is called whenever the validation accuracy at the last stage improves
    (train_and_save uses it to write the checkpoint as training goes).
    """
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    vocab = Vocab(graph.n_node_tokens)
    splits = make_splits(graph, cfg.n_train, cfg.n_valid, cfg.n_test, cfg.seed)
    model = GPT(model_config(cfg, graph)).to(pick_device(cfg.device))
    opt, sched = _make_optimizer(model, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    best, best_acc, log, stage = None, -1.0, [], -1
    for epoch in range(cfg.epochs):
        new_stage = stage_for_epoch(epoch, cfg, graph) if cfg.method == "coconut" else 0
        if new_stage != stage and stage >= 0 and cfg.reset_optimizer:
            opt, sched = _make_optimizer(model, cfg)
        stage = new_stage
        loss = _run_epoch(model, opt, sched, train_set(epoch, splits, cfg, graph), cfg, vocab, stage, rng, epoch,
                          f"{cfg.method} epoch {epoch} stage {stage}", progress)
        row = {"epoch": epoch, "stage": stage, "loss": loss, **_validate(model, splits["valid"], cfg, vocab, stage),
               "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        log.append(row)
        if progress:
            tqdm.write(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        if (cfg.method != "coconut" or stage == graph.hops_max) and row["valid_acc"] >= best_acc:
            best_acc, best = row["valid_acc"], copy.deepcopy(model.state_dict())
            if on_best is not None:
                on_best(model, log)
    if best is not None:
        model.load_state_dict(best)
    model.eval()
    metrics = _final_metrics(model, splits, cfg, graph, vocab)
    metrics.update(train_wall_s=time.perf_counter() - t0, train_cpu_s=time.process_time() - c0)
    return TrainOutcome(model=model, metrics=metrics, log=log)


def _final_metrics(model, splits, cfg: BFSTrainConfig, graph: GraphConfig, vocab: Vocab) -> dict:
    quick = generate_problems(graph, cfg.quick_eval_n, cfg.quick_eval_seed)
    return {
        "valid": accuracy(model, splits["valid"], vocab, cfg.method).to_dict(),
        "test": accuracy(model, splits["test"], vocab, cfg.method).to_dict(),
        "quick_eval": {"seed": cfg.quick_eval_seed, "n": cfg.quick_eval_n,
                       "accuracy": accuracy(model, quick, vocab, cfg.method).accuracy},
    }


def train_and_save(cfg: BFSTrainConfig, graph: GraphConfig, out: str | Path, progress: bool = True) -> TrainOutcome:
    """Train, writing `<out>.safetensors` + `<out>.json` atomically at every new best and at the end."""

    def on_best(model, log):
        save_bfs_checkpoint(out, model, graph, cfg.method, {"train": asdict(cfg), "log": log, "metrics": {},
                                                         "status": "training"})

    outcome = train_bfs(cfg, graph, progress, on_best)
    meta = {"train": asdict(cfg), "metrics": outcome.metrics, "log": outcome.log, "torch": torch.__version__,
            "status": "done"}
    save_bfs_checkpoint(out, outcome.model, graph, cfg.method, meta)
    return outcome


def with_overrides(cfg: BFSTrainConfig, **kw) -> BFSTrainConfig:
    """Copy of cfg with the given (non-None) fields replaced."""
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None})
