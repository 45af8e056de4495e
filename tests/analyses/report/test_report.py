"""report.html: every section from a complete run, graceful notes for a partial one, plotly.js inlined
exactly once and nothing fetched from the network; the `superscope report` / `dashboard` commands."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from superscope.analyses.cli import main
from superscope.analyses.report import (
    SECTIONS,
    ReportConfig,
    build_report,
    write_report,
)
from superscope.analyses.report.difficulty import l0_vs_difficulty
from superscope.dashboards.launch import streamlit_command
from tests.fixtures.tiny_run import HOOKS, K, copy_run, tiny_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def report_html(run_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    path = write_report(run_root, ReportConfig(difficulty_tokens=256, n_feature_cards=3), out=out)
    return path.read_text(encoding="utf-8")


def test_complete_run_has_every_section_and_no_failure_notes(report_html):
    for key, title, _ in SECTIONS:
        assert f"<section id='{key}'>" in report_html, key
        assert title in report_html
    notes = re.findall(r"<p class='note'>([^<]*)</p>", report_html)
    assert notes == [], notes
    assert "Feature Choice" in report_html and "Mutual Choice" in report_html
    assert "Spearman" in report_html and "feature " in report_html
    assert "class='tok'" in report_html  # highlighted feature examples


def test_report_is_self_contained(report_html):
    assert len(re.findall(r"\* plotly\.js v\d", report_html)) == 1  # the library, inlined once
    rest = re.sub(r"<script>/\*\*\s*\* plotly\.js v.*?</script>", "", report_html,
                  count=1, flags=re.DOTALL)
    assert len(rest) < len(report_html) - 1_000_000  # the library was that script
    # nothing else refers to the network but the feature cards' links to the dashboard (opened on a click)
    links = re.findall(r"<a class='feature-link' href='(http://localhost:8501/features\?[^']+)'", rest)
    assert len(links) == 3
    rest = re.sub(r"href='http://localhost:8501/features\?[^']+'", "", rest).replace("at http://localhost:8501 (", "")
    assert not re.findall(r"https?://", rest)
    assert not re.search(r"<script[^>]+src=", report_html)
    assert rest.count("Plotly.newPlot(") >= 10


def test_report_formats_labels_contents_and_feature_links(report_html, run_root):
    from urllib.parse import parse_qs, urlsplit

    from superscope.analyses.runs.data import load_run
    from superscope.analyses.runs.labels import LABELS
    # a table of contents with every section and the sub-headings
    toc = re.search(r"<nav class='toc' id='contents'>(.*?)</nav>", report_html, re.S).group(1)
    for key, _, _ in SECTIONS:
        assert f"href='#{key}'" in toc
    assert "href='#saes-1'" in toc and "<h3 id='saes-1'>" in report_html
    # the same labels as the dashboard, with their definitions as tooltips
    fvu = LABELS["FVU"]
    assert f"<th title='{fvu.help}'>{fvu.text}</th>" in report_html.replace("&#x27;", "'")
    assert ">Dead in training</th>" in report_html and ">dead in training %</th>" not in report_html
    # numbers by meaning: L0 spread as ± (3 significant digits), percentages with %
    data = load_run(run_root)
    mc = next(e for e in data.at(data.main_hook) if e.arch == "mutual_choice")
    from superscope.analyses.runs.formatting import fmt
    assert f"<td class=num>{fmt(mc.eval['l0_std'], 'spread')}</td>" in report_html
    assert f"<td class=num>{fmt(100 * mc.eval['dead_frac'], 'points')}</td>" in report_html
    # the steps as a timeline with sentences
    assert "<table class='t steps'>" in report_html and "Harvested" in report_html
    # each feature card links to the dashboard's page for that feature
    link = re.search(r"<a class='feature-link' href='([^']+)'", report_html).group(1).replace("&amp;", "&")
    q = parse_qs(urlsplit(link).query)
    assert q["run"] == [data.name] and q["hook"] == [data.main_hook] and q["sae"][0] in {e.arch for e in data.saes}
    assert f"id='feature-{q['sae'][0]}-{q['feature'][0]}'" in report_html


def test_partial_run_degrades_with_notes(run_root, tmp_path):
    part = copy_run(run_root, tmp_path, "partial")
    (part / "probes" / "bfs.json").unlink()
    (part / "probes" / "superposition_entropy.json").write_text("{not json")
    shutil.rmtree(part / "features")
    shutil.rmtree(part / "heldout")
    (part / "saes" / HOOKS[0] / "topk" / "metrics.json").unlink()
    html, page = build_report(part, ReportConfig(difficulty_tokens=64))
    assert [s.key for s in page.sections] == [k for k, _, _ in SECTIONS]
    assert "probes/bfs.json not written" in html
    assert "superposition_entropy" in html and "not valid JSON" in html
    assert "No feature data" in html
    assert "heldout/" in html  # the difficulty section says what it needs
    assert "metrics.json missing" in html


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a superscope run folder"):
        write_report(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a superscope run description"):
        write_report(tmp_path)


def test_l0_vs_difficulty_topk_flat_fc_mc_vary(run_root):
    res = l0_vs_difficulty(run_root, HOOKS[1], max_tokens=300, n_bins=5)
    assert res.difficulty_from == "topk" and res.n_tokens == 300
    assert set(res.l0_by_bin) == {"TopK", "Feature Choice (batch)", "Feature Choice (threshold)",
                                  "Mutual Choice (batch)", "Mutual Choice (threshold)"}
    assert all(v <= K + 1e-6 for v in res.l0_by_bin["TopK"])
    assert list(res.bin_difficulty) == sorted(res.bin_difficulty)
    mc = res.l0_by_bin["Mutual Choice (batch)"]
    assert max(mc) - min(mc) > 0.1  # MC allocates unevenly
    assert len(res.figure().data) == 5
    json.dumps(res.to_dict())


def test_cli_report_and_dashboard(run_root, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(run_root), "--out", str(out), "--difficulty-tokens", "64",
                 "--n-feature-cards", "1"]) == 0
    assert out.stat().st_size > 1_000_000 and "wrote" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope")]) == 1
    assert "not a superscope run folder" in capsys.readouterr().err
    assert main(["dashboard", "--runs-root", str(tmp_path / "missing")]) == 1
    cmd = streamlit_command("runs", "default", port=8600, headless=True)
    assert cmd[1:4] == ["-m", "superscope.dashboards.server", "run"] and cmd[4].endswith("dashboards/app.py")
    assert cmd[-5:] == ["--", "--runs-root", "runs", "--run", "default"] and "8600" in cmd


def test_degree_plot_thins_long_tails_but_keeps_head_and_last_rank():
    import numpy as np

    from superscope.analyses.report.probe_sections import log_spaced_indices

    assert np.array_equal(log_spaced_indices(50), np.arange(50))
    idx = log_spaced_indices(50_000, head=200, max_points=600)
    assert len(idx) <= 600 and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx[:200], np.arange(200)) and idx[-1] == 49_999


def test_comparison_table_separates_dead_in_training_from_silent_on_held_out(run_root):
    from superscope.analyses.report.sae_sections import comparison_rows
    from superscope.analyses.runs.data import load_run
    from superscope.saes import load_sae
    from superscope.saes.stats import dead_in_training

    data = load_run(run_root)
    rows = comparison_rows(data, HOOKS[1])
    assert {r["architecture"] for r in rows} == {"TopK", "Feature Choice", "Mutual Choice"}
    for entry, row in zip(data.at(HOOKS[1]), rows):
        expected = dead_in_training(load_sae(run_root / "saes" / HOOKS[1] / entry.arch))
        assert row["dead in training %"] == pytest.approx(100 * expected)
        assert row["silent on held-out %"] == pytest.approx(100 * entry.eval["dead_frac"])


def test_psi_interval_is_drawn_where_it_lies_even_above_the_estimate():
    """The basic bootstrap interval may lie wholly above ψ̂; the figure draws [lo, hi] itself."""
    from superscope.analyses.report.probe_sections import psi_figure

    d = {"results": [{"hook": "blocks.3.hook_resid_post", "architecture": "topk", "psi": 2.0, "psi_ci": [2.2, 2.6]}]}
    fig = psi_figure(d)
    ci = next(t for t in fig.data if t.showlegend is False)
    assert [y for y in ci.y if y is not None] == [2.2, 2.6] and all(t.error_y.array is None for t in fig.data)
