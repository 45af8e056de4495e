"""Every dashboard page through Streamlit's AppTest against the tiny run; interactions; and what a
missing, partial, corrupt or out-of-root run shows (an st.error line, never a traceback)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.dashboards.conftest import open_page, problems
from tests.fixtures.tiny_run import HOOKS, copy_run

PAGES = {"overview": "Run tiny", "features": "Feature browser", "compare": "SAE comparison",
         "superposition": "Superposition", "function_tokens": "Function tokens", "bfs": "BFS thoughts",
         "live": "Live prompt", "evals": "Evaluations", "steering": "Steering"}


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders(runs_env, page):
    at = open_page(page)
    assert problems(at) == []
    assert [t.value for t in at.title] == [PAGES[page]]
    charts = len(at.get("plotly_chart"))
    assert charts >= {"overview": 1, "features": 1, "compare": 2, "superposition": 2, "function_tokens": 1,
                      "bfs": 3, "live": 0, "evals": 0, "steering": 0}[page]  # evals: its open tab (Pareto) only


def test_overview_headline(runs_env):
    at = open_page("overview")
    table = at.dataframe[0].value  # under the columns' human labels (analyses.runs.labels)
    assert list(table["SAE"]) == ["TopK", "Feature Choice", "Mutual Choice"]
    assert table["CE-loss recovered"].notna().all() and "Dead in training" in table.columns
    assert at.sidebar.selectbox[0].value == "tiny"
    # TopK has no threshold mode: its empty cell shows the missing mark, not the grid's grey "None"
    assert table["FVU, thresholds"].tolist()[0] == "–" and table.notna().all().all()


def test_overview_steps_timeline(runs_env, tiny_root):
    """One line per step: its name, duration, one sentence of what it made; a link to the page showing it."""
    from superscope.analyses.runs.timeline import steps
    from superscope.saes.atomic_io import read_json
    at = open_page("overview")
    text = " ".join(m.value for m in at.markdown)
    for s in steps(read_json(tiny_root / "run.json")):
        assert f"**{s.step}**" in text and s.made in text
    assert "Feature browser" in [p.proto.label for p in at.get("page_link")]
    assert len(at.dataframe) == 1  # no wide table of every key a step reported


def test_tables_download_as_csv(runs_env):
    """Every table of a page comes with a CSV download of its raw values."""
    for name in ("overview", "compare", "superposition", "function_tokens", "bfs"):
        at = open_page(name)
        assert len(at.get("download_button")) >= len(at.dataframe) > 0, name


def test_feature_browser_filter_select_and_neighbours(runs_env):
    at = open_page("features")
    count_line = next(m.value for m in at.markdown if "features match" in m.value)
    at.text_input[0].input(" and").run()
    filtered = next(m.value for m in at.markdown if "features match" in m.value)
    assert filtered != count_line
    table = at.dataframe[0].value
    assert len(table) and (table["Top logit"].str.contains(" and") | table["Top token"].str.contains(" and")).all()
    at.number_input(key="feature_input").set_value(int(table["Feature"].iloc[0])).run()
    assert problems(at) == []
    assert any(s.value == f"Feature {int(table['Feature'].iloc[0])}" for s in at.subheader)
    assert at.query_params["feature"] == str(int(table["Feature"].iloc[0]))  # the URL follows the view
    html = " ".join(h.proto.body for h in at.get("html"))
    assert "class='tok'" in html and "outline" in html  # highlighted tokens, the firing one boxed
    neighbour = next(b for b in at.button if b.key and b.key.startswith("nbr_"))
    target = int(neighbour.key.split("_")[2])
    neighbour.click().run()
    assert at.number_input(key="feature_input").value == target
    assert any(s.value == f"Feature {target}" for s in at.subheader)


def test_feature_browser_sorts_and_filters_by_autointerp(tiny_root, tmp_path, monkeypatch):
    from superscope.analyses.evals.autointerp import AutointerpConfig, evaluate_autointerp, save_autointerp
    from superscope.analyses.evals.context import EvalContext
    from superscope.analyses.runs.folder import RunFolder
    from superscope.saes import load_sae
    from tests.fixtures.tiny_run import fake_model

    run = RunFolder(copy_run(tiny_root, tmp_path, "tiny"))
    shutil.rmtree(run.root / "evals", ignore_errors=True)
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(tmp_path))
    monkeypatch.delenv("SUPERSCOPE_RUN", raising=False)
    at = open_page("features")
    assert problems(at) == [] and any("superscope evals" in c.value for c in at.caption)  # the hint, no error
    for hook, _, folder in run.sae_folders():
        context = EvalContext(hook, load_model=fake_model, heldout_dir=run.heldout(hook),
                              features_root=run.root / "features" / hook)
        save_autointerp(evaluate_autointerp(load_sae(folder), context, AutointerpConfig(min_count=1)), run.root)
    at = open_page("features")
    assert problems(at) == []
    next(s for s in at.selectbox if s.label == "sort by").set_value("detection_bacc").run()
    table = at.dataframe[0].value  # columns under their labels (analyses.runs.labels)
    scores = table["Detection balanced accuracy"].dropna()
    assert len(scores) > 5 and scores.is_monotonic_decreasing
    assert table["Detection balanced accuracy"].iloc[:len(scores)].notna().all()  # unscored latents last
    at.slider[1].set_value(0.6).run()
    assert (at.dataframe[0].value["Detection balanced accuracy"] >= 0.6).all()
    assert any(m.value.startswith("**Fires on**") for m in at.markdown)


def test_compare_difficulty_and_hook_switch(runs_env):
    at = open_page("compare")
    frames = [f.value for f in at.dataframe]
    # the difficulty view is a lazy tab: closed, it computes nothing
    assert not any("Spearman ρ(L0, difficulty)" in f.columns for f in frames)
    from streamlit.testing.v1 import AppTest

    from tests.dashboards.conftest import APP
    at = AppTest.from_file(APP, default_timeout=120)  # a URL naming the open tab (?compare_view=)
    at.query_params.update({"run": "tiny", "compare_view": "L0 vs token difficulty"})
    at.switch_page("views/compare.py")
    at.run()
    assert problems(at) == []
    assert any("Spearman ρ(L0, difficulty)" in f.value.columns for f in at.dataframe)
    at.selectbox(key="compare_hook").select(HOOKS[0]).run()
    assert problems(at) == []
    assert list(at.dataframe[0].value["SAE"])[0] == "TopK"
    assert at.query_params["hook"] == HOOKS[0]  # the URL reopens this hook


def test_deep_links_open_the_named_view(runs_env):
    """?hook=, ?sae= and ?feature= open the Feature browser on that feature; ?hook= the comparison's hook."""
    from streamlit.testing.v1 import AppTest

    from tests.dashboards.conftest import APP
    at = AppTest.from_file(APP, default_timeout=120)  # a fresh session opened on the URL
    at.query_params.update({"run": "tiny", "hook": HOOKS[0], "sae": "mutual_choice", "feature": "7"})
    at.switch_page("views/features.py")
    at.run()
    assert problems(at) == []
    assert at.selectbox(key="features_hook").value == HOOKS[0] and at.selectbox(key="features_sae").value == "mutual_choice"
    assert any(s.value == "Feature 7" for s in at.subheader)
    link = next(c.value for c in at.code)
    assert link.endswith(f"features?run=tiny&hook={HOOKS[0]}&sae=mutual_choice&feature=7")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"run": "tiny", "hook": HOOKS[0]})
    at.switch_page("views/compare.py")
    at.run()
    assert at.selectbox(key="compare_hook").value == HOOKS[0]


def test_function_token_feature_set(runs_env):
    at = open_page("function_tokens")
    line = next(m.value for m in at.markdown if "distinct features" in m.value)
    assert "occurs" in line
    assert len(at.dataframe[-1].value) > 0


def test_bfs_page_shows_probe_result_and_probes_a_checkpoint(runs_env):
    at = open_page("bfs")
    assert any("Ordered" in m.value for m in at.markdown)
    gaps = next(f.value for f in at.dataframe if "frontier − reachable" in f.value.columns)
    assert list(gaps.columns) == ["Step", "frontier − reachable", "reachable − not reachable",
                                  "optimal − frontier (built in)"]  # the informative gaps first
    assert any(set(f.value.columns) >= {"Step", "Group"} for f in at.dataframe)
    assert any("method **coconut**" in m.value for m in at.markdown)  # the run's checkpoint in <run>/bfs/
    charts = len(at.get("plotly_chart"))
    at.select_slider[0].set_value(20)
    next(b for b in at.button if "Run the probe" in b.label).click().run()
    assert problems(at) == []
    assert len(at.get("plotly_chart")) >= charts + 3  # live probe: histograms, graph, attention


def test_empty_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(tmp_path))
    at = open_page("overview")
    assert not at.exception
    assert any("no runs in" in e.value for e in at.error)


def test_run_outside_the_root_is_refused(runs_env, monkeypatch):
    for outside in ("../../etc", "/etc", ".."):
        monkeypatch.setenv("SUPERSCOPE_RUN", outside)
        at = open_page("features")
        assert not at.exception
        assert any("refused" in e.value for e in at.error), outside


def test_query_param_outside_the_root_is_refused(runs_env):
    from streamlit.testing.v1 import AppTest

    from tests.dashboards.conftest import APP
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "../outside"
    at.run()
    assert not at.exception and any("refused" in e.value for e in at.error)


def test_corrupt_and_partial_runs_show_messages(tiny_root, tmp_path, monkeypatch):
    corrupt = copy_run(tiny_root, tmp_path, "corrupt")
    (corrupt / "run.json").write_text("{ truncated")
    partial = copy_run(tiny_root, tmp_path, "partial")
    shutil.rmtree(partial / "features")
    shutil.rmtree(partial / "heldout")
    for p in (partial / "probes").iterdir():
        p.unlink()
    (partial / "saes" / HOOKS[1] / "topk" / "metrics.json").write_text("not json")
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(tmp_path))
    monkeypatch.setenv("SUPERSCOPE_RUN", "corrupt")
    for page in ("overview", "features"):
        at = open_page(page)
        assert not at.exception
        assert any("not valid JSON" in e.value for e in at.error), page
    monkeypatch.setenv("SUPERSCOPE_RUN", "partial")
    for page in PAGES:
        if page == "live":
            continue
        at = open_page(page)
        assert not at.exception, (page, [e.message for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        shown = " ".join([w.value for w in at.warning] + [i.value for i in at.info] + [m.value for m in at.markdown]
                         + [x.label for x in at.expander])
        assert any(s in shown for s in ("No feature data", "No superposition", "No function-token", "no probes/bfs.json",
                                        "missing or unreadable", "Needs held-out", "heldout")), page
    (tmp_path / "notarun").mkdir()
    monkeypatch.setenv("SUPERSCOPE_RUN", "notarun")
    at = open_page("overview")
    assert not at.exception and any("not a superscope run folder" in e.value for e in at.error)
    json.loads((tiny_root / "run.json").read_text())  # the shared run was not touched


@pytest.mark.slow
def test_live_prompt_with_the_real_model(tmp_path, monkeypatch):
    """Type a prompt and encode it with the embedded SmolLM2 through a 576-wide SAE (model load ~30 s)."""
    pytest.importorskip("transformer_lens")
    from superscope.activations.models import ModelNotAvailableError, embedded_gguf_path
    from superscope.analyses.runs.folder import RunFolder
    from superscope.saes import SAEConfig, create_sae, save_sae
    try:
        embedded_gguf_path()
    except ModelNotAvailableError as err:
        pytest.skip(str(err))
    hook = "blocks.3.hook_resid_post"
    run = RunFolder(tmp_path / "live")
    run.root.mkdir()
    run.write({"name": "live", "main_hook": hook, "hooks": [hook], "archs": ["topk"]})
    save_sae(create_sae(SAEConfig(architecture="topk", d_in=576, d_sae=128, k=8, input_scale=0.2, hook_name=hook)),
             run.sae(hook, "topk"))
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(tmp_path))
    at = open_page("live", timeout=300)
    assert any("Type a prompt" in i.value for i in at.info)
    at.text_area[0].input("The cat sat on the mat.")
    next(b for b in at.button if "Encode" in b.label).click().run()
    assert problems(at) == []
    html = " ".join(h.proto.body for h in at.get("html"))
    assert "active features per token" in html and " cat" in html
    assert any("Features on token" in m.value for m in at.markdown)
    at.selectbox(key="live_token").select_index(2).run()
    assert any("Features on token 2" in m.value for m in at.markdown)


def test_path_rules_and_command_line(tmp_path):
    from superscope.dashboards._state import RunRefused, command_line, resolve_run
    root = tmp_path / "runs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "run.json").write_text("{}")
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    assert resolve_run(root, "a") == (root / "a").resolve()
    for bad in ("../secret", str(tmp_path / "secret"), "link", "a/../../secret", "."):
        with pytest.raises(RunRefused, match="refused"):
            resolve_run(root, bad)
    assert command_line(["--runs-root", str(root), "--run", "a"]).run == "a"
    s = command_line([str(root / "a")])  # `streamlit run dashboards/app.py -- runs/a`
    assert (s.runs_root, s.run) == (root.resolve(), "a")
    assert command_line(["-q", "-k", "x"]).run is None
