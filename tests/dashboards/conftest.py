"""Fixtures for the dashboard tests: the session's tiny run (tests/fixtures/tiny_run.py) inside a runs
root, and a helper that opens a dashboard page in Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny_run import tiny_run

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


@pytest.fixture
def runs_env(tiny_root, monkeypatch):
    """Point the dashboard at the tiny run's runs root (through the environment, as `--runs-root` would)."""
    monkeypatch.setenv("SUPERSCOPE_RUNS_ROOT", str(tiny_root.parent))
    monkeypatch.delenv("SUPERSCOPE_RUN", raising=False)
    return tiny_root.parent


def open_page(page: str, timeout: float = 120, **session):
    """Run the app, switch to ``views/<page>.py`` (unless 'overview') and run it; returns the AppTest."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py")
        at.run()
    return at


def problems(at) -> list[str]:
    """Exceptions and errors shown on the page."""
    return [e.message for e in at.exception] + [e.value for e in at.error]
