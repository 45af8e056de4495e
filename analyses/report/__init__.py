"""``runs/<run>/report.html``: one self-contained HTML report of a run (plotly.js inlined; opens offline).

Sections: run summary (run.json); TopK vs Feature Choice vs Mutual Choice (table, FVU / CE-loss
recovered / KL / dead %, per-token L0 distributions, density, training curves, layer sweep); per-token
L0 against token difficulty (the adaptive-allocation claim of FC / MC, computed on held-out
activations); superposition entropy per layer and architecture with convergence; function tokens
(coverage table, coverage and degree plots, loss split); the BFS probe when probes/bfs.json exists;
feature cards from features/. A missing input turns its section into a note, never an error.

    superscope report runs/default            # writes runs/default/report.html
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from superscope.analyses.report import eval_sections, sections, steering_sections
from superscope.analyses.report.page import Page, note
from superscope.analyses.runs.data import load_run
from superscope.saes.atomic_io import write_text

log = logging.getLogger(__name__)

SECTIONS = (
    ("summary", "Run summary", sections.add_summary),
    ("saes", "TopK vs Feature Choice vs Mutual Choice", sections.add_saes),
    ("difficulty", "Adaptive allocation: per-token L0 vs difficulty", sections.add_difficulty),
    ("superposition", "Superposition entropy per layer and architecture", sections.add_superposition),
    ("function_tokens", "Function tokens", sections.add_function_tokens),
    ("bfs", "BFS superposition in continuous thoughts", sections.add_bfs),
    ("evals", "Evaluation suite", eval_sections.add_evals),
    ("features", "Feature cards", sections.add_feature_cards),
    ("steering", "Steering: edit a latent, watch the model", steering_sections.add_steering),
)


@dataclass
class ReportConfig:
    """What the report computes beyond reading the run folder."""

    difficulty_tokens: int = 4096
    """Held-out tokens encoded for the per-token L0 vs difficulty plot."""
    n_feature_cards: int = 6
    """Feature cards shown (spread over the main hook's architectures and over firing density)."""
    dashboard_url: str = "http://localhost:8501"
    """Base URL of the dashboard that the feature cards link to (a report knows no server: this is where
    `superscope dashboard` listens by default); each card opens <url>/features?run=…&hook=…&sae=…&feature=…"""
    figure_format: Literal["png", "svg"] = "png"
    """Format of the figures' download button (the camera in each figure's toolbar)."""

    def __post_init__(self) -> None:
        if self.difficulty_tokens < 16:
            raise ValueError(f"difficulty_tokens must be ≥ 16, got {self.difficulty_tokens}")
        if self.n_feature_cards < 0:
            raise ValueError(f"n_feature_cards must be ≥ 0, got {self.n_feature_cards}")


def build_report(run_root: str | Path, cfg: ReportConfig | None = None) -> tuple[str, Page]:
    """The report's HTML and its ``Page`` (sections, figure count)."""
    cfg = cfg or ReportConfig()
    data = load_run(run_root)
    page = Page(f"superscope report — {data.name}",
                f"{data.info.get('model', '')} · {len(data.saes)} SAEs · written {time.strftime('%Y-%m-%d %H:%M')}",
                figure_format=cfg.figure_format)
    for key, title, add in SECTIONS:
        n = len(page.sections)
        try:
            add(page, data, cfg)
        except Exception as err:  # a broken input must not take the whole report down
            log.warning("report section %s failed: %s", key, err, exc_info=True)
            if len(page.sections) > n:
                page.sections[n].parts.append(note(f"This section could not be completed: {err}"))
            else:
                page.section(key, title).parts.append(note(f"This section could not be built: {err}"))
    return page.render(), page


def write_report(run_root: Path, cfg: ReportConfig | None = None, out: Path | None = None) -> Path:
    """Write ``<run_root>/report.html`` (or ``out``) atomically; returns its path."""
    run_root = Path(run_root)
    text, _ = build_report(run_root, cfg)
    return write_text(Path(out) if out is not None else run_root / "report.html", text)
