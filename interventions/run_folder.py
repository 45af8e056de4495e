"""Steering the SAEs of a run folder: one latent (or several together) → generation side by side, the
edit's cost on held-out contexts and its dose-response; written as runs/<run>/steering/<name>.json + .html.

Reads the run folder by its layout (DESIGN.md "The run folder is the contract"): the SAE from
saes/<hook>/<arch>/, held-out contexts from heldout/<hook>/, the model named in run.json's config.
``SteerConfig`` is also the ``superscope steer`` command's options and the dashboard's Steering form.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from superscope.saes.atomic_io import read_json, write_json, write_text

from .cost import EditCost, edit_cost
from .dose import DoseResponse, dose_response
from .edits import Edit, Op
from .generation import Generation, generate

FORMAT = "superscope.steering"
DEFAULT_PROMPT = "The history of the language began"


@dataclass
class SteerConfig:
    """What to steer and how (one result per latent unless ``together``)."""

    hook: str | None = None
    """Hook of the SAE (default: the run's main hook)."""
    arch: str = "topk"
    """Architecture of the SAE at that hook (a folder under saes/<hook>/)."""
    latent: tuple[int, ...] = ()
    """Latent index or indices to edit."""
    op: Op = "add"
    """add (α·d_f to the residual), scale (z_f × α), ablate (z_f → 0), clamp (re-encoded z_f = α),
    delta_clamp (z_f → α in the reconstruction)."""
    alpha: float = 8.0
    """α of add / scale, the value of clamp / delta_clamp."""
    together: bool = False
    """Apply all latents' edits at once (one result) instead of one result per latent."""
    prompt: str = DEFAULT_PROMPT
    """Text to continue with and without the edit."""
    max_new_tokens: int = 32
    """Tokens to generate."""
    greedy: bool = True
    """Greedy decoding (false: sample with --seed and --temperature)."""
    seed: int = 0
    """Seed of the sampled generation (both continuations use it)."""
    temperature: float = 1.0
    """Sampling temperature."""
    sweep: tuple[float, ...] = ()
    """Values of the dose-response sweep (default: 8 values from 0 to 2·α)."""
    contexts: int = 64
    """Held-out contexts for the cost and the sweep."""
    context_len: int = 32
    """Tokens of each held-out context used."""
    target: str | None = None
    """Token whose probability the sweep tracks (default: the latent's most promoted token)."""
    inference_mode: Literal["batch", "threshold"] | None = None
    """Override the SAE's inference mode (None: as saved)."""
    name: str | None = None
    """Output name under <run>/steering/ (default: from arch, latent, op and α)."""

    def __post_init__(self) -> None:
        if not self.latent:
            raise ValueError("give at least one latent to steer (--latent F [F ...])")
        self.latent = tuple(int(f) for f in self.latent)
        Edit("x", self.latent[0], self.op, self.alpha)  # checks op and α (NaN, inf) with one clear line
        if self.max_new_tokens < 1 or self.contexts < 1 or self.context_len < 2:
            raise ValueError("max_new_tokens and contexts must be ≥ 1 and context_len ≥ 2")
        if any(not np.isfinite(v) for v in self.sweep):
            raise ValueError(f"sweep values must be finite numbers, got {list(self.sweep)}")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9_.+=-]+", self.name):
            raise ValueError(f"output name {self.name!r}: use letters, digits and _ . + = - only")

    def sweep_values(self) -> list[float]:
        if self.sweep:
            return [float(v) for v in self.sweep]
        return [float(v) for v in np.linspace(0.0, 2 * self.alpha, 8)]

    def default_name(self, latents: tuple[int, ...]) -> str:
        ids = "+".join(str(f) for f in latents)
        return self.name or f"{self.arch}_f{ids}_{self.op}{self.alpha:g}"


@dataclass(frozen=True)
class SteeringResult:
    """One steering experiment on a run: the edits, both continuations, the cost and the sweep."""

    run: str
    config: dict
    edits: tuple[dict, ...]
    generation: Generation
    cost: EditCost
    dose: DoseResponse
    seconds: float

    def to_dict(self) -> dict:
        return {"format": FORMAT, "run": self.run, "config": self.config, "edits": list(self.edits),
                "generation": self.generation.to_dict(), "cost": self.cost.to_dict(), "dose": self.dose.to_dict(),
                "seconds": self.seconds}

    def kl_strip(self) -> go.Figure:
        """Per-token KL(p_clean ‖ p_steered) along the steered continuation."""
        g = self.generation
        fig = go.Figure(go.Bar(x=[f"{i}:{t!r}" for i, t in enumerate(g.steered_tokens)], y=list(g.kl_per_token),
                               marker_color="#d62728"))
        fig.update_layout(title="KL(clean ‖ steered) per generated token", height=260, yaxis_title="KL (nats)",
                          margin={"t": 40, "b": 80, "l": 50, "r": 20})
        return fig

    def html(self) -> str:
        """A self-contained page (plotly inlined once): both continuations, the cost, the two figures."""
        g, c = self.generation, self.cost
        edits = ", ".join(str(Edit(**e)) for e in self.edits)
        rows = "".join(f"<tr><td>f{s.latent} @ {html.escape(s.hook)}</td><td>{s.clean:.3g}</td><td>{s.arriving:.3g}</td>"
                       f"<td>{s.after:.3g}</td><td>{s.fired_clean:.1%}</td><td>{s.fired_after:.1%}</td></tr>"
                       for s in c.latents)
        figs = (pio.to_html(self.dose.figure(), include_plotlyjs=True, full_html=False)
                + pio.to_html(self.kl_strip(), include_plotlyjs=False, full_html=False))
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>steering {html.escape(edits)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:24px auto}} pre{{white-space:pre-wrap;
background:#f6f6f6;padding:8px}} td,th{{padding:2px 10px;text-align:right}}</style></head><body>
<h1>Steering: {html.escape(edits)}</h1><p>run {html.escape(self.run)} · {'greedy' if g.greedy else f'sampled, seed {g.seed}'}</p>
<h3>Prompt</h3><pre>{html.escape(g.prompt)}</pre>
<h3>Unsteered</h3><pre>{html.escape(g.clean)}</pre><h3>Steered</h3><pre>{html.escape(g.steered)}</pre>
<h3>Cost on {c.n_tokens} held-out tokens</h3><p>KL(clean ‖ steered) {c.kl:.4g} nats · CE {c.ce_clean:.4g} →
{c.ce_steered:.4g} (Δ {c.ce_delta:+.4g})</p>
<table><tr><th>latent</th><th>mean z clean</th><th>arriving</th><th>after edit</th><th>fires clean</th>
<th>fires after</th></tr>{rows}</table>{figs}</body></html>"""


def _run_model_name(root: Path) -> tuple[str | None, str | None]:
    run_json = root / "run.json"
    if not run_json.is_file():
        raise FileNotFoundError(f"{root} is not a superscope run folder (no run.json); give runs/<name>")
    info = read_json(run_json, "run description")
    return (info.get("config") or {}).get("model"), info.get("main_hook")


def load_run_sae(root: Path, hook: str, arch: str, inference_mode: str | None = None):
    from superscope.saes import load_sae

    folder = Path(root) / "saes" / hook / arch
    if not (folder / "sae.safetensors").is_file():
        have = sorted(p.parent.name for p in (Path(root) / "saes" / hook).glob("*/sae.safetensors"))
        raise FileNotFoundError(f"no {arch} SAE at {hook} in {root} (saes/{hook}/{arch}/sae.safetensors); "
                                f"this hook has: {', '.join(have) or 'none'}")
    sae = load_sae(folder).eval()
    if inference_mode:
        sae.cfg.inference_mode = inference_mode
    return sae


def heldout_contexts(root: Path, hook: str, n: int):
    """The first n held-out contexts [n, T] of the run at ``hook`` (BOS first)."""
    from superscope.activations import load_activations

    folder = Path(root) / "heldout" / hook
    if not (folder / "manifest.json").is_file():
        raise FileNotFoundError(f"no held-out contexts at {folder}: the run's harvest step writes them "
                                "(superscope run), needed for the edit's KL and CE cost")
    return load_activations(folder).contexts()[:n]


def target_id(model: Any, target: str | None) -> int | None:
    if target is None:
        return None
    ids = model.tokenizer.encode(target, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"target {target!r} is {len(ids)} tokens for this tokenizer; give a single token "
                         "(e.g. ' the', with its leading space)")
    return int(ids[0])


def steer_run(root: str | Path, config: SteerConfig, model: Any = None) -> list[SteeringResult]:
    """Run the experiments ``config`` describes on the run at ``root`` (one per latent, or one together)."""
    return list(iter_steer_run(root, config, model))


def iter_steer_run(root: str | Path, config: SteerConfig, model: Any = None) -> Iterator[SteeringResult]:
    """``steer_run`` one result at a time (the command writes each as soon as it is measured)."""
    from superscope.activations import load_model

    root = Path(root)
    model_name, main_hook = _run_model_name(root)
    hook = config.hook or main_hook
    if not hook:
        raise ValueError(f"{root}/run.json names no main hook; pass --hook")
    sae = load_run_sae(root, hook, config.arch, config.inference_mode)
    model = model if model is not None else load_model(model_name)
    contexts = heldout_contexts(root, hook, config.contexts)
    target = target_id(model, config.target)
    groups = [config.latent] if config.together else [(f,) for f in config.latent]
    for latents in groups:
        start = time.perf_counter()
        edits = [Edit(hook, f, config.op, config.alpha) for f in latents]
        gen = generate(model, {hook: sae}, edits, config.prompt, max_new_tokens=config.max_new_tokens,
                       greedy=config.greedy, seed=config.seed, temperature=config.temperature)
        short = contexts[:, :config.context_len]
        cost = edit_cost(model, {hook: sae}, edits, short.split(8))
        dose = dose_response(model, {hook: sae}, edits[0], config.sweep_values(), contexts, target=target,
                             context_len=config.context_len)
        cfg = {**asdict(replace(config, latent=latents)), "hook": hook, "name": config.default_name(latents)}
        yield SteeringResult(root.name, cfg, tuple(e.to_dict() for e in edits), gen, cost, dose,
                             time.perf_counter() - start)


def write_result(root: str | Path, result: SteeringResult) -> tuple[Path, Path]:
    """runs/<run>/steering/<name>.json and .html, each written atomically."""
    folder = Path(root) / "steering"
    name = result.config["name"]
    return (write_json(folder / f"{name}.json", result.to_dict()), write_text(folder / f"{name}.html", result.html()))


def read_results(root: str | Path) -> list[dict]:
    """Every steering result of the run (JSON dicts), sorted by name; unreadable files are skipped."""
    out = []
    for path in sorted((Path(root) / "steering").glob("*.json")):
        try:
            data = read_json(path, "steering result")
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("format") == FORMAT:
            out.append(data)
    return out
