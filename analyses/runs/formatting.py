"""Numbers as a reader wants them, by meaning — the one formatter of the report and the dashboard.

Built on ``saes.result_repr`` (what a result prints in a notebook), so a number reads the same in a
notebook, the report and the dashboard:

    "num"     3 significant digits, thousands separators from 1,000 up   0.21012 → "0.210", 1215.79 → "1,220"
    "count"   an integer with thousands separators                      8113 → "8,113"
    "pct"     a fraction as a percentage, 3 significant digits           0.0123 → "1.23 %"
    "points"  a number already in percent                              12.345 → "12.3 %"
    "spread"  a standard deviation or half-width shown after its mean    22.6098 → "± 22.6"
    "pm"      a (mean, spread) pair                                      (36.1, 22.6) → "36.1 ± 22.6"
    "ci"      a (low, high) pair                                         (2.18, 2.29) → "[2.18, 2.29]"
    "sci"     a small rate (firing density) in scientific notation       1.2e-5 → "1.20e-05"
    "seconds" a duration                                                178.5 → "2 min 59 s"
    "id"      an identifier (feature number, step) as a plain integer    4096 → "4096"
    "text"    str(value)
None, NaN and the empty string print as "–". Tokens print through ``visible_token`` (newline ⏎, tab ⇥, a
token of spaces as ␣), so a whitespace token is not an empty cell.
"""

from __future__ import annotations

import math
from typing import Any

from superscope.saes.result_repr import format_number

FORMATS = ("num", "count", "pct", "points", "spread", "pm", "ci", "sci", "seconds", "id", "text")
MISSING = "–"


def is_missing(value: Any) -> bool:
    """None, NaN, or an empty string."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def fmt_num(value: float, digits: int = 3) -> str:
    """3 significant digits; thousands separators from 1,000 up; exponents below 1e-4."""
    return MISSING if is_missing(value) else format_number(value, digits)


def fmt_count(value: float) -> str:
    """An integer count with thousands separators."""
    return MISSING if is_missing(value) else f"{round(float(value)):,}"


def fmt_pct(fraction: float) -> str:
    """A fraction in [0, 1] as a percentage to 3 significant digits."""
    return MISSING if is_missing(fraction) else f"{format_number(100 * float(fraction))} %"


def fmt_points(percent: float) -> str:
    """A value already in percent (0–100) to 3 significant digits."""
    return MISSING if is_missing(percent) else f"{format_number(float(percent))} %"


def fmt_pm(mean: float, spread: float) -> str:
    """Mean ± spread (standard deviation or CI half-width), both to 3 significant digits."""
    if is_missing(mean):
        return MISSING
    return fmt_num(mean) if is_missing(spread) else f"{fmt_num(mean)} ± {fmt_num(spread)}"


def fmt_ci(low: float, high: float) -> str:
    """A confidence interval [low, high]."""
    return MISSING if is_missing(low) or is_missing(high) else f"[{fmt_num(low)}, {fmt_num(high)}]"


def fmt_sci(value: float) -> str:
    """Scientific notation with 3 significant digits (firing densities span many decades)."""
    if is_missing(value):
        return MISSING
    return "0" if float(value) == 0 else f"{float(value):.2e}"


def fmt_seconds(seconds: float) -> str:
    """A duration: "0.42 s", "12.3 s", "2 min 59 s", "1 h 02 min"."""
    if is_missing(seconds):
        return MISSING
    s = float(seconds)
    if s < 60:
        return f"{format_number(s)} s"
    if s < 3600:
        m, r = divmod(round(s), 60)
        return f"{m} min {r:02d} s"
    h, r = divmod(round(s / 60), 60)
    return f"{h} h {r:02d} min"


def fmt(value: Any, kind: str = "num") -> str:
    """``value`` formatted as ``kind`` (one of ``FORMATS``); a non-number under a numeric kind prints as text."""
    if kind not in FORMATS:
        raise ValueError(f"unknown number format {kind!r}; use one of {', '.join(FORMATS)}")
    if kind == "pm":
        return fmt_pm(*value) if isinstance(value, (tuple, list)) else fmt_num(value)
    if kind == "ci":
        return fmt_ci(*value) if isinstance(value, (tuple, list)) else MISSING if is_missing(value) else str(value)
    if is_missing(value):
        return MISSING
    if kind == "text" or isinstance(value, str) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "id":
        return str(int(value)) if float(value).is_integer() else str(value)
    if kind == "spread":
        return f"± {fmt_num(value)}"
    return {"num": fmt_num, "count": fmt_count, "pct": fmt_pct, "points": fmt_points, "sci": fmt_sci,
            "seconds": fmt_seconds}[kind](value)


def guess_kind(column: str, values: list[Any]) -> str:
    """The format of a column that has no label: counts for integers, text for strings, else "num"."""
    present = [v for v in values if not is_missing(v)]
    if present and all(isinstance(v, str) for v in present):
        return "text"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "count"
    if column.endswith("%"):
        return "points"
    return "num"


def visible_token(token: str, spaces: bool = True) -> str:
    """A token as text a reader can see: newline → ⏎, tab → ⇥, and (``spaces``; not inside running text) a
    token of only spaces → one ␣ per space."""
    token = str(token).replace("\n", "⏎").replace("\t", "⇥")
    return "␣" * len(token) if spaces and token and not token.strip(" ") else token
