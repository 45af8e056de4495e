"""SAE trainer: any iterable of activation batches → a trained SAE (+ run folder when given one).

The loop is a sequence of named steps: initialise → (restore) → for each batch: train_step → log →
checkpoint → finish. Resume replays the (deterministic) batch stream and skips the batches already
consumed, so a resumed run ends with the same weights as an uninterrupted one (tested).
Writes into ``out_dir``: cfg.json, sae.safetensors, train_log.jsonl, checkpoints/.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from superscope.kernels.threads import all_threads, small_ops_serial

from .atomic_io import append_jsonl, read_jsonl, write_json
from .base import BaseSAE, ForwardOutput
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import SAEConfig, TrainConfig
from .init import geometric_median, input_scale_for
from .losses import aux_zipf_loss, auxk_loss, normalized_mse, reconstruction_loss
from .persistence import create_sae, save_sae
from .schedule import default_lr, default_warmup, lr_factor
from .stats import dead_mask, default_dead_tokens, update_firing_stats

LOG_FILE = "train_log.jsonl"


class Trainer:
    """Holds the SAE, optimizer and counters of one training run."""

    def __init__(self, cfg: SAEConfig, train_cfg: TrainConfig, out_dir: str | Path | None = None,
                 callbacks: Sequence[Callable[[dict], None]] = ()):
        self.cfg, self.tc = dataclasses.replace(cfg), train_cfg
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks)
        # each is called with every log record (a train_log.jsonl line), e.g. an experiment tracker's logger
        self.sae: BaseSAE | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.step, self.tokens_seen = 0, 0
        self.base_lr = train_cfg.lr or default_lr(cfg.d_sae, train_cfg.total_steps)
        self.warmup = train_cfg.warmup_steps or default_warmup(train_cfg.total_steps)
        self.k_aux = train_cfg.k_aux or max(1, cfg.d_in // 2)
        self.dead_tokens = train_cfg.dead_tokens or default_dead_tokens(train_cfg.batch_size, train_cfg.total_tokens)

    # ---- named steps --------------------------------------------------------------------------
    def make_optimizer(self, sae: BaseSAE) -> torch.optim.Optimizer:
        # The fused Adam kernel (one pass per tensor instead of ~12 foreach passes) where available:
        # the same update, ~8× faster on CPU; it differs from the foreach kernel only in rounding.
        fused = all(p.device.type in ("cpu", "cuda") for p in sae.parameters())
        return torch.optim.Adam(sae.parameters(), lr=self.base_lr, betas=self.tc.adam_betas, fused=fused or None)

    def initialise(self, first_batch: Tensor) -> None:
        """Seeded init, input scale (E‖s·x‖² = d) and geometric-median b_dec of the first batch."""
        create_sae(self.cfg).check_input(first_batch)  # shape, dtype, NaN/Inf: before any statistic
        self.cfg.input_scale = input_scale_for(first_batch)
        self.cfg.training = self.tc.to_dict()
        sae = create_sae(self.cfg)
        sae.reset_parameters(self.tc.seed)
        with torch.no_grad():
            sae.b_dec.copy_(geometric_median(first_batch.to(sae.b_dec.dtype) * self.cfg.input_scale))
        self.sae, self.opt = sae.to(first_batch.device), None
        if (init_from_batch := getattr(sae, "init_from_batch", None)) is not None:  # a variant's data-dependent init
            init_from_batch(first_batch.to(device=sae.b_dec.device, dtype=sae.b_dec.dtype) * self.cfg.input_scale)
        self.opt = self.make_optimizer(self.sae)

    def restore(self) -> bool:
        """Load the newest checkpoint in out_dir, if any; drop log lines written after it."""
        if self.out_dir is None:
            return False
        remove_write_debris(self.out_dir)
        if (target := latest_checkpoint(self.out_dir)) is None:
            return False
        self.sae, self.opt, state = load_checkpoint(target, self.make_optimizer)
        self.cfg = self.sae.cfg
        self.step, self.tokens_seen = state["step"], state["tokens_seen"]
        self.trim_log()
        return True

    def trim_log(self) -> None:
        """Drop log lines written after the restored checkpoint (and a torn last line)."""
        log = self.out_dir / LOG_FILE
        kept = [r for r in read_jsonl(log) if r.get("step", 0) <= self.step]
        log.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def aux_loss(self, out) -> Tensor:
        sae, tc = self.sae, self.tc
        dead = dead_mask(sae, self.dead_tokens)
        if tc.aux_loss == "auxk":
            return auxk_loss(sae, out, dead, self.k_aux)
        if tc.aux_loss == "zipf":
            return aux_zipf_loss(sae, out, sae.freq_ema_F, dead, self.k_aux, tc.zipf_gamma, tc.zipf_s)
        return out.x_hat_scaled.new_zeros(())

    def penalty(self, out: ForwardOutput) -> Tensor:
        """The variant's own loss terms, added to L: ``sae.penalty(out, dead_F)`` where the variant has one
        (JumpReLU: sparsity and pre-activation losses, a per-token mean — under DDP the mean of the ranks'
        means, the global mean when the ranks hold equal rows); zero for the others."""
        own = getattr(self.sae, "penalty", None)
        if own is None:
            return out.x_hat_scaled.new_zeros(())
        return own(out, dead_mask(self.sae, self.dead_tokens))

    # Overridable hooks: the single-process versions below; saes/distributed.py replaces them to run
    # this rank's slice of the batch through DDP and to reduce losses and statistics across ranks.
    def forward(self, x: Tensor) -> ForwardOutput:
        """The SAE's forward pass on batch ``x``."""
        return self.sae(x)

    def losses(self, out: ForwardOutput) -> tuple[Tensor, Tensor]:
        """(L_rec, L_aux) of the batch; their gradients are what the optimizer steps on. L_rec is the FVU, or
        Σ_l w_l·FVU_l over a Matryoshka SAE's prefixes (``losses.reconstruction_loss``)."""
        return reconstruction_loss(self.sae, out), self.aux_loss(out)

    def mean_over_ranks(self, values: Tensor) -> Tensor:
        """Loss figures of the whole batch (the identity in one process)."""
        return values

    def gather_rows(self, values_B: Tensor) -> Tensor:
        """Per-token values of the whole batch (the identity in one process)."""
        return values_B

    def update_statistics(self, out: ForwardOutput) -> None:
        """Firing statistics (dead / frequency) and the variant's learned inference state."""
        update_firing_stats(self.sae, out, self.tc.freq_ema)
        self.sae.after_step(out, self.sae.cfg.threshold_ema)

    def optimizer_step(self, loss: Tensor) -> float:
        """Backward, decoder-gradient projection, clip, scheduled lr, Adam step, decoder renorm; returns the lr."""
        sae, opt, tc = self.sae, self.opt, self.tc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_parallel_decoder_grad()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), tc.grad_clip)
        lr = self.base_lr * lr_factor(self.step, tc.total_steps, self.warmup, tc.decay_fraction)
        for group in opt.param_groups:
            group["lr"] = lr
        with all_threads(sum(p.numel() for p in sae.parameters())):
            opt.step()
        sae.normalize_decoder()
        return lr

    def train_step(self, x: Tensor) -> dict[str, float]:
        # Small ops on one thread, the heavy kernels on all (kernels/threads.py): a step is dozens of
        # small ops, and on an oversubscribed CPU each parallel region waits for a descheduled worker.
        # enable_grad: a data generator that yields inside torch.no_grad() (a common pattern for
        # harvesting) suspends with grad mode off, and the step would build no graph.
        with small_ops_serial(), torch.enable_grad():
            out = self.forward(x)
            l_rec, l_aux = self.losses(out)
            loss = l_rec + self.tc.aux_coef * l_aux + self.penalty(out)
            # the logged FVU is the full reconstruction's; a Matryoshka L_rec sums its prefixes' (logged as rec)
            # (under DDP the Matryoshka FVU is the mean of the ranks' own FVUs, a close approximation)
            nested = bool(self.sae.cfg.matryoshka_prefixes)
            fvu = normalized_mse(out.x_scaled, out.x_hat_scaled) if nested else l_rec
            figures = self.mean_over_ranks(torch.stack([loss, fvu, l_aux, l_rec]).detach())
            if not torch.isfinite(figures[0]):
                raise FloatingPointError(f"loss became {float(figures[0])} at step {self.step}; lower the lr (last checkpoint is kept)")
            lr = self.optimizer_step(loss)
            self.update_statistics(out)
            self.step += 1
            self.tokens_seen += x.shape[0]
            l0 = self.gather_rows(out.codes.l0_per_row()).float()
            return {"loss": float(figures[0]), "fvu": float(figures[1]), "aux": float(figures[2]), "l0": float(l0.mean()),
                    "l0_std": float(l0.std()) if l0.numel() > 1 else 0.0, "lr": lr,
                    "dead_frac": float(dead_mask(self.sae, self.dead_tokens).float().mean()),
                    **({"rec": float(figures[3])} if nested else {})}

    def log(self, metrics: dict[str, float], started: float) -> None:
        if (self.out_dir is None and not self.callbacks) or self.step % self.tc.log_every:
            return
        record = {"step": self.step, "tokens": self.tokens_seen, **metrics,
                  "tokens_per_s": self.tokens_seen / max(1e-9, time.perf_counter() - started)}
        if self.out_dir is not None:
            append_jsonl(self.out_dir / LOG_FILE, record)
        for callback in self.callbacks:
            callback(record)

    def maybe_checkpoint(self, prev_tokens: int) -> None:
        every = self.tc.checkpoint_every_tokens
        if self.out_dir is None or every <= 0 or self.tokens_seen // every == prev_tokens // every:
            return
        save_checkpoint(self.out_dir, self.sae, self.opt, {"step": self.step, "tokens_seen": self.tokens_seen,
                                                           "train_cfg": self.tc.to_dict()})

    @torch.no_grad()
    def calibrate_thresholds(self, last_batch: Tensor | None) -> None:
        """θ (MC) / θ_f (FC) from the final weights: the variant's ``after_step`` statistic (smallest
        selected code; m_f-th largest of column f) on the last training batch, with EMA decay 0.
        specs/saes.md learns θ as an EMA over training, which trails the weights by ~1/(1 − decay) steps."""
        if not self.tc.calibrate_thresholds or last_batch is None:
            return
        self.sae.train()  # batch selection, as during training
        with small_ops_serial():
            self.sae.after_step(self.sae(last_batch.to(self.sae.W_enc.device)), 0.0)

    def finish(self, last_batch: Tensor | None = None) -> BaseSAE:
        self.calibrate_thresholds(last_batch)
        self.sae.eval()
        if self.out_dir is not None:
            save_sae(self.sae, self.out_dir)
            write_json(self.out_dir / "train_state.json", {"step": self.step, "tokens_seen": self.tokens_seen, "done": True})
        return self.sae

    def move_to(self, device: torch.device) -> None:
        """Move the SAE and the optimizer state (fused Adam keeps its step counters beside the params)."""
        self.sae.to(device)
        for state in self.opt.state.values():
            for name, value in state.items():
                if torch.is_tensor(value):
                    state[name] = value.to(device)

    # ---- the loop -----------------------------------------------------------------------------
    def run(self, batches: Iterable[Tensor], resume: bool = True) -> BaseSAE:
        stream: Iterator[Tensor] = iter(batches)
        resumed = resume and self.restore()
        x: Tensor | None = None
        if resumed:
            for _ in range(self.step):
                x = next(stream)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=self.tc.total_tokens, initial=self.tokens_seen, unit="tok", unit_scale=True,
                   disable=not self.tc.progress, desc=f"train {self.cfg.architecture}")
        started = time.perf_counter()
        if self.sae is not None:
            self.sae.train()
        while self.tokens_seen < self.tc.total_tokens:
            batch = next(stream, None)
            if batch is None:
                break
            x = batch
            if self.sae is None:
                self.initialise(x)
                self.sae.train()
            elif self.sae.W_enc.device != x.device:
                self.move_to(x.device)  # a checkpoint restores on the CPU
            prev = self.tokens_seen
            metrics = self.train_step(x)
            self.log(metrics, started)
            self.maybe_checkpoint(prev)
            bar.update(self.tokens_seen - prev)
            bar.set_postfix(fvu=f"{metrics['fvu']:.3f}", l0=f"{metrics['l0']:.1f}", refresh=False)
        bar.close()
        if self.sae is None:
            raise ValueError("the activation stream yielded no batches: nothing to train on")
        return self.finish(x)


def remove_write_debris(out_dir: Path) -> None:
    """Delete the temp files (``.<name>.<random>.tmp``, see atomic_io) a killed run's writes left behind."""
    for tmp in [*out_dir.glob(".*.tmp"), *(out_dir / "checkpoints").rglob(".*.tmp")]:
        tmp.unlink(missing_ok=True)


def train(cfg: SAEConfig, batches: Iterable[Tensor], train_cfg: TrainConfig | None = None,
          out_dir: str | Path | None = None, resume: bool = True,
          callbacks: Sequence[Callable[[dict], None]] = ()) -> BaseSAE:
    """Train an SAE of ``cfg`` on ``batches`` (float tensors [B, d_in]); see ``Trainer``. Each of
    ``callbacks`` gets every log record (the train_log.jsonl lines, also without an ``out_dir``)."""
    return Trainer(cfg, train_cfg or TrainConfig(), out_dir, callbacks).run(batches, resume=resume)
