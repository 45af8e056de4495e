"""The one command line that starts the dashboard: ``python -m superscope.dashboards.server run dashboards/app.py``
(``dashboards/server.py``: the pages' modules imported first, then Streamlit's own ``streamlit run``).

``superscope dashboard`` runs it for users, and the browser test and the page-load benchmark run it
too (dashboards/browser.py), so they see what a user sees — including the working directory's place
on ``sys.path`` (``python -m`` puts it first, as ``python -m streamlit`` does, so a server started in the clone imports from the
clone root; superscope/shadowing.py keeps the root folders from shadowing installed packages).
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_command(runs_root: str | Path, run: str | None = None, port: int | None = None,
                      headless: bool = False, server_options: dict[str, str] | None = None) -> list[str]:
    """The ``streamlit run`` argv (through ``dashboards.server``) for the dashboard over the runs in ``runs_root`` (opening ``run``).

    ``server_options`` are extra Streamlit options (``{"server.address": "127.0.0.1"}`` becomes
    ``--server.address 127.0.0.1``).
    """
    cmd = [sys.executable, "-m", "superscope.dashboards.server", "run", str(APP)]
    if port is not None:
        cmd += ["--server.port", str(port)]
    if headless:
        cmd += ["--server.headless", "true"]
    for key, value in (server_options or {}).items():
        cmd += [f"--{key}", value]
    cmd += ["--", "--runs-root", str(runs_root)]
    if run:
        cmd += ["--run", str(run)]
    return cmd
