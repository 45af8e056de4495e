"""One forward pass that records activations at several hooks and stops once the last one fired.

Every requested hook saves its tensor; the hook that completes the set raises the bridge's own
``StopAtLayerException``, which ``TransformerBridge.forward`` catches (it is how ``stop_at_layer``
works). So the forward runs exactly as deep as the deepest requested hook — including hooks inside
a block (``blocks.5.hook_resid_mid`` skips block 5's MLP) and hooks on the last block, which
``stop_at_layer`` cannot stop after (it would still run the final norm and the 49k-wide unembedding).
No logits are computed (``return_type=None``) and no KV cache is built (``use_cache=False``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens.model_bridge.exceptions import StopAtLayerException

__all__ = ["Capture", "hook_shapes", "run_hooks"]


class Capture:
    """Hooks installed once (``with Capture(model, hooks) as cap``); ``cap.run(tokens)`` is one forward.

    Installing hooks through the bridge rebuilds its alias map, so a harvest installs them once for
    all its batches rather than once per batch."""

    def __init__(self, model: Any, hooks: list[str]):
        self.model, self.hooks = model, list(hooks)
        self._acts: dict[str, Tensor] = {}
        self._context: Any = None

    def _save(self, tensor: Tensor, hook: Any, name: str) -> None:
        self._acts[name] = tensor.detach().clone()  # clone: later layers may update buffers in place
        if len(self._acts) == len(self.hooks):
            raise StopAtLayerException(tensor)

    def __enter__(self) -> Capture:  # noqa: PYI034  (Self needs Python 3.11)
        fwd_hooks = [(name, functools.partial(self._save, name=name)) for name in self.hooks]
        self._context = self.model.hooks(fwd_hooks=fwd_hooks)
        self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)

    def run(self, tokens: Int[Tensor, "batch pos"]) -> dict[str, Tensor]:
        """Activations ``{hook: [batch, pos, ...]}`` (detached copies on the model's device)."""
        self._acts = {}
        with torch.inference_mode():
            self.model(tokens.to(self.model.cfg.device), return_type=None, use_cache=False)
        acts, self._acts = self._acts, {}
        missing = [h for h in self.hooks if h not in acts]
        if missing:
            raise RuntimeError(f"hooks {missing} did not fire during the forward pass; they are not on the "
                               "path of a plain forward for this model")
        return acts


def run_hooks(model: Any, tokens: Int[Tensor, "batch pos"], hooks: list[str]) -> dict[str, Tensor]:
    """Activations ``{hook: [batch, pos, ...]}`` of one early-stopped forward. ``hooks`` must be valid
    names (see ``validate_hooks``)."""
    with Capture(model, hooks) as cap:
        return cap.run(tokens)


def hook_shapes(model: Any, hooks: list[str], token: int) -> dict[str, tuple[int, ...]]:
    """Trailing shape of each hook's activation per position (e.g. ``(576,)``; ``(9, 64)`` for a
    per-head hook), from a forward of 7 tokens. Rejects hooks not shaped ``[batch, pos, ...]``."""
    n_pos = 7  # odd and prime, so a [batch, head, pos, pos] pattern is not mistaken for [batch, pos, ...]
    acts = run_hooks(model, torch.full((1, n_pos), token, dtype=torch.long), hooks)
    shapes = {}
    for name, t in acts.items():
        if t.ndim < 3 or tuple(t.shape[:2]) != (1, n_pos) or t.shape[2] == n_pos:
            raise ValueError(f"hook {name!r} gives activations of shape {list(t.shape)} for 1 context of {n_pos} tokens; "
                             "harvest needs [batch, pos, ...] (attention patterns and scores are not supported)")
        shapes[name] = tuple(int(s) for s in t.shape[2:])
    return shapes


def width(shape: tuple[int, ...]) -> int:
    """Row width ``d`` of a hook whose per-position shape is ``shape`` (trailing dims flattened)."""
    return int(math.prod(shape))
