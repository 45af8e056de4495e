"""The layering DESIGN.md promises, checked on the source: scripts/import_graph.py exits 1 on an upward
import between subpackages, a cycle between modules, or an underscore module imported from outside
its package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import import_graph  # noqa: E402


def test_the_tree_has_no_upward_import_no_cycle_and_no_private_import_from_outside():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "import_graph.py")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    assert out.stdout.rstrip().endswith("0 upward, 0 cycles, 0 private")


def test_the_checker_sees_cycles_upward_and_private_imports():
    assert import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_graph.layer_of("superscope.saes.trainer") == "saes"
    assert import_graph.layer_of("superscope.analyses.cli.core") == "cli"
    assert import_graph.LAYERS.index("analyses") > import_graph.LAYERS.index("saes")
    assert import_graph.is_private_from_outside("superscope.analyses.report", "superscope.probes._codes")
    assert not import_graph.is_private_from_outside("superscope.probes.function_tokens", "superscope.probes._codes")


def test_relative_and_absolute_imports_resolve_to_modules(tmp_path):
    pkg = tmp_path / "m.py"
    pkg.write_text("from .x import y\nfrom superscope.saes import trainer\nimport superscope.kernels.threads as t\n"
                   "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from superscope.analyses import cli\n")
    known = {"superscope.saes", "superscope.saes.x", "superscope.saes.trainer", "superscope.kernels.threads",
             "superscope.analyses.cli"}
    assert import_graph.imports_of("superscope.saes.m", pkg, known) == {
        "superscope.saes.x", "superscope.saes.trainer", "superscope.kernels.threads"}
