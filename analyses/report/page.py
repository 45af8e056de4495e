"""A self-contained HTML page: sections, tables, notes, plotly figures with plotly.js inlined once.

The first figure is written with ``include_plotlyjs="inline"`` (the whole library inside the page),
every later one with ``include_plotlyjs=False``; no MathJax, no CDN: the file works offline from disk.
Tables show their columns under the labels of ``analyses.runs.labels`` (the definition as the
header's tooltip) and numbers formatted by meaning (``analyses.runs.formatting``), as the dashboard
does. The page opens with a table of contents of its sections and their sub-headings.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import plotly.graph_objects as go

from superscope.analyses.runs.formatting import fmt_num, is_missing
from superscope.analyses.runs.labels import display_rows

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
table.t th[title] { cursor: help; text-decoration: underline dotted #999; }
nav.toc { background: #f7f9fb; border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 18px; margin: 14px 0;
          max-width: 900px; font-size: 14px; }
nav.toc ol { margin: 4px 0; padding-left: 22px; }
nav.toc a { color: #1f4f82; text-decoration: none; }
nav.toc ol ol { font-size: 13px; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
table.t td:first-child, table.t th:first-child { text-align: left; }
p.note { background: #fff6e0; border-left: 4px solid #f0b429; padding: 6px 10px; font-size: 14px; }
p.hint { background: #eef4fb; border-left: 4px solid #7aa7d9; padding: 6px 10px; font-size: 14px; }
p.caption { color: #555; font-size: 13px; max-width: 1000px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.ex { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; margin: 2px 0; white-space: pre-wrap; }
.ex .act { display: inline-block; min-width: 52px; color: #777; }
.tok { border-radius: 2px; }
.band { margin-top: 4px; font-size: 13px; }
.fstats { font-size: 13px; color: #444; margin: 2px 0; }
"""


def fmt(v) -> str:
    """A cell of unknown meaning: numbers to 3 significant digits (``formatting.fmt_num``), None / NaN as '–'."""
    if is_missing(v):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return fmt_num(v)
    return str(v)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """An HTML table of ``rows`` (dicts), columns in first-seen order unless given: headers are the
    columns' labels with their definitions as tooltips, cells formatted by the columns' formats."""
    if not rows:
        return note("no rows")
    cols, labels, cells = display_rows(rows, columns)
    head = "".join(f"<th title='{html.escape(lab.help, quote=True)}'>{html.escape(lab.text)}</th>" if lab.help
                   else f"<th>{html.escape(lab.text)}</th>" for lab in labels)
    kinds = [lab.kind for lab in labels]
    body = "".join("<tr>" + "".join(f"<td{'' if k == 'text' else ' class=num'}>{html.escape(c)}</td>"
                                    for c, k in zip(row, kinds)) + "</tr>" for row in cells)
    return f"<table class='t'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def hint(text: str) -> str:
    """Not a failure: an optional analysis not run yet (with the command that runs it), or a caveat."""
    return f"<p class='hint'>{html.escape(text)}</p>"


def caption(text: str) -> str:
    return f"<p class='caption'>{html.escape(text)}</p>"


@dataclass
class Section:
    key: str
    title: str
    parts: list[str] = field(default_factory=list)


class Page:
    """Collects sections; ``figure`` embeds plotly figures, inlining plotly.js with the first one."""

    def __init__(self, title: str, subtitle: str = "", figure_format: str = "png"):
        if figure_format not in ("png", "svg"):
            raise ValueError(f"figure_format must be 'png' or 'svg', got {figure_format!r}")
        self.title, self.subtitle, self.figure_format = title, subtitle, figure_format
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
                           config={"displaylogo": False, "responsive": True,
                                   "toImageButtonOptions": {"format": self.figure_format, "scale": 2,
                                                            "filename": f"figure_{self.n_figures}"}})

    def render(self) -> str:
        nav = "".join(f"<a href='#{s.key}'>{html.escape(s.title)}</a>" for s in self.sections)
        toc, bodies = [], []
        for s in self.sections:
            text, subs = _anchor_subheadings(s.key, "\n".join(s.parts))
            items = "".join(f"<li><a href='#{a}'>{t}</a></li>" for a, t in subs)
            toc.append(f"<li><a href='#{s.key}'>{html.escape(s.title)}</a>" + (f"<ol>{items}</ol>" if items else "")
                       + "</li>")
            bodies.append(f"<section id='{s.key}'><h2>{html.escape(s.title)}</h2>\n{text}</section>")
        body = f"<nav class='toc' id='contents'><b>Contents</b><ol>{''.join(toc)}</ol></nav>\n" + "\n".join(bodies)
        return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>"
                f"<header><h1>{html.escape(self.title)}</h1><div>{html.escape(self.subtitle)}</div></header>"
                f"<nav>{nav}</nav><main>{body}</main></body></html>\n")


_H3 = re.compile(r"<h3>(.*?)</h3>", re.S)


def _anchor_subheadings(key: str, text: str) -> tuple[str, list[tuple[str, str]]]:
    """Give each ``<h3>`` of a section an id (``<key>-<i>``); returns the text and [(id, heading html)]."""
    subs: list[tuple[str, str]] = []

    def anchor(m: re.Match) -> str:
        subs.append((f"{key}-{len(subs) + 1}", m.group(1)))
        return f"<h3 id='{subs[-1][0]}'>{m.group(1)}</h3>"
    return _H3.sub(anchor, text), subs
