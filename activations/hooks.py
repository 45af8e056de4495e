"""Hook-name helpers over a TransformerLens model's hook points (``model.hook_dict``).

Hook names are TransformerLens names, e.g. ``blocks.12.hook_resid_post``; the bridge also accepts its
own canonical names (``blocks.12.hook_out``) — both are listed in ``hook_dict``.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

__all__ = ["d_model", "hook_layer", "n_layers", "validate_hooks"]

_BLOCK = re.compile(r"^blocks\.(\d+)\.")
_BEFORE_BLOCKS = ("hook_embed", "hook_pos_embed", "embed.", "pos_embed.", "rotary_emb.", "hook_tokens")
_AFTER_BLOCKS = ("ln_final.", "unembed.", "hook_unembed", "hook_logits")
AFTER_LAST_BLOCK = 1_000_000
"""``hook_layer(..., strict=False)`` of a hook after the last block when ``n_layers`` is unknown: larger
than any model's block count, so it sorts after every block."""


def hook_layer(hook_name: str, n_layers: int | None = None, *, strict: bool = True) -> int:
    """Index of the block a hook belongs to: ``blocks.7.…`` → 7; embedding hooks → −1;
    hooks after the last block (``ln_final.…``, ``unembed.…``) → ``n_layers`` (which must then be given).

    ``strict=False`` is for ordering and labelling hook names read from files (the report): it never
    raises. A hook after the last block without ``n_layers`` → ``AFTER_LAST_BLOCK`` (sorts after every
    block); a name no rule places → −1."""
    match = _BLOCK.match(hook_name)
    if match:
        return int(match.group(1))
    if hook_name.startswith(_BEFORE_BLOCKS):
        return -1
    if hook_name.startswith(_AFTER_BLOCKS):
        if n_layers is not None:
            return n_layers
        if not strict:
            return AFTER_LAST_BLOCK
        raise ValueError(f"hook {hook_name!r} comes after the last block: pass n_layers to hook_layer()")
    if not strict:
        return -1
    raise ValueError(f"cannot tell which layer hook {hook_name!r} belongs to; expected 'blocks.<i>.…', "
                     "an embedding hook or a final hook (ln_final.…, unembed.…)")


def validate_hooks(model: Any, hooks: list[str] | tuple[str, ...] | str) -> list[str]:
    """Check that every name is a hook point of ``model``; return the list (duplicates removed, order kept).

    Raises ValueError naming the closest valid hook names when one is unknown, and the setter to call
    when a hook point exists but is switched off (e.g. ``attn.hook_result`` needs ``set_use_attn_result``).
    """
    if isinstance(hooks, str):
        hooks = [hooks]
    hooks = list(dict.fromkeys(hooks))
    if not hooks:
        raise ValueError("no hooks given: pass at least one hook name, e.g. 'blocks.6.hook_resid_post'")
    hook_dict = model.hook_dict
    for name in hooks:
        if not isinstance(name, str) or name not in hook_dict:
            near = difflib.get_close_matches(str(name), list(hook_dict), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(near)}?" if near else f"; e.g. {_examples(model)}"
            n = n_layers(model)
            raise ValueError(f"unknown hook name {name!r} for this model ({n} blocks, indices 0–{n - 1}){hint}")
        check = getattr(model, "check_hooks_to_add", None)
        if callable(check):
            check(hook_dict[name].name or name)
    return hooks


def _examples(model: Any) -> str:
    last = n_layers(model) - 1
    return ", ".join(f"blocks.{i}.hook_resid_post" for i in sorted({0, last // 2, last}))


def n_layers(model: Any) -> int:
    """Number of transformer blocks."""
    return int(model.cfg.n_layers)


def d_model(model: Any) -> int:
    """Width of the residual stream (the ``d`` of ``hook_resid_*`` activations)."""
    return int(model.cfg.d_model)
