"""Short displays for result dataclasses: a few-line ``__repr__`` and a notebook HTML table.

A result class lists its headline numbers once, as ``(label, value, format)`` fields, and inherits
``ResultRepr``; the arrays stay attributes (the repr names only their size) and ``to_dict`` is untouched.
Declare the dataclass with ``repr=False`` so the generated repr (which prints every array) is not used.

Formats:
    "num"   — 3 significant digits, thousands separators from 1,000 up (1215.79 → "1,220")
    "pct"   — a fraction shown as a percentage to 3 significant digits (0.0123 → "1.23 %")
    "count" — an integer with thousands separators (4096 → "4,096")
    "text"  — str(value)
    "size"  — an array's shape or a list's, tuple's or dict's length, never its items
    "pm"    — a (mean, spread) pair as "mean ± spread"
    "ci"    — an (estimate, low, high) triple as "estimate [low, high]"
A tuple value in "num"/"pct" prints as an interval "[lo, hi]"; None prints as "—".
"""

from __future__ import annotations

import html
import math
from typing import Any

Headline = tuple[str, Any, str]
"""(label, value, format): one headline number of a result."""

_WIDTH = 100  # characters per repr line


def format_number(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits; thousands separators instead of exponents below 1e15."""
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    if magnitude >= digits - 1 and abs(v) < 1e15:
        return f"{round(v, digits - 1 - magnitude):,.0f}"
    if magnitude < -4:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def summarise_size(value: Any) -> str:
    """Length or shape of a container, e.g. "len 1,501" or "shape 4,096 × 128"; never its items."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return f"len {len(value):,}" if hasattr(value, "__len__") else type(value).__name__
    return "shape " + " × ".join(f"{int(n):,}" for n in shape)


def format_value(value: Any, fmt: str) -> str:
    """One headline value as text, by its format (see the module docstring)."""
    if value is None:
        return "—"
    if fmt == "size":
        return summarise_size(value)
    if fmt == "text":
        return str(value)
    if fmt == "count":
        return f"{int(value):,}"
    if fmt == "pm":
        mean, spread = value
        return f"{format_number(mean)} ± {format_number(spread)}"
    if fmt == "ci":
        estimate, low, high = value
        return f"{format_number(estimate)} [{format_number(low)}, {format_number(high)}]"
    one = (lambda v: f"{format_number(100 * float(v))} %") if fmt == "pct" else format_number
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(one(v) for v in value) + "]"
    if fmt in ("num", "pct"):
        return one(value)
    raise ValueError(f"unknown headline format {fmt!r}; use num, pct, count, text, size, pm or ci")


class ResultRepr:
    """Mixin for result dataclasses: ``headline()`` feeds a short ``__repr__`` and ``_repr_html_``."""

    def headline(self) -> list[Headline]:
        """The few numbers a reader wants first, as (label, value, format)."""
        raise NotImplementedError(f"{type(self).__name__} must list its headline numbers")

    def _headline_text(self) -> list[tuple[str, str]]:
        return [(label, format_value(value, fmt)) for label, value, fmt in self.headline()]

    def __repr__(self) -> str:
        lines, line, sep = [], f"{type(self).__name__}:", " "
        for label, text in self._headline_text():  # wrap between fields, never inside one
            field = f"{label} {text}"
            if sep != " " and len(line) + 3 + len(field) > _WIDTH:
                lines.append(line)
                line, sep = " ", " "
            line, sep = line + sep + field, " · "
        return "\n".join([*lines, line])

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
                       f"<td style='text-align:right'>{html.escape(text)}</td></tr>"
                       for label, text in self._headline_text())
        return f"<table><caption>{html.escape(type(self).__name__)}</caption>{rows}</table>"
