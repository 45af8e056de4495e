"""Interop with SAELens' on-disk format (``cfg.json`` + ``sae_weights.safetensors``).

Export folds the input scale s into the weights, so SAELens needs no normalisation step:
    pre = (s·x − b_dec)·W_enc + b_enc = (x − b_dec/s)·(s·W_enc) + b_enc
    x̂   = (z·W_dec + b_dec)/s        = z·(W_dec/s) + b_dec/s
TopK → SAELens ``topk`` (same selection: per-row top-k of pre, then ReLU). MC / BatchTopK / FC →
SAELens ``jumprelu`` with their learned thresholds (θ broadcast for MC, θ_f for FC): the batch-free
inference mode of specs/saes.md, z = ReLU(pre)·1[pre > θ].
JumpReLU → SAELens ``jumprelu`` with θ_f = exp(log_threshold_f) (the same codes: z = pre·1[pre > θ], θ > 0).
Import reads a SAELens folder (``topk`` or ``jumprelu`` architectures) into the matching superscope
variant (a plain ``jumprelu`` folder into JumpReLUSAE), or a pretrained release by name when the hub is
reachable.

BatchTopK and Matryoshka-BatchTopK as SAELens does them (sae_lens/saes/batchtopk_sae.py,
matryoshka_batchtopk_sae.py): exported as ``jumprelu`` with the learned global threshold broadcast to
every latent, and ``metadata.training_architecture`` / ``training_architecture_details`` (k,
matryoshka_widths) saying what was trained; the latent order is the prefix order, unpermuted. Import
reads such a ``jumprelu`` folder, and SAELens' training folders of ``batchtopk`` / ``matryoshka_batchtopk``
(``topk_threshold``, decoder norms folded when ``rescale_acts_by_decoder_norm``), into BatchTopKSAE /
MatryoshkaBatchTopKSAE (threshold mode for a jumprelu folder, batch mode for a training folder, as
sae_lens encodes each).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .atomic_io import read_json, read_safetensors, write_json, write_safetensors
from .base import BaseSAE
from .config import SAEConfig
from .jumprelu import JumpReLUSAE
from .persistence import create_sae
from .topk import TopKSAE

SAELENS_CFG = "cfg.json"
SAELENS_WEIGHTS = "sae_weights.safetensors"


def _thresholds_F(sae: BaseSAE) -> torch.Tensor:
    if isinstance(sae, JumpReLUSAE):  # θ_f = exp(log_threshold_f), a trained parameter: SAELens jumprelu as it is
        return sae.theta_F.detach().clone()
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
    if isinstance(sae, TopKSAE):  # TopK and Matryoshka-TopK: the same per-token selection
        cfg.update(architecture="topk", k=sae.cfg.k)
    else:
        cfg.update(architecture="jumprelu")
        tensors["threshold"] = _thresholds_F(sae).to(sae.W_enc.dtype)
    cfg["metadata"].update(saelens_training_metadata(sae))
    write_safetensors(folder / SAELENS_WEIGHTS, tensors)
    write_json(folder / SAELENS_CFG, cfg)
    return folder


BATCHTOPK_NAMES = {"batchtopk": "batchtopk", "matryoshka_batchtopk": "matryoshka_batchtopk"}
"""Our architectures SAELens has a training architecture of the same name for (exported as jumprelu)."""


def saelens_training_metadata(sae: BaseSAE) -> dict:
    """``training_architecture`` (+ details) as SAELens records them in an inference folder; {} otherwise."""
    name = BATCHTOPK_NAMES.get(sae.cfg.architecture)
    if name is None:
        return {}
    details = {"k": sae.cfg.k}
    if sae.cfg.matryoshka_prefixes:
        details["matryoshka_widths"] = list(sae.cfg.matryoshka_prefixes)
    return {"training_architecture": name, "training_architecture_details": details}


def batchtopk_from_saelens(cfg: dict, tensors: dict[str, torch.Tensor], common: dict,
                           source: str) -> tuple[BaseSAE, dict[str, torch.Tensor]] | None:
    """A SAELens BatchTopK / Matryoshka-BatchTopK (training folder, or jumprelu folder with one global
    threshold and that training_architecture) → (our SAE with θ set, the tensors to copy); None if not one."""
    arch, meta = cfg.get("architecture"), cfg.get("metadata") or {}
    details = {**(meta.get("training_architecture_details") or {}), **cfg}
    if arch == "jumprelu":
        threshold = tensors.get("threshold")
        if (meta.get("training_architecture") not in BATCHTOPK_NAMES or threshold is None
                or not bool((threshold == threshold.reshape(-1)[0]).all())):
            return None
        name, theta, mode = meta["training_architecture"], float(threshold.reshape(-1)[0]), "threshold"
    elif arch in BATCHTOPK_NAMES:
        name, theta, mode = arch, float(tensors.get("topk_threshold", torch.zeros(()))), "batch"
        if details.get("rescale_acts_by_decoder_norm", True):  # SAELens' default: fold ‖W_dec,f‖ in
            norm_F = tensors["W_dec"].norm(dim=1).clamp_min(1e-8)
            tensors = {**tensors, "W_enc": tensors["W_enc"] * norm_F, "b_enc": tensors["b_enc"] * norm_F,
                       "W_dec": tensors["W_dec"] / norm_F[:, None]}
    else:
        return None
    k = float(details.get("k", 32))
    if k != int(k):
        raise ValueError(f"{source}: BatchTopK k={k} is not an integer; superscope budgets M = k·B with an integer k")
    widths = details.get("matryoshka_widths") if name == "matryoshka_batchtopk" else None
    if widths and widths[-1] != common["d_sae"]:
        widths = [*widths, common["d_sae"]]  # SAELens appends the full width the same way
    sae = create_sae(SAEConfig(architecture=name, k=int(k), inference_mode=mode, matryoshka_prefixes=widths, **common))
    sae.theta.fill_(theta)
    sae.theta_updates.fill_(1)
    return sae, tensors


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
    if (found := batchtopk_from_saelens(cfg, tensors, common, source)) is not None:
        sae, tensors = found
    elif arch == "topk":
        sae = create_sae(SAEConfig(architecture="topk", k=int(cfg.get("k", 32)), **common))
    elif arch == "jumprelu":  # → JumpReLUSAE; SAELens' relu(pre)·1[pre > θ] = pre·1[pre > θ] for θ ≥ 0
        if "threshold" not in tensors or tensors["threshold"].shape != (common["d_sae"],):
            raise ValueError(f"{source}: a jumprelu SAE needs a threshold tensor of shape ({common['d_sae']},)")
        l0_guess = max(1, min(common["d_sae"] - 1, 32))  # k is JumpReLU's L0 target: only training reads it
        sae = create_sae(SAEConfig(architecture="jumprelu", k=l0_guess, **common))
        # θ ≤ 0 (SAELens clamps at 0) gives relu(pre): θ = the smallest positive float32 differs only on (0, 1e-38]
        with torch.no_grad():
            sae.log_threshold.copy_(tensors["threshold"].float().clamp_min(torch.finfo(torch.float32).tiny).log())
    else:
        raise ValueError(f"{source}: SAELens architecture {arch!r} has no superscope equivalent (topk, jumprelu, "
                         "batchtopk, matryoshka_batchtopk)")
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
