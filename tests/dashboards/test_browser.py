"""The dashboard and the report in a real browser: headless Chromium (Debian's package) driven by
Playwright against `streamlit run` on localhost. Every page is opened, its content checked and a
screenshot saved to artifacts/screenshots/; the report is opened from disk with the network blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from superscope.dashboards.browser import (
    browser_missing,
    chromium,
    serve,
    wait_rendered,
)

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "screenshots"
# url path → (title, texts that must appear, least number of plotly charts)
PAGES = {
    "overview": ("Run tiny", ["Headline: TopK, Feature Choice and Mutual Choice", "Steps"], 1),
    "features": ("Feature browser", ["Top activations", "Quantile bands", "features match", "Nearest features"], 1),
    "compare": ("SAE comparison", ["Details", "L0 distribution", "L0 vs token difficulty", "Layer sweep"], 2),
    "live": ("Live prompt", ["Type a prompt"], 0),
    "superposition": ("Superposition", ["effective features per neuron"], 2),
    "function_tokens": ("Function tokens", ["A token's feature set", "distinct features", "Degree vs rank"], 1),
    "bfs": ("BFS thoughts", ["Ordered optimal > frontier", "Checkpoints"], 3),
    "evals": ("Evaluations", ["SAE × metric at", "Sparse probing", "Absorption", "No L0 sweep yet"], 0),
    "steering": ("Steering", ["find latents", "α or clamp value"], 0),
}


@pytest.fixture(scope="module")
def browser():
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tiny_root):
    # As a user starts it: `superscope dashboard`'s command line, from the clone root (which is then on
    # the server's sys.path: the root folders must not shadow installed packages there).
    with serve(tiny_root.parent, tiny_root.name, cwd=REPO) as url:
        yield url


def _problems(page) -> list[str]:
    return [e.inner_text() for e in page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').all()]


def test_every_page_in_chromium(browser, server, tiny_root):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 2000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for path, (title, texts, charts) in PAGES.items():
        page.goto(f"{server}/{'' if path == 'overview' else path}?run={tiny_root.name}")  # the default page is /
        wait_rendered(page, title)
        for text in texts:
            page.get_by_text(text, exact=False).filter(visible=True).first.wait_for(timeout=60_000)
        if charts:
            page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {charts}",
                                   timeout=60_000)
        assert _problems(page) == [], path
        assert page.get_by_text("Page not found").count() == 0, path
        if path == "features":
            assert page.locator("span.tok").count() > 20  # highlighted example tokens
        page.screenshot(path=str(SHOTS / f"{path}.png"))
    assert errors == []


def test_lazy_tab_in_chromium(browser, server, tiny_root):
    """The Evaluations page runs only its open tab; clicking another draws its figures and names it in the URL."""
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(f"{server}/evals?run={tiny_root.name}")
    wait_rendered(page, "Evaluations")
    assert page.locator(".js-plotly-plot").count() == 0  # Pareto: no sweep in the tiny run
    page.get_by_role("tab", name="Absorption").click()
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=60_000)
    page.get_by_text("weak below 1B parameters", exact=False).first.wait_for(timeout=60_000)
    assert "evals_tab=Absorption" in page.url and _problems(page) == []


def test_feature_search_in_chromium(browser, server, tiny_root):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(f"{server}/features?run={tiny_root.name}")
    wait_rendered(page, "Feature browser")
    before = page.get_by_text("features match").first.inner_text()
    box = page.get_by_label("token contains")
    box.fill(" and")
    box.press("Enter")
    page.wait_for_function("(b) => { const e = [...document.querySelectorAll('p')].find(p => p.innerText.includes('features match'));"
                           " return e && e.innerText !== b; }", arg=before, timeout=60_000)
    assert _problems(page) == []


def test_refused_run_in_chromium(browser, server):
    page = browser.new_page()
    page.goto(f"{server}/?run=..%2F..%2Fetc")
    page.get_by_text("refused", exact=False).first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_report_offline_in_chromium(browser, tiny_root, tmp_path):
    from superscope.analyses.report import SECTIONS, ReportConfig, build_report
    html, built = build_report(tiny_root, ReportConfig(difficulty_tokens=256, n_feature_cards=3))
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.as_uri())
    page.wait_for_function(f"() => window.Plotly && document.querySelectorAll('.js-plotly-plot .main-svg').length"
                           f" >= {built.n_figures}", timeout=60_000)
    for key, title, _ in SECTIONS:
        assert page.locator(f"section#{key} h2").inner_text() == title
    assert page.locator(".js-plotly-plot").count() == built.n_figures
    assert requests == [] and errors == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
    context.close()


def test_steps_timeline_in_chromium(browser, server, tiny_root):
    """Overview → Steps: one line per step with its duration, a sentence and a link to the page showing it."""
    from superscope.analyses.runs.formatting import fmt_seconds
    from superscope.analyses.runs.timeline import steps
    from superscope.saes.atomic_io import read_json
    info = read_json(tiny_root / "run.json")
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{server}/?run={tiny_root.name}")
    wait_rendered(page, f"Run {tiny_root.name}")
    for s in steps(info):
        page.get_by_text(s.made, exact=True).first.wait_for(timeout=30_000)
        assert page.get_by_text(fmt_seconds(s.seconds), exact=True).count() >= 1
    link = page.locator('[data-testid="stPageLink-NavLink"]', has_text="Feature browser").first
    link.click()
    wait_rendered(page, "Feature browser")
    assert _problems(page) == []


def test_formatted_number_in_chromium(browser, server, tiny_root):
    """Numbers by meaning: Overview's timeline shows each step's seconds as a duration (fmt_seconds), never
    the raw float of run.json; the Feature browser's counts carry thousands separators' format (fmt_count)."""
    from superscope.analyses.runs.formatting import fmt_count, fmt_seconds
    from superscope.analyses.runs.timeline import steps
    from superscope.saes.atomic_io import read_json
    timed = [s for s in steps(read_json(tiny_root / "run.json")) if s.seconds]
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{server}/?run={tiny_root.name}")
    wait_rendered(page, f"Run {tiny_root.name}", timeout_ms=120_000)
    page.get_by_text("Steps").first.wait_for(timeout=60_000)
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert timed and all(fmt_seconds(s.seconds) in text for s in timed)
    raw = [repr(float(s.seconds)) for s in timed if len(repr(float(s.seconds))) > 6]  # e.g. 12.345678
    assert not any(r in text for r in raw)
    total = sum(s.seconds for s in timed)
    assert f"{fmt_seconds(total)} in all" in text
    page.goto(f"{server}/features?run={tiny_root.name}")
    wait_rendered(page, "Feature browser", timeout_ms=120_000)
    caption = page.get_by_text("held-out tokens ·").first.inner_text()
    n_tokens = read_json(next((tiny_root / "features").glob("*/*/index.json")))["n_tokens"]
    assert fmt_count(n_tokens) in caption


def test_deep_link_reopens_the_feature_in_chromium(browser, server, tiny_root):
    """A feature's URL (run, hook, SAE, feature) opens that feature; the page shows the same URL to copy."""
    from urllib.parse import parse_qs, urlsplit

    from tests.fixtures.tiny_run import HOOKS
    hook, arch, feature = HOOKS[0], "feature_choice", 5
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{server}/features?run={tiny_root.name}&hook={hook}&sae={arch}&feature={feature}")
    wait_rendered(page, "Feature browser")
    page.get_by_role("heading", name=f"Feature {feature}").first.wait_for(timeout=30_000)
    # the selectboxes take the URL's hook and SAE (polled: Streamlit may draw the heading before the boxes settle)
    boxes_js = ("() => [...document.querySelectorAll('[data-testid=stSelectbox]')].map(e => e.innerText + ' ' +"
                " [...e.querySelectorAll('input')].map(i => i.value).join(' '))")
    try:
        page.wait_for_function(f"([hook, label]) => {{ const b = ({boxes_js})(); return b.some(x => x.includes(hook))"
                               " && b.some(x => x.includes(label)); }", arg=[hook, "Feature Choice"], timeout=30_000)
    except Exception as err:  # show what the boxes hold
        raise AssertionError(f"selectboxes do not show {hook} / Feature Choice: {page.evaluate(boxes_js)}") from err
    page.get_by_role("button", name=f"Link to feature {feature}").click()  # the copy-link popover
    page.locator('[data-testid="stCode"]').first.wait_for(timeout=30_000)
    shown = page.locator('[data-testid="stCode"]').first.inner_text().strip()
    q = parse_qs(urlsplit(shown).query)
    assert q == {"run": [tiny_root.name], "hook": [hook], "sae": [arch], "feature": [str(feature)]}
    assert parse_qs(urlsplit(page.url).query)["feature"] == [str(feature)]  # the address bar names it too
    other = browser.new_page(viewport={"width": 1400, "height": 1400})  # the copied link, in a new session
    other.goto(shown.replace("http://localhost:8501", server))
    wait_rendered(other, "Feature browser")
    other.get_by_role("heading", name=f"Feature {feature}").first.wait_for(timeout=30_000)
    assert _problems(other) == []


def test_csv_download_of_the_filtered_feature_list_in_chromium(browser, server, tiny_root, tmp_path):
    """The feature list downloads as CSV with the current filter applied (all matching rows, raw numbers)."""
    import csv
    import re
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{server}/features?run={tiny_root.name}")
    wait_rendered(page, "Feature browser", timeout_ms=120_000)
    page.get_by_text("features match").first.wait_for(timeout=120_000)
    before = page.get_by_text("features match").first.inner_text()
    box = page.get_by_label("token contains")
    box.fill(" and", timeout=120_000)
    box.press("Enter")
    page.wait_for_function("(b) => { const e = [...document.querySelectorAll('p')].find(p => p.innerText.includes('features match'));"
                           " return e && e.innerText !== b; }", arg=before, timeout=120_000)
    wait_rendered(page, "Feature browser", timeout_ms=120_000)
    n_match = int(re.match(r"([\d,]+) of", page.get_by_text("features match").first.inner_text()).group(1).replace(",", ""))
    with page.expect_download(timeout=30_000) as dl:
        page.get_by_role("button", name="Download CSV").first.click()
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    rows = list(csv.DictReader(path.open()))
    assert path.suffix == ".csv" and len(rows) == n_match > 0
    assert {"feature", "density", "top_logit", "top_token"} <= set(rows[0])
    assert all(" and" in (r["top_logit"] + r["top_token"]).lower() for r in rows)
    float(rows[0]["density"])  # raw numbers, not display text
