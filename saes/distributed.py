"""Data-parallel SAE training with torchrun + torch.distributed (DDP; gloo on CPU, NCCL on GPU).

    torchrun --nproc_per_node=2 -m superscope.analyses.cli.torchrun_train --arch topk mutual_choice \\
        --activations runs/r/activations/blocks.6.hook_resid_post --out runs/r/saes/blocks.6.hook_resid_post

What a step computes is the single-process step on the same GLOBAL batch (tested: weights agree to
floating-point noise):

- Data. Every rank reads the same deterministic stream of global batches [B, d] and trains on its
  contiguous slice ``x.tensor_split(W)[rank]``. Reading the whole batch costs B·d per rank, small next
  to the step's (B/W)·d·F; in exchange the global batch, the resume point (batches consumed = step)
  and the checkpoints do not depend on W, so a run resumes on any world size.
- Selection. TopK is per token, so local. Mutual Choice / BatchTopK / Feature Choice select over the
  global batch (``global_selection.py``: all_reduce of a threshold bound, all_gather of candidates).
- Losses. L_rec = Σ‖x − x̂‖² / Σ‖x − x̄‖² (and the AuxK residual loss) have a denominator over the
  whole batch: each rank scales its loss by W·spread_local / spread_global (two small all_reduces),
  so DDP's gradient average equals the gradient of the global loss.
- Statistics. Per feature, the count of positive codes and their smallest value are all_reduced
  (SUM / MIN); a summary of those is fed to the unchanged ``update_firing_stats`` and ``after_step``
  (dead features, firing-frequency EMA, θ of MC and θ_f of FC need nothing else).
- Files. Rank 0 alone writes the log, checkpoints and the final SAE (atomically, ``checkpoint.py``);
  all ranks read the checkpoint on resume, so ``out`` must be on a filesystem every node sees.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from superscope.kernels import SparseCodes

from .base import BaseSAE, ForwardOutput
from .config import SAEConfig, TrainConfig
from .global_selection import GlobalBatch, global_rule
from .trainer import Trainer


class DistributedTrainer(Trainer):
    """``Trainer`` whose steps run data-parallel over the default (or given) process group."""

    def __init__(self, cfg: SAEConfig, train_cfg: TrainConfig, out_dir: str | Path | None = None,
                 group: dist.ProcessGroup | None = None, device: str | torch.device | None = None):
        if not dist.is_initialized():
            raise RuntimeError("DistributedTrainer needs torch.distributed: launch with torchrun "
                               "(see docs/distributed.md) or call torch.distributed.init_process_group first")
        self.batch = GlobalBatch(group)
        self.rank, self.world = self.batch.rank, self.batch.world
        if train_cfg.batch_size < self.world:
            raise ValueError(f"batch_size {train_cfg.batch_size} is the global batch; it must be at least the "
                             f"world size {self.world}")
        if self.rank != 0:
            train_cfg = dataclasses.replace(train_cfg, progress=False)
        super().__init__(cfg, train_cfg, out_dir)
        self.device = torch.device(device) if device is not None else default_device()
        self.rule = global_rule(cfg.architecture)
        self.ddp: DistributedDataParallel | None = None

    # ---- set-up: every rank builds the same SAE, then DDP wraps it -------------------------------
    def make_optimizer(self, sae: BaseSAE) -> torch.optim.Optimizer:
        return super().make_optimizer(sae.to(self.device))  # restored optimizer state follows the params

    def initialise(self, first_batch: Tensor) -> None:
        super().initialise(first_batch.to(self.device))  # the GLOBAL first batch: same init on every rank
        self._wrap()

    def restore(self) -> bool:
        resumed = super().restore()
        if resumed:
            self._wrap()
        return resumed

    def _wrap(self) -> None:
        sae = self.sae
        if self.rule is not None:  # instance attribute: this SAE selects over the global batch while training
            sae.select = functools.partial(self._select, sae)
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = DistributedDataParallel(sae, device_ids=ids, **_NO_BUFFER_SYNC)

    def _select(self, sae: BaseSAE, xc_BD: Tensor):
        if not sae.training:
            return type(sae).select(sae, xc_BD)
        return self.rule(self.batch, sae, xc_BD)

    # ---- the step hooks --------------------------------------------------------------------------
    def forward(self, x: Tensor) -> ForwardOutput:
        if x.shape[0] < self.world:
            raise ValueError(f"a batch of {x.shape[0]} rows cannot be split over {self.world} ranks")
        self.batch.n_rows = x.shape[0]
        return self.ddp(x.tensor_split(self.world)[self.rank].to(self.device))

    def losses(self, out: ForwardOutput) -> tuple[Tensor, Tensor]:
        l_rec, l_aux = super().losses(out)
        x_BD, resid_BD = out.x_scaled.detach(), (out.x_scaled - out.x_hat_scaled).detach()
        local = torch.stack([_spread(x_BD), _spread(resid_BD)]).double()
        scale = (self.world * local / self._global_spread(x_BD, resid_BD)).to(l_rec.dtype)
        # 0·Σθ: every parameter takes part in every backward, as DDP's reducer requires (a rank whose
        # rows win no Mutual/Feature Choice selection would otherwise give W_enc no gradient).
        touch = sum(0.0 * p.sum() for p in self.sae.parameters())
        return l_rec * scale[0] + touch, l_aux * scale[1]

    def _global_spread(self, *xs_BD: Tensor) -> Tensor:
        """Σ_b ‖x_b − x̄‖² over the global batch for each input (float64)."""
        sums = torch.cat([*(x.double().sum(0) for x in xs_BD), xs_BD[0].new_tensor([xs_BD[0].shape[0]], dtype=torch.float64)])
        dist.all_reduce(sums, group=self.batch.group)
        d = xs_BD[0].shape[1]
        means = [sums[i * d:(i + 1) * d] / sums[-1] for i in range(len(xs_BD))]
        spread = torch.stack([(x.double() - m).pow(2).sum() for x, m in zip(xs_BD, means)])
        dist.all_reduce(spread, group=self.batch.group)
        return spread.clamp_min(1e-12)

    def mean_over_ranks(self, values: Tensor) -> Tensor:
        total = values.double()
        dist.all_reduce(total, group=self.batch.group)
        return (total / self.world).to(values.dtype)

    def gather_rows(self, values_B: Tensor) -> Tensor:
        return self.batch.gather_ragged(values_B)[0][0]

    def update_statistics(self, out: ForwardOutput) -> None:
        codes = out.codes
        values_N = codes.values_N.detach()
        fired = values_N > 0
        cols_N, F = codes.cols_N[fired], codes.n_features
        count_F = torch.bincount(cols_N, minlength=F)
        min_F = torch.full((F,), torch.inf, device=values_N.device).scatter_reduce(0, cols_N, values_N[fired].float(), "amin")
        dist.all_reduce(count_F, group=self.batch.group)
        dist.all_reduce(min_F, op=dist.ReduceOp.MIN, group=self.batch.group)
        summary = summary_codes(count_F, min_F.to(values_N.dtype), self.batch.n_rows)
        super().update_statistics(out._replace(codes=summary))

    # ---- files: rank 0 only ----------------------------------------------------------------------
    def trim_log(self) -> None:
        if self.rank == 0:
            super().trim_log()

    def log(self, metrics: dict[str, float], started: float) -> None:
        if self.rank == 0:
            super().log(metrics, started)

    def maybe_checkpoint(self, prev_tokens: int) -> None:
        if self.rank == 0:
            super().maybe_checkpoint(prev_tokens)

    def finish(self, last_batch: Tensor | None = None) -> BaseSAE:
        self.sae.__dict__.pop("select", None)  # back to the class's (batch-local) selection
        self.ddp = None
        # every rank holds the same GLOBAL last batch, so calibration gives every rank one process's θ
        if self.rank == 0:
            return super().finish(last_batch)
        self.calibrate_thresholds(last_batch)
        self.sae.eval()
        return self.sae


# Buffers (statistics, θ) stay equal on all ranks by construction (same init, reduced updates), so DDP
# need not broadcast them at every forward; the keyword was renamed in torch 2.13.
_NO_BUFFER_SYNC = ({"forward_sync_buffers": False}
                   if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
                   else {"broadcast_buffers": False})


def summary_codes(count_F: Tensor, min_F: Tensor, n_rows: int) -> SparseCodes:
    """Codes with count_F[f] entries of value min_F[f] in column f, over n_rows rows: they have the
    global batch's per-feature fire counts and smallest positive codes, all the statistics read."""
    F = count_F.numel()
    cols_N = torch.repeat_interleave(torch.arange(F, device=count_F.device), count_F)
    crow_B1 = torch.full((n_rows + 1,), cols_N.numel(), dtype=torch.int64, device=count_F.device)
    crow_B1[0] = 0
    return SparseCodes(crow_B1, cols_N, min_F[cols_N], F)


def _spread(x_BD: Tensor) -> Tensor:
    """Σ‖x − x̄‖² over the local rows, exactly as ``normalized_mse`` computes its denominator."""
    return (x_BD - x_BD.mean(0, keepdim=True)).pow(2).sum().clamp_min(1e-12)


def default_device() -> torch.device:
    """cuda:LOCAL_RANK when the NCCL backend is in use, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def train_distributed(cfg: SAEConfig, batches: Iterable[Tensor], train_cfg: TrainConfig | None = None,
                      out_dir: str | Path | None = None, resume: bool = True) -> BaseSAE:
    """``train`` over all ranks of the default process group (a plain ``Trainer`` in one process).
    ``batches`` must be the same stream of GLOBAL batches on every rank."""
    tc = train_cfg or TrainConfig()
    if dist.is_initialized() and dist.get_world_size() > 1:
        return DistributedTrainer(cfg, tc, out_dir).run(batches, resume=resume)
    return Trainer(cfg, tc, out_dir).run(batches, resume=resume)
