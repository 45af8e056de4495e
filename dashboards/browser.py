"""Serve the dashboard on localhost and drive it with headless Chromium (for the browser test, the
page-load benchmark and screenshots). Chromium is Debian's ``chromium`` package driven through
Playwright's Python package; ``playwright install`` is never needed."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .launch import streamlit_command

CHROMIUM = os.environ.get("SUPERSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_missing() -> str | None:
    """Why the browser tools cannot run here (None when they can)."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(runs_root: Path, run: str | None = None, port: int | None = None, timeout: float = 120,
          cwd: Path | None = None) -> Iterator[str]:
    """Start the dashboard headless on a free port as ``superscope dashboard`` does (the same command
    line, from ``dashboards.launch``), in the working directory ``cwd`` (default: this process's);
    yields its base URL."""
    port = port or free_port()
    cmd = streamlit_command(runs_root, run, port=port, headless=True, server_options={
        "server.address": "127.0.0.1", "browser.gatherUsageStats": "false", "server.fileWatcherType": "none",
        "client.toolbarMode": "minimal"})
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"superscope_streamlit_{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env={**os.environ, "TQDM_DISABLE": "1"})
        try:
            yield _wait_healthy(proc, f"http://127.0.0.1:{port}", timeout, log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_healthy(proc: subprocess.Popen, url: str, timeout: float, log_path: Path) -> str:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return url
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"streamlit did not become healthy within {timeout:.0f} s; see {log_path}")
        time.sleep(0.3)


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium browser (Playwright ``Browser``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def wait_rendered(page, title: str, timeout_ms: float = 60_000) -> None:
    """Wait until the Streamlit page shows ``title`` as a heading and its script run has finished
    (the app root's ``data-test-script-state`` is back to ``notRunning``)."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=timeout_ms)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout_ms)
