"""The report's BFS section leads with the informative gaps (frontier > reachable > not reachable) and says
that optimal > frontier is partly built in (the score is the logit the curriculum supervises)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from superscope.analyses.report import probe_sections as P
from superscope.analyses.report.page import Page
from superscope.analyses.report.sections import add_bfs


@pytest.fixture(scope="module")
def bfs_dict():
    from superscope.probes.bfs.checkpoint import load_bfs_checkpoint
    from superscope.probes.bfs.generator import generate_problems
    from superscope.probes.bfs.probe import ProbeConfig, bfs_probe
    ck = load_bfs_checkpoint("coconut")
    cfg = ProbeConfig(n_problems=12, n_bootstrap=20, batch_size=12)
    return bfs_probe(ck.model, ck.vocab, generate_problems(ck.graph, cfg.n_problems, cfg.seed), cfg).to_dict()


def test_gap_rows_put_the_built_in_gap_last(bfs_dict):
    r = P.bfs_result(bfs_dict)
    rows = P.bfs_gap_rows(r)
    assert [row["step"] for row in rows] == list(r.steps)
    assert list(rows[0]) == ["step", "frontier − reachable", "reachable − not reachable", "optimal − frontier (built in)"]
    first = next(g for g in r.score_gaps if g.step == r.steps[0] and g.upper == "frontier")
    from superscope.analyses.runs.formatting import fmt_ci, fmt_num
    assert rows[0]["frontier − reachable"] == f"{fmt_num(first.gap)} {fmt_ci(first.ci_low, first.ci_high)}"


def test_bfs_section_leads_with_the_informative_gaps_and_says_what_is_built_in(bfs_dict):
    page = Page("t")
    add_bfs(page, SimpleNamespace(probes={"bfs": bfs_dict}, root="run"), None)
    html = page.render()
    section = html[html.index("<section id='bfs'>"):]
    assert "built in" in section and "tied LM head" in section
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", section)
    assert headers[0] == "Step" and headers[1:4] == ["frontier − reachable", "reachable − not reachable", "optimal − frontier (built in)"]
    assert section.index("frontier − reachable") < section.index("<pre>")  # before the full table
    assert "<p class='note'>" not in section  # a complete run's report has no notes
