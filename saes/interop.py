"""Interop with SAELens' on-disk format (``cfg.json`` + ``sae_weights.safetensors``).

Export folds the input scale s into the weights, so SAELens needs no normalisation step:
    pre = (s·x − b_dec)·W_enc + b_enc = (x − b_dec/s)·(s·W_enc) + b_enc
    x̂   = (z·W_dec + b_dec)/s        = z·(W_dec/s) + b_dec/s
TopK → SAELens ``topk`` (same selection: per-row top-k of pre, then ReLU). MC / BatchTopK / FC →
SAELens ``jumprelu`` with their learned thresholds (θ broadcast for MC, θ_f for FC): the batch-free
inference mode of specs/saes.md, z = ReLU(pre)·1[pre > θ].
Import reads a SAELens folder (``topk`` or ``jumprelu`` architectures) into the matching superscope
variant, or a pretrained release by name when the hub is reachable.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .atomic_io import read_json, read_safetensors, write_json, write_safetensors
from .base import BaseSAE
from .config import SAEConfig
from .persistence import create_sae

SAELENS_CFG = "cfg.json"
SAELENS_WEIGHTS = "sae_weights.safetensors"


def _thresholds_F(sae: BaseSAE) -> torch.Tensor:
    state = dict(sae.named_buffers())
    if "theta_F" in state:
        return state["theta_F"].clone()
    if "theta" in state:
        return state["theta"].expand(sae.cfg.d_sae).clone()
    raise ValueError(f"{sae.cfg.architecture} SAEs have no thresholds to export as jumprelu")


@torch.no_grad()
def export_saelens(sae: BaseSAE, folder: str | Path) -> Path:
    """Write ``sae`` in SAELens' format to ``folder``; ``sae_lens.SAE.load_from_disk(folder)`` loads it."""
    s = sae.cfg.input_scale
    folder = Path(folder)
    tensors = {"W_enc": sae.W_enc * s, "b_enc": sae.b_enc.clone(), "W_dec": sae.W_dec / s, "b_dec": sae.b_dec / s}
    cfg = {"d_in": sae.cfg.d_in, "d_sae": sae.cfg.d_sae, "dtype": sae.cfg.dtype, "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"model_name": sae.cfg.model_name or None, "hook_name": sae.cfg.hook_name or None,
                        "superscope_architecture": sae.cfg.architecture}}
    if sae.cfg.architecture == "topk":
        cfg.update(architecture="topk", k=sae.cfg.k)
    else:
        cfg.update(architecture="jumprelu")
        tensors["threshold"] = _thresholds_F(sae).to(sae.W_enc.dtype)
    write_safetensors(folder / SAELENS_WEIGHTS, tensors)
    write_json(folder / SAELENS_CFG, cfg)
    return folder


def import_saelens(folder_or_release: str | Path, sae_id: str | None = None) -> BaseSAE:
    """A superscope SAE from a SAELens folder (or a release + sae_id via the hub)."""
    folder = Path(folder_or_release)
    if not folder.is_dir():
        if sae_id is None:
            raise FileNotFoundError(f"no SAELens folder at {folder}; for a pretrained release also pass sae_id")
        return _import_release(str(folder_or_release), sae_id)
    cfg = read_json(folder / SAELENS_CFG, "SAELens config")
    tensors = read_safetensors(folder / SAELENS_WEIGHTS, "SAELens weights")
    return _from_saelens(cfg, tensors, str(folder))


def _from_saelens(cfg: dict, tensors: dict[str, torch.Tensor], source: str) -> BaseSAE:
    arch = cfg.get("architecture", "standard")
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise ValueError(f"{source}: normalize_activations={cfg['normalize_activations']!r} is not supported; "
                         "fold the normalisation into the weights first (sae_lens fold_activation_norm_scaling_factor)")
    meta = cfg.get("metadata") or {}
    common = dict(d_in=int(cfg["d_in"]), d_sae=int(cfg["d_sae"]), hook_name=meta.get("hook_name") or cfg.get("hook_name") or "",
                  model_name=meta.get("model_name") or cfg.get("model_name") or "")
    if arch == "topk":
        sae = create_sae(SAEConfig(architecture="topk", k=int(cfg.get("k", 32)), **common))
    elif arch == "jumprelu":
        threshold = tensors["threshold"].float()
        l0_guess = max(1, min(common["d_sae"] - 1, 32))
        sae = create_sae(SAEConfig(architecture="feature_choice", k=l0_guess, inference_mode="threshold", **common))
        sae.theta_F.copy_(threshold)
    else:
        raise ValueError(f"{source}: SAELens architecture {arch!r} has no superscope equivalent (topk, jumprelu)")
    with torch.no_grad():
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            if name not in tensors or tensors[name].shape != getattr(sae, name).shape:
                raise ValueError(f"{source}: tensor {name} missing or of the wrong shape")
            getattr(sae, name).copy_(tensors[name])
        if not cfg.get("apply_b_dec_to_input", True):
            # pre = x·W_enc + b_enc  ⇔  (x − b_dec)·W_enc + (b_enc + b_dec·W_enc)
            sae.b_enc.add_(sae.b_dec @ sae.W_enc)
    sae.eval()
    return sae


def _import_release(release: str, sae_id: str) -> BaseSAE:
    try:
        from sae_lens import SAE

        loaded = SAE.from_pretrained(release, sae_id, device="cpu")
    except Exception as err:  # the hub is unreachable offline; say how to proceed
        raise OSError(f"cannot fetch SAELens release {release}/{sae_id} ({type(err).__name__}: {err}); "
                      "download it where the hub is reachable and pass the local folder") from None
    sae = loaded[0] if isinstance(loaded, tuple) else loaded
    cfg = dataclasses.asdict(sae.cfg) if dataclasses.is_dataclass(sae.cfg) else dict(sae.cfg.to_dict())
    cfg["architecture"] = sae.cfg.architecture()
    return _from_saelens(cfg, {k: v.detach() for k, v in sae.state_dict().items()}, f"{release}/{sae_id}")
