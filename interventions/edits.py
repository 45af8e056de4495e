"""Edits on SAE latents: what to change at a hook, as small frozen dataclasses.

An ``Edit(hook, latent, op, value)`` acts on the residual x at ``hook`` through the SAE there
(x ∈ ℝ^D, s = input_scale, W_dec[f] the decoder row of latent f, d_f = W_dec[f] / ‖W_dec[f]‖,
z = the SAE's codes of x in its current inference mode, pre_f = (s·x − b_dec)·W_enc[:, f] + b_enc[f]).
Every op changes x by a multiple of W_dec[f]; the SAE error x − x̂ is kept (x' = x̂' + (x − x̂)), so
an edit that changes no code leaves x exactly as it was:

    add           x' = x + α·d_f                                    steering vector (Turner et al. 2023;
                                                                    Templeton et al. 2024 "feature steering")
    scale         x' = x + (α − 1)·z_f·W_dec[f]/s                  z_f → α·z_f in the reconstruction
    ablate        x' = x − z_f·W_dec[f]/s                          z_f → 0 (scale with α = 0)
    delta_clamp   x' = x + (v − z_f)·W_dec[f]/s                    z_f → v in the reconstruction, error kept
                                                                    (Templeton et al. 2024 clamping); the
                                                                    SAE re-reading x' sees v only up to the
                                                                    encoder–decoder gain g_f = W_dec[f]·W_enc[:, f]
    clamp         x' = x + c·W_dec[f]/s,  c = (v − pre_f) / g_f    moves x along f's decoder row until the
                                                                    SAE's pre-activation of f is exactly v:
                                                                    re-encoding x' gives z_f = v whenever f is
                                                                    selected (v > θ in threshold mode; among
                                                                    the top k for TopK)

Edits at one hook apply in the order given, each reading the residual the edits before it left
(function composition); edits at different hooks apply in forward order (earlier layers first).
BOS positions are left unedited, as when the SAE is spliced in for CE-loss recovered.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, get_args

Op = Literal["add", "scale", "ablate", "clamp", "delta_clamp"]
OPS: tuple[str, ...] = get_args(Op)
NEEDS_CODES = frozenset({"scale", "ablate", "delta_clamp"})
"""Ops that read the SAE's code z_f (a full encode of x at the hook)."""


@dataclass(frozen=True)
class Edit:
    """One change to one latent of the SAE at ``hook`` (see the module docstring for the maths)."""

    hook: str
    """TransformerLens hook name of the SAE, e.g. ``blocks.15.hook_resid_post``."""
    latent: int
    """Index f of the latent (0 ≤ f < d_sae)."""
    op: Op = "add"
    """add · scale · ablate · clamp · delta_clamp."""
    value: float = 0.0
    """α for add (residual units along the unit decoder direction) and scale (a factor); v for clamp and
    delta_clamp (an activation of the latent); ignored by ablate."""

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown edit op {self.op!r}; choose one of {', '.join(OPS)}")
        if isinstance(self.latent, bool) or not isinstance(self.latent, int) or self.latent < 0:
            raise ValueError(f"latent must be a non-negative integer index, got {self.latent!r}")
        if not isinstance(self.hook, str) or not self.hook:
            raise ValueError(f"edit hook must be a hook name such as 'blocks.15.hook_resid_post', got {self.hook!r}")
        try:
            value = float(self.value)
        except (TypeError, ValueError):
            raise ValueError(f"edit value must be a number, got {self.value!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"edit value (α or clamp value) must be finite, got {self.value!r} for latent "
                             f"{self.latent} at {self.hook}; pass a real number")
        object.__setattr__(self, "value", value)

    def with_value(self, value: float) -> Edit:
        """The same edit with another α / clamp value (what a dose-response sweep varies)."""
        return Edit(self.hook, self.latent, self.op, value)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        what = {"add": f"+{self.value:g}·d", "scale": f"×{self.value:g}", "ablate": "=0",
                "clamp": f"={self.value:g}", "delta_clamp": f"≔{self.value:g} (Δ)"}[self.op]
        return f"f{self.latent}{what} @ {self.hook}"


def parse_edit(text: str, default_hook: str | None = None) -> Edit:
    """``"123"``, ``"123:add:8"``, ``"123:clamp:5"``, ``"blocks.15.hook_resid_post/123:ablate"`` → an Edit.

    Fields after the latent are op and value (default op ``add``); a hook prefix ends with ``/``."""
    hook, _, rest = text.rpartition("/")
    hook = hook or default_hook or ""
    parts = rest.split(":")
    if not parts[0].strip().lstrip("-").isdigit():
        raise ValueError(f"cannot read the edit {text!r}: expected LATENT[:OP[:VALUE]], e.g. '123:add:8', "
                         "optionally after 'HOOK/'")
    op = parts[1] if len(parts) > 1 and parts[1] else "add"
    value = float(parts[2]) if len(parts) > 2 and parts[2] else (0.0 if op == "ablate" else 1.0)
    if len(parts) > 3:
        raise ValueError(f"cannot read the edit {text!r}: too many ':' fields (LATENT[:OP[:VALUE]])")
    return Edit(hook, int(parts[0]), op, value)  # type: ignore[arg-type]
