"""A self-contained HTML page: sections, tables, notes, plotly figures with plotly.js inlined once.

The first figure is written with ``include_plotlyjs="inline"`` (the whole library inside the page),
every later one with ``include_plotlyjs=False``; no MathJax, no CDN: the file works offline from disk.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import plotly.graph_objects as go

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 0; color: #222; }
header { background: #1f2d3d; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
nav { padding: 8px 28px; background: #eef2f6; position: sticky; top: 0; z-index: 10; }
nav a { margin-right: 14px; color: #1f4f82; text-decoration: none; font-size: 14px; }
main { padding: 8px 28px 40px 28px; max-width: 1400px; }
section { margin-top: 28px; border-top: 1px solid #ddd; }
h2 { font-size: 19px; margin: 16px 0 8px 0; }
h3 { font-size: 15px; margin: 14px 0 6px 0; }
table.t { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px 0; }
table.t th, table.t td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.t th { background: #f3f5f7; }
table.t td:first-child, table.t th:first-child { text-align: left; }
p.note { background: #fff6e0; border-left: 4px solid #f0b429; padding: 6px 10px; font-size: 14px; }
p.caption { color: #555; font-size: 13px; max-width: 1000px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.ex { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; margin: 2px 0; white-space: pre-wrap; }
.ex .act { display: inline-block; min-width: 52px; color: #777; }
.tok { border-radius: 2px; }
.band { margin-top: 4px; font-size: 13px; }
.fstats { font-size: 13px; color: #444; margin: 2px 0; }
"""


def fmt(v) -> str:
    """Numbers to 4 significant digits, None / NaN as '–'."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """An HTML table of ``rows`` (dicts), columns in first-seen order unless given."""
    if not rows:
        return note("no rows")
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table class='t'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def caption(text: str) -> str:
    return f"<p class='caption'>{html.escape(text)}</p>"


@dataclass
class Section:
    key: str
    title: str
    parts: list[str] = field(default_factory=list)


class Page:
    """Collects sections; ``figure`` embeds plotly figures, inlining plotly.js with the first one."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.sections: list[Section] = []
        self._plotly_written = False
        self.n_figures = 0

    def section(self, key: str, title: str) -> Section:
        s = Section(key, title)
        self.sections.append(s)
        return s

    def figure(self, fig: go.Figure) -> str:
        include = "inline" if not self._plotly_written else False
        self._plotly_written = True
        self.n_figures += 1
        return fig.to_html(full_html=False, include_plotlyjs=include, include_mathjax=False,
                           config={"displaylogo": False, "responsive": True})

    def render(self) -> str:
        nav = "".join(f"<a href='#{s.key}'>{html.escape(s.title)}</a>" for s in self.sections)
        body = "\n".join(f"<section id='{s.key}'><h2>{html.escape(s.title)}</h2>\n" + "\n".join(s.parts) + "</section>"
                         for s in self.sections)
        return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>"
                f"<header><h1>{html.escape(self.title)}</h1><div>{html.escape(self.subtitle)}</div></header>"
                f"<nav>{nav}</nav><main>{body}</main></body></html>\n")
