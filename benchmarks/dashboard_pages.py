"""Dashboard page-load times in headless Chromium: first load (cold caches) and later loads.

A page counts as loaded when its title heading is shown, Streamlit has stopped running the script and
every plotly figure of its first screen is drawn (PAGES). "reload" opens the page's URL afresh (a new browser session, the
whole frontend loads again); "nav" clicks the page in the sidebar of the running app. Needs Debian's chromium and the playwright Python package.
"first" is the page's first load in a fresh server (its caches cold; pages are opened in the order below, so
Overview also pays for reading the run folder). With --first-only the browser has loaded the dashboard's code
once before (from an earlier server on the same port; that browser cold start is reported on its own).
The goal is FIRST_LOAD_LIMIT_S on the default run; the
precompute step of `superscope run` (or `python -m superscope.analyses.pipeline.precompute RUN`) writes what
the SAE comparison would otherwise compute on its first load. --json also records the machine's load.

    python benchmarks/dashboard_pages.py --runs-root runs --run default --json out.json
    python benchmarks/dashboard_pages.py --runs-root runs --run default --quick    # one warm load per page
    python benchmarks/dashboard_pages.py --runs-root runs --run default --screenshots shots/   # + one PNG per page
    python benchmarks/dashboard_pages.py --quick       # no run given: a toy run built in a temp folder
    python benchmarks/dashboard_pages.py --runs-root runs --run default --first-only \
        --json benchmarks/results/dashboard_pages.json     # the recorded result: first loads only (3 rounds)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from superscope.analyses.runs.toy import build_toy_run
from superscope.benchmarks._timing import environment, write_json
from superscope.dashboards.browser import (
    browser_missing,
    chromium,
    serve,
    wait_rendered,
)

PAGES = {"overview": (None, "Overview", 1), "features": ("Feature browser", "Feature browser", 1),
         "compare": ("SAE comparison", "SAE comparison", 2), "live": ("Live prompt", "Live prompt", 0),
         "superposition": ("Superposition", "Superposition", 2),
         "function_tokens": ("Function tokens", "Function tokens", 1), "bfs": ("BFS thoughts", "BFS thoughts", 3),
         "evals": ("Evaluations", "Evaluations", 0), "steering": ("Steering", "Steering", None)}
"""url path → (title, sidebar link, plotly figures the page draws on its first load (closed lazy tabs and
expanders draw none) — all must be drawn; None: 1 when the run has saved steering results, whose latest the
page draws, else 0)."""


def charts_for(name: str, charts: int | None, run: Path) -> int:
    """The number of plotly elements ``name`` must show on ``run`` (see PAGES)."""
    if charts is not None:
        return charts
    return 1 if any((run / "steering").glob("*.json")) else 0
FIRST_LOAD_LIMIT_S = 2.0


def load(page, url: str | None, title: str, charts: int, link: str | None = None) -> float:
    """Seconds until the page is drawn: after a full reload of ``url`` (a new session), or after a
    click on the sidebar ``link`` (navigation inside the running app)."""
    t0 = time.perf_counter()
    if link is None:
        page.goto(url)
    else:
        page.locator('[data-testid="stSidebarNavLink"]', has_text=link).first.click()
    wait_rendered(page, title, timeout_ms=600_000)
    if charts:
        page.wait_for_function("(n) => [...document.querySelectorAll('.js-plotly-plot')]"
                               ".filter(p => p.querySelector('.main-svg')).length >= n", arg=charts, timeout=600_000)
    return time.perf_counter() - t0


def live_encode(page, url: str, shots: str | None) -> float:
    """Seconds from pressing Encode on the Live prompt page (its default prompt) until the token's
    feature table is shown; includes loading the model the first time in this server."""
    page.goto(url)
    wait_rendered(page, "Live prompt", timeout_ms=600_000)
    t0 = time.perf_counter()
    page.get_by_role("button", name="Encode").click()
    page.wait_for_function("() => document.body.innerText.includes('Features on token') && "
                           "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1", timeout=600_000)
    seconds = time.perf_counter() - t0
    if shots:
        page.screenshot(path=str(Path(shots) / "live_encoded.png"), full_page=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-root", help="the folder that holds the runs (default: a temporary folder with a "
                        "toy run built for the benchmark)")
    parser.add_argument("--run", help="the run to open (default: the toy run)")
    parser.add_argument("--repeats", type=int, default=3, help="warm loads per page")
    parser.add_argument("--quick", action="store_true", help="one warm load per page")
    parser.add_argument("--first-only", action="store_true", help="only each page's first load (no warm loads, "
                        "no sidebar navigation, no live encode)")
    parser.add_argument("--first-rounds", type=int, default=3, help="--first-only: rounds (fresh servers) per page; "
                        "the median is compared with the limit")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--screenshots", help="folder for one full-page PNG per page (after its warm loads)")
    args = parser.parse_args()
    reason = browser_missing()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    if (args.runs_root is None) != (args.run is None):
        parser.error("give both --runs-root and --run, or neither (a toy run)")
    with tempfile.TemporaryDirectory(prefix="ss_dashbench_") as tmp:
        if args.run is None:
            args.run, args.runs_root = "tiny", str(build_toy_run(Path(tmp)).parent)
        measure(args)


def measure(args: argparse.Namespace) -> None:
    """Time every page of the run ``args.run`` under ``args.runs_root``; print the table (+ JSON)."""
    if args.first_only:
        return measure_first(args)
    repeats = 1 if args.quick else args.repeats
    rows = []
    with serve(Path(args.runs_root), args.run) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        run = Path(args.runs_root) / args.run
        for name, (title, _, charts) in PAGES.items():
            title = title or f"Run {args.run}"
            target = f"{url}/{'' if name == 'overview' else name}?run={args.run}"  # the default page is /
            charts = charts_for(name, charts, run)
            first = load(page, target, title, charts)
            warm = [load(page, target, title, charts) for _ in range(repeats)]
            if args.screenshots:
                Path(args.screenshots).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(args.screenshots) / f"{name}.png"), full_page=True)
            rows.append({"page": name, "first_s": first, "reload_median_s": statistics.median(warm),
                         "reload_max_s": max(warm)})
        nav: dict[str, list[float]] = {name: [] for name in PAGES}
        for _ in range(repeats):  # the same pages again, reached through the sidebar (caches warm)
            for name, (title, link, charts) in PAGES.items():
                nav[name].append(load(page, None, title or f"Run {args.run}", charts_for(name, charts, run), link=link))
        for r in rows:
            r["navigate_median_s"], r["navigate_max_s"] = statistics.median(nav[r["page"]]), max(nav[r["page"]])
        # the toy run has no model to encode a prompt with (its SAEs read a 16-d toy space)
        toy = json.loads((Path(args.runs_root) / args.run / "run.json").read_text()).get("model") == "toy"
        live = None if toy else live_encode(page, f"{url}/live?run={args.run}", args.screenshots)
    print("live prompt: not timed (toy run, no model)" if live is None
          else f"live prompt: first Encode (loads the model) {live:.2f} s")
    print(f"{'page':<17}{'first s':>9}{'reload med':>12}{'reload max':>12}{'nav med':>10}{'nav max':>10}{'nav/first':>11}")
    for r in rows:
        print(f"{r['page']:<17}{r['first_s']:>9.2f}{r['reload_median_s']:>12.2f}{r['reload_max_s']:>12.2f}"
              f"{r['navigate_median_s']:>10.2f}{r['navigate_max_s']:>10.2f}{r['navigate_median_s'] / r['first_s']:>11.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"run": args.run, "pages": rows, "live_encode_first_s": live}, indent=2))


def first_round(args: argparse.Namespace, browser, run: Path) -> tuple[float, dict[str, float]]:
    """One round: a fresh browser context loads Overview from a first server (the browser cold start), then a
    second, fresh server on the same port serves each page once (its first load)."""
    from superscope.dashboards.browser import free_port

    port = free_port()
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    with serve(Path(args.runs_root), args.run, port=port) as url:
        cold = load(page, f"{url}/?run={args.run}", f"Run {args.run}", PAGES["overview"][2])
    firsts = {}
    with serve(Path(args.runs_root), args.run, port=port) as url:
        for name, (title, _, charts) in PAGES.items():
            title = title or f"Run {args.run}"
            target = f"{url}/{'' if name == 'overview' else name}?run={args.run}"
            firsts[name] = load(page, target, title, charts_for(name, charts, run))
            if args.screenshots:
                Path(args.screenshots).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(args.screenshots) / f"{name}.png"), full_page=True)
    context.close()
    return cold, firsts


def measure_first(args: argparse.Namespace) -> None:
    """Each page's first load in a fresh server (cold caches), in PAGES order; ``--first-rounds`` rounds, the
    median per page against FIRST_LOAD_LIMIT_S; print (+ JSON).

    Each round: two servers on one port, one fresh browser context. The first server serves Overview once
    (``browser_cold_overview_s``: the browser also downloads and compiles Streamlit's and Plotly's code, a
    one-time cost of the browser, not of the run), then it stops; a second, fresh server (every cache cold)
    serves each page for the first time to that browser, whose HTTP cache now holds the code — as for a user
    who opened the dashboard before. ``first_s`` is that first load."""
    import os
    import sys

    run = Path(args.runs_root) / args.run
    load_before = os.getloadavg()[0]
    with chromium() as browser:
        rounds = [first_round(args, browser, run) for _ in range(args.first_rounds)]
    colds = [c for c, _ in rounds]
    rows = []
    for name in PAGES:
        samples = [f[name] for _, f in rounds]
        med = statistics.median(samples)
        rows.append({"page": name, "first_s": round(med, 3), "first_max_s": round(max(samples), 3),
                     "samples_s": [round(x, 3) for x in samples], "within_limit": med <= FIRST_LOAD_LIMIT_S})
    print(f"browser cold start (Overview in a fresh browser, its code not cached yet): median "
          f"{statistics.median(colds):.2f} s")
    print(f"{'page':<17}{'first s':>9}{'max s':>8}   ({len(rounds)} rounds, median)")
    for r in rows:
        print(f"{r['page']:<17}{r['first_s']:>9.2f}{r['first_max_s']:>8.2f}"
              f"{'' if r['within_limit'] else '  > ' + str(FIRST_LOAD_LIMIT_S)}")
    if args.json:
        write_json(args.json, {
            "command": "python benchmarks/dashboard_pages.py " + " ".join(sys.argv[1:]), "run": args.run,
            "first_load_limit_s": FIRST_LOAD_LIMIT_S, "rounds": len(rounds), "pages": rows,
            "all_within_limit": all(r["within_limit"] for r in rows),
            "browser_cold_overview_s": [round(c, 3) for c in colds],
            "method": "first_s: median over rounds of each page's first load from a fresh server (cold caches; "
                      "modules imported and plotly/pandas warmed at server start by dashboards/server.py) in a "
                      "browser context that has loaded the dashboard's code once before; a page is loaded when "
                      "its title shows, the script run has finished and every figure of its first screen is "
                      "drawn; browser_cold_overview_s: Overview in a fresh browser context",
            "precomputed": sorted(str(p.relative_to(run)) for p in (run / "cache").rglob("*.json")),
            "load_avg_1m_before": load_before, "environment": environment()})


if __name__ == "__main__":
    main()
