"""Apply ``Edit``s to a TransformerLens model (bridge or HookedTransformer) through forward hooks.

    with steered(model, {hook: sae}, [Edit(hook, 123, "add", 8.0)]):
        logits = model(tokens)

One hook per edited hook point rewrites the activation [B, T, D] there: the non-BOS rows x go through
the edits in order (``interventions.edits`` states the maths), and x' is written back. Every op adds a
multiple of a decoder row to x, so the SAE's error x − x̂ is kept and an edit that changes no code
(scale by 1, ablate a latent that is 0) returns x bit for bit. A hook on ``embed.hook_in`` (the token
ids, also during cached generation, where each step sees only the new token) tells which positions
are BOS. Letters: B batch, T positions, D = d_in, N edited rows, F = d_sae.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from superscope.activations.hooks import validate_hooks
from superscope.saes.base import BaseSAE

from .edits import NEEDS_CODES, Edit

TOKENS_HOOK = "embed.hook_in"
"""Bridge hook whose input is the token ids (read to leave BOS positions unedited)."""
GAIN_FLOOR = 1e-3
"""|g_f| below which ``clamp`` refuses a latent (its encoder barely reads its own decoder direction)."""


def sae_map(saes: Mapping[str, BaseSAE] | Sequence[BaseSAE] | BaseSAE) -> dict[str, BaseSAE]:
    """``{hook: sae}`` from a mapping, a list of SAEs or one SAE (keyed by ``sae.cfg.hook_name``)."""
    if isinstance(saes, BaseSAE):
        saes = [saes]
    if isinstance(saes, Mapping):
        return dict(saes)
    out = {}
    for sae in saes:
        if not sae.cfg.hook_name:
            raise ValueError("an SAE without cfg.hook_name: pass saes as {hook: sae}")
        if sae.cfg.hook_name in out:
            raise ValueError(f"two SAEs for {sae.cfg.hook_name}: pass one SAE per hook")
        out[sae.cfg.hook_name] = sae
    return out


def check_edits(model: Any, saes: Mapping[str, BaseSAE], edits: Sequence[Edit], *, width: bool = True) -> None:
    """One clear error for: an edit whose hook the model lacks or has no SAE, a latent out of range, an SAE
    whose d_in is not the activation width at its hook (checked with one early-stopped forward)."""
    for e in edits:
        if not isinstance(e, Edit):
            raise TypeError(f"edits must be Edit objects, got {type(e).__name__}")
    hooks = list(dict.fromkeys(e.hook for e in edits))
    if not hooks:
        return
    validate_hooks(model, hooks)
    for e in edits:
        sae = saes.get(e.hook)
        if sae is None:
            raise ValueError(f"no SAE for hook {e.hook!r} (SAEs given for: {', '.join(saes) or 'none'}); "
                             "pass saes={hook: sae} for every edited hook")
        if e.latent >= sae.cfg.d_sae:
            raise ValueError(f"latent {e.latent} out of range: the {sae.cfg.architecture} SAE at {e.hook} has "
                             f"{sae.cfg.d_sae} latents (0–{sae.cfg.d_sae - 1})")
    if width:
        from superscope.activations.capture import hook_shapes

        token = int(getattr(getattr(model, "tokenizer", None), "bos_token_id", None) or 0)
        for hook, shape in hook_shapes(model, hooks, token).items():
            d_in = saes[hook].cfg.d_in
            if shape != (d_in,):
                raise ValueError(f"the SAE at {hook} expects d_in={d_in} but the model's activation there has "
                                 f"shape {list(shape)}; use an SAE trained on this model's {hook}")


def latent_codes(sae: BaseSAE, x_ND: Float[Tensor, "N D"], latents: Sequence[int]) -> Float[Tensor, "N L"]:
    """z[:, latents]: the SAE's codes of the rows for some latents (its selection in its current mode),
    read from the sparse codes without building the dense [N, F] matrix."""
    codes = sae(x_ND).codes
    cols, vals, rows = codes.cols_N, codes.values_N.detach(), codes.rows()
    out = vals.new_zeros(x_ND.shape[0], len(latents))
    for j, f in enumerate(latents):
        hit = cols == f
        out[:, j].index_put_((rows[hit],), vals[hit])
    return out


def preact(sae: BaseSAE, x_ND: Tensor, f: int) -> Tensor:
    """pre_f = (s·x − b_dec)·W_enc[:, f] + b_enc[f] for every row (before ReLU and selection)."""
    return (x_ND * sae.cfg.input_scale - sae.b_dec) @ sae.W_enc[:, f] + sae.b_enc[f]


def edit_delta(sae: BaseSAE, x_ND: Tensor, edit: Edit, value: Tensor | float,
               groups_N: Tensor | None = None) -> Float[Tensor, "N D"]:
    """The change the edit makes to rows x (``edits`` module docstring); ``value`` is a float or one value
    per row [N]. ``groups_N`` encodes batch-dependent SAEs separately per group (rows of different
    dose-response variants must not share a batch selection)."""
    f, s = edit.latent, sae.cfg.input_scale
    w_D = sae.W_dec[f]
    v = value if isinstance(value, Tensor) else torch.tensor(value, dtype=x_ND.dtype, device=x_ND.device)
    if edit.op == "add":
        return (v.reshape(-1, 1) if v.ndim else v) * (w_D / w_D.norm()).expand_as(x_ND)
    if edit.op == "clamp":
        gain = float(w_D @ sae.W_enc[:, f])
        if abs(gain) < GAIN_FLOOR:
            raise ValueError(f"cannot clamp latent {f} at {edit.hook}: its encoder barely reads its decoder direction "
                             f"(g = W_dec[f]·W_enc[:, f] = {gain:.2g}); use op 'delta_clamp'")
        coef_N = (v - preact(sae, x_ND, f)) / gain
    else:
        assert edit.op in NEEDS_CODES, edit.op
        z_N = _codes_by_group(sae, x_ND, f, groups_N)
        coef_N = {"scale": (v - 1) * z_N, "ablate": -z_N, "delta_clamp": v - z_N}[edit.op]
    return coef_N.reshape(-1, 1) * (w_D / s)


def _codes_by_group(sae: BaseSAE, x_ND: Tensor, f: int, groups_N: Tensor | None) -> Tensor:
    if groups_N is None or not (sae.batch_dependent and sae.batch_mode):
        return latent_codes(sae, x_ND, [f])[:, 0]
    z_N = x_ND.new_zeros(x_ND.shape[0])
    for g in groups_N.unique():
        rows = (groups_N == g).nonzero().squeeze(1)
        z_N[rows] = latent_codes(sae, x_ND[rows], [f])[:, 0]
    return z_N


class Steering:
    """The hooks for a list of edits; a context manager installs them on the model.

    ``values`` replaces an edit's value by one value per batch row (``{edit index: Tensor[B]}``): a
    dose-response sweep stacks its α values along the batch and runs them in one forward; ``groups``
    (the number of equal blocks of the batch) keeps batch-dependent SAEs from selecting across them.
    ``record`` keeps, per hook, the edited latents' codes before and after the edits (``readout``)."""

    def __init__(self, model: Any, saes: Mapping[str, BaseSAE] | Sequence[BaseSAE] | BaseSAE,
                 edits: Sequence[Edit], *, check: bool = True, record: bool = False):
        self.model, self.saes, self.edits = model, sae_map(saes), tuple(edits)
        if check:
            check_edits(model, self.saes, self.edits)
        for hook in {e.hook for e in self.edits}:
            self.saes[hook].eval()
        tok = getattr(model, "tokenizer", None)
        self.bos_id = getattr(tok, "bos_token_id", None)
        self.values: dict[int, Tensor] = {}
        self.groups = 1
        self.record = record
        self.readout: dict[str, tuple[Tensor, Tensor]] = {}
        self._keep_BT: Tensor | None = None
        self._context: Any = None

    # ---- hooks ----------------------------------------------------------------------------------
    def fwd_hooks(self) -> list[tuple[str, Any]]:
        hooks = list(dict.fromkeys(e.hook for e in self.edits))
        out: list[tuple[str, Any]] = []
        if self.bos_id is not None and TOKENS_HOOK in getattr(self.model, "hook_dict", {}):
            out.append((TOKENS_HOOK, self._read_tokens))
        return out + [(h, functools.partial(self._edit_hook, name=h)) for h in hooks]

    def _read_tokens(self, tokens: Tensor, hook: Any = None) -> Tensor:
        self._keep_BT = tokens != self.bos_id if tokens.ndim == 2 and not tokens.is_floating_point() else None
        return tokens

    def _keep(self, act: Tensor) -> Tensor:
        keep = self._keep_BT
        if keep is None or tuple(keep.shape) != tuple(act.shape[:2]):
            return torch.ones(act.shape[:2], dtype=torch.bool, device=act.device)
        return keep.to(act.device)

    @torch.no_grad()
    def _edit_hook(self, act: Float[Tensor, "B T D"], hook: Any, name: str) -> Tensor:
        keep_BT = self._keep(act)
        sae = self.saes[name]
        x_ND = act[keep_BT].to(sae.W_dec.dtype)
        x0_ND = x_ND
        B, T = act.shape[:2]
        b_BT = torch.arange(B, device=act.device)[:, None].expand(B, T)[keep_BT]
        groups_N = b_BT // max(1, B // self.groups) if self.groups > 1 else None
        mine = [(i, e) for i, e in enumerate(self.edits) if e.hook == name]
        for i, e in mine:
            value = self.values[i].to(x_ND)[b_BT] if i in self.values else e.value
            x_ND = x_ND + edit_delta(sae, x_ND, e, value, groups_N)
        if self.record:
            latents = [e.latent for _, e in mine]
            self.readout[name] = (latent_codes(sae, x0_ND, latents), latent_codes(sae, x_ND, latents))
        out = act.clone()
        out[keep_BT] = x_ND.to(act.dtype)
        return out

    # ---- context manager ------------------------------------------------------------------------
    def __enter__(self) -> Steering:  # noqa: PYI034  (Self needs Python 3.11)
        self.readout = {}
        self._context = self.model.hooks(fwd_hooks=self.fwd_hooks()) if self.edits else contextlib.nullcontext()
        self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)
        self._keep_BT = None


@contextlib.contextmanager
def steered(model: Any, saes: Mapping[str, BaseSAE] | Sequence[BaseSAE] | BaseSAE,
            edits: Sequence[Edit] | Edit, *, record: bool = False) -> Iterator[Steering]:
    """Run the model with the edits applied (checked first: hooks, latents, widths); the hooks are removed
    on exit, also after an error.

        with steered(model, sae, [Edit("blocks.15.hook_resid_post", 123, "clamp", 10.0)]):
            logits = model(tokens)
    """
    edits = [edits] if isinstance(edits, Edit) else list(edits)
    with Steering(model, saes, edits, record=record) as steering:
        yield steering
