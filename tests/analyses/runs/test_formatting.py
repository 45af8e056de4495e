"""Numbers by meaning (analyses.runs.formatting), column labels (analyses.runs.labels) and the steps
timeline (analyses.runs.timeline)."""

from __future__ import annotations

import math

import pytest

from superscope.analyses.runs import labels as L
from superscope.analyses.runs.formatting import fmt, fmt_ci, fmt_pm, fmt_seconds, guess_kind
from superscope.analyses.runs.timeline import steps


@pytest.mark.parametrize(("value", "kind", "text"), [
    (0.21012, "num", "0.21"), (1215.7924, "num", "1,220"), (22.6098, "num", "22.6"), (2.2894, "num", "2.29"),
    (0.000012345, "num", "1.23e-05"), (8113, "count", "8,113"), (8113.0, "count", "8,113"),
    (0.0123, "pct", "1.23 %"), (0.5, "pct", "50 %"), (12.345, "points", "12.3 %"),
    (22.6098, "spread", "± 22.6"), ((36.1, 22.61), "pm", "36.1 ± 22.6"), ((2.18, 2.2894), "ci", "[2.18, 2.29]"),
    (1.2e-5, "sci", "1.20e-05"), (0.0, "sci", "0"), (178.54, "seconds", "2 min 59 s"), (3.21, "seconds", "3.21 s"),
    (7300, "seconds", "2 h 02 min"), (4096, "id", "4096"), ("SmolLM2-135M-Instruct", "text", "SmolLM2-135M-Instruct"),
    (None, "num", "–"), (math.nan, "pct", "–"), ("", "count", "–"), (True, "num", "yes"),
])
def test_formats_by_meaning(value, kind, text):
    assert fmt(value, kind) == text


def test_spreads_intervals_and_unknown_kind():
    assert fmt_pm(0.5, None) == "0.5" and fmt_pm(None, 1.0) == "–"
    assert fmt_ci(None, 2.0) == "–"
    assert fmt_seconds(59.96) == "60 s" and fmt_seconds(60) == "1 min 00 s"
    assert fmt("hook name", "num") == "hook name"  # text in a numeric column prints as is
    with pytest.raises(ValueError, match="unknown number format 'percent'"):
        fmt(1.0, "percent")


def test_guessed_kinds():
    assert guess_kind("x", [1, 2, None]) == "count"
    assert guess_kind("x", ["a", None]) == "text"
    assert guess_kind("share %", [1.5]) == "points"
    assert guess_kind("x", [1.5, 2]) == "num"


def test_labels_have_help_and_valid_formats():
    for key, lab in L.LABELS.items():
        assert lab.text and lab.help, key
    assert L.label("mean_act").text == "Mean activation" and "mean activation" in L.label("mean_act").help.lower()
    unknown = L.label("something new", [1, 2])
    assert (unknown.text, unknown.help, unknown.kind) == ("something new", "", "count")
    with pytest.raises(ValueError, match="unknown format"):
        L.Label("x", "y", "bogus")
    with pytest.raises(TypeError, match="must be a Label"):
        L.register({"x": ("x", "y")})


def test_register_adds_a_label():
    L.register({"test_only_col": L.Label("Test column", "a definition", "pct")})
    try:
        cols, labels, cells = L.display_rows([{"test_only_col": 0.25, "FVU": 0.21012, "L0 std": 22.6098}])
        assert [lab.text for lab in labels] == ["Test column", "FVU", "L0 spread"]
        assert cells == [["25 %", "0.21", "± 22.6"]]
    finally:
        del L.LABELS["test_only_col"]


def test_display_rows_of_the_comparison_columns():
    rows = [{"architecture": "TopK", "FVU": 0.2101, "L0 mean": 32.0, "L0 std": 0.0, "dead in training %": 1.2345,
             "eval tokens": 8113, "train s": 75.3, "note": ""},
            {"architecture": "Mutual Choice", "FVU": math.nan, "L0 mean": 36.12, "L0 std": 22.6098,
             "dead in training %": None, "eval tokens": 8113, "train s": 130.0, "note": "metrics.json missing"}]
    cols, labels, cells = L.display_rows(rows)
    assert cols[0] == "architecture" and labels[0].text == "SAE"
    assert cells[0] == ["TopK", "0.21", "32", "± 0", "1.23 %", "8,113", "1 min 15 s", "–"]
    assert cells[1] == ["Mutual Choice", "–", "36.1", "± 22.6", "–", "8,113", "2 min 10 s", "metrics.json missing"]


def test_steps_timeline_sentences_and_links():
    info = {"model": "embedded:SmolLM2-135M-Instruct", "main_hook": "blocks.15.hook_resid_post",
            "hooks": ["blocks.15.hook_resid_post", "blocks.3.hook_resid_post"], "archs": ["topk", "mutual_choice"],
            "config": {"train_tokens": 640000, "sweep_layers": [3]},
            "steps": {"harvest": {"done": True, "seconds": 178.54, "finished": "2026-12-06T03:55:09",
                                  "train_tokens": 158587, "heldout_tokens": 8113},
                      "train": {"done": True, "seconds": 300.0},
                      "features": {"done": True, "seconds": 40, "feature_folders": ["h/topk", "h/mutual_choice"],
                                   "features": 9216, "heldout_tokens": 8113, "elapsed_s": 40.0},
                      "custom": {"done": True, "seconds": 1.5, "widgets": 3, "big": [1, 2]}}}
    got = steps(info)
    assert [s.step for s in got] == ["harvest", "train", "features", "custom"]
    assert got[0].made == ("Harvested 158,587 training tokens and 8,113 held-out tokens at 2 hooks of "
                           "embedded:SmolLM2-135M-Instruct.")
    assert got[1].made == "Trained 2 SAEs (TopK, Mutual Choice) at blocks.15.hook_resid_post on 640,000 tokens each."
    assert (got[1].page, dict(got[1].params), got[1].section) == ("compare", {"hook": "blocks.15.hook_resid_post"},
                                                                  "saes")
    assert got[2].made.startswith("Wrote 9,216 feature cards for 2 SAEs from 8,113 held-out tokens")
    assert got[3].made == "Step custom: widgets 3." and got[3].page is None
    assert got[0].row() == {"step": "harvest", "duration": 178.54, "made": got[0].made,
                            "finished": "2026-12-06T03:55:09"}
    assert steps({}) == []


def test_visible_token_shows_whitespace():
    from superscope.analyses.runs.formatting import visible_token

    assert visible_token("\n") == "⏎" and visible_token("\t x") == "⇥ x"
    assert visible_token(" ") == "␣" and visible_token("  ") == "␣␣" and visible_token(" the") == " the"
    assert visible_token(" ", spaces=False) == " "  # inside running text a space stays a space
