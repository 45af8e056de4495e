"""dashboards/server.py: the pages' modules are imported before Streamlit's command line takes over."""

from __future__ import annotations

import sys

from superscope.dashboards import server
from superscope.dashboards.launch import streamlit_command


def test_preload_imports_the_heavy_modules_but_no_streamlit_cache(monkeypatch):
    assert server.PRELOAD[0] == "torch"
    assert not [m for m in server.PRELOAD if m.startswith("superscope.dashboards")]  # st.cache_data needs a runtime
    seen = []
    monkeypatch.setattr(server.importlib, "import_module", seen.append)
    assert server.preload() >= 0 and seen == list(server.PRELOAD)


def test_main_hands_the_rest_of_the_command_line_to_streamlit(monkeypatch):
    from streamlit.web import cli

    calls = []
    monkeypatch.setattr(server, "preload", lambda: 0.0)
    monkeypatch.setattr(server, "warm_up", lambda: 0.0)
    monkeypatch.setattr(cli, "main", lambda **kw: calls.append(kw))
    cmd = streamlit_command("runs", "default", port=8600, headless=True)
    monkeypatch.setattr(sys, "argv", cmd[2:])  # what `python -m superscope.dashboards.server …` sees
    server.main()
    assert calls == [{"args": cmd[3:], "prog_name": "streamlit"}] and calls[0]["args"][0] == "run"


def test_warm_up_builds_a_figure_and_a_styled_table():
    assert server.warm_up() > 0
