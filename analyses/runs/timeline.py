"""The run's steps as a compact timeline: step, duration, what it made (one sentence), where to see it.

Built from run.json's ``steps`` (``RunFolder.mark_step``: seconds, finished, and whatever the step
returned) and the run's config. Used by the dashboard's Overview and the report's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from superscope.saes.registry import arch_label

_INTERNAL = {"done", "seconds", "finished"}


@dataclass(frozen=True)
class Step:
    """One finished step of a run."""

    step: str
    seconds: float | None
    finished: str
    made: str
    """What the step made, as one sentence."""
    page: str | None = None
    """Dashboard page (url path) that shows it."""
    params: tuple[tuple[str, str], ...] = ()
    """Query parameters that open that page on it."""
    section: str | None = None
    """Report section (anchor) that shows it."""

    def row(self) -> dict[str, Any]:
        return {"step": self.step, "duration": self.seconds, "made": self.made, "finished": self.finished}


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _archs(info: dict) -> str:
    archs = info.get("archs") or (info.get("config") or {}).get("archs") or []
    return ", ".join(arch_label(a) for a in archs)


def _sentence(name: str, step: dict, info: dict) -> tuple[str, str | None, dict[str, str], str | None]:
    """(sentence, page, query params, report section) for one step."""
    cfg = info.get("config") or {}
    main = info.get("main_hook") or ""
    hooks = info.get("hooks") or []
    archs = info.get("archs") or cfg.get("archs") or []
    if name == "harvest":
        parts = []
        if "train_tokens" in step:
            parts.append(f"{_n(step['train_tokens'])} training tokens")
        if "heldout_tokens" in step:
            parts.append(f"{_n(step['heldout_tokens'])} held-out tokens")
        where = f" at {len(hooks)} hook{'s' if len(hooks) != 1 else ''}" if hooks else ""
        return f"Harvested {' and '.join(parts) or 'activations'}{where} of {info.get('model', 'the model')}.", \
            None, {}, "summary"
    if name == "train":
        tokens = f" on {_n(cfg['train_tokens'])} tokens each" if isinstance(cfg.get("train_tokens"), int) else ""
        return (f"Trained {len(archs)} SAEs ({_archs(info)}) at {main}{tokens}.", "compare", {"hook": main}, "saes")
    if name == "evaluate":
        return ("Evaluated them on held-out tokens: FVU, L0, dead and dense features, and CE-loss recovered and KL "
                "with each SAE spliced into the model.", "compare", {"hook": main}, "saes")
    if name == "sweep":
        layers = cfg.get("sweep_layers") or []
        return (f"Trained and evaluated {len(archs)} SAEs at each of {len(layers)} more layers "
                f"({', '.join(map(str, layers))}) for the layer sweep.", "compare", {"hook": main}, "saes")
    if name == "probes":
        probes = step.get("probes") or []
        names = {"superposition_entropy": "superposition entropy", "function_tokens": "function tokens",
                 "bfs": "BFS thoughts"}
        return (f"Ran the probes: {', '.join(names.get(p, p) for p in probes) or 'none recorded'}.",
                "superposition", {}, "superposition")
    if name == "features":
        folders = step.get("feature_folders") or []
        what = f" for {len(folders)} SAE{'s' if len(folders) != 1 else ''}" if folders else ""
        count = f"{_n(step['features'])} feature cards" if "features" in step else "Feature cards"
        held = f" from {_n(step['heldout_tokens'])} held-out tokens" if "heldout_tokens" in step else ""
        return f"Wrote {count}{what}{held} (top examples, histograms, logits, neighbours).", "features", {}, "features"
    if name == "report":
        return "Wrote the static report report.html (opens offline).", None, {}, None
    if name == "precompute":
        made = step.get("made") or []
        return (f"Precomputed what the dashboard's first loads need ({', '.join(made) or 'nothing to do'}).",
                None, {}, None)
    extra = ", ".join(f"{k} {_n(v)}" for k, v in step.items() if k not in _INTERNAL and not isinstance(v, (list, dict)))
    return (f"Step {name}" + (f": {extra}." if extra else "."), None, {}, None)


def steps(info: dict) -> list[Step]:
    """The finished steps of run.json ``info`` in the order they ran."""
    out = []
    for name, step in (info.get("steps") or {}).items():
        step = step if isinstance(step, dict) else {}
        made, page, params, section = _sentence(name, step, info)
        seconds = step.get("seconds")
        out.append(Step(name, float(seconds) if isinstance(seconds, (int, float)) else None,
                        str(step.get("finished") or ""), made, page, tuple(sorted(params.items())), section))
    return out
