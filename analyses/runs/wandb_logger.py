"""Optional experiment tracking: the trainer's log records (the lines of train_log.jsonl) sent to
Weights & Biases as well, as SAELens and sparsify users are used to.

wandb is an optional extra (``pip install 'superscope[wandb]'``), imported only when a logger is
made; without it ``--wandb`` stops with one line saying how to install it. With no network use
``WANDB_MODE=offline`` (runs are written under ``dir``/wandb and can be synced later with
``wandb sync``). The trainer knows nothing of wandb: it calls ``Trainer(callbacks=[logger])`` with each
record, and ``saes/`` never imports this module.

    superscope train --activations … --wandb                     # one W&B run for the SAE
    superscope run --wandb --wandb-project superscope            # one W&B run per SAE, grouped by run folder
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

MISSING = "--wandb needs the wandb package: pip install 'superscope[wandb]' (or run without --wandb)"


def require_wandb():
    """The ``wandb`` module, or ImportError with the one line that says how to get it."""
    try:
        import wandb
    except ImportError:
        raise ImportError(MISSING) from None
    return wandb


class WandbLogger:
    """A trainer callback: ``logger(record)`` logs one train_log.jsonl record (its "step" as the W&B step)
    to a W&B run started on construction; ``finish()`` closes the run."""

    def __init__(self, project: str, name: str, config: dict[str, Any] | None = None, group: str | None = None,
                 dir: str | Path | None = None, mode: str | None = None):
        wandb = require_wandb()
        if dir is not None:
            Path(dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=name, group=group, config=config or {},
                              dir=str(dir) if dir is not None else None, mode=mode, reinit="create_new")
        self.logged = 0

    def __call__(self, record: dict[str, Any]) -> None:
        values = {k: v for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
        self.run.log(values, step=int(record["step"]) if "step" in record else None)
        self.logged += 1

    def finish(self) -> None:
        self.run.finish()


def logger_factory(project: str, group: str | None, dir: str | Path | None,
                   mode: str | None = None) -> Callable[[str, dict[str, Any]], WandbLogger]:
    """``make(name, config)`` → a ``WandbLogger`` in ``project`` (checks wandb is installed right away,
    so a missing package stops the command before any work)."""
    require_wandb()

    def make(name: str, config: dict[str, Any]) -> WandbLogger:
        return WandbLogger(project, name, config=config, group=group, dir=dir, mode=mode)
    return make
