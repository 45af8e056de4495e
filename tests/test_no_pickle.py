"""Nothing in the project unpickles (DESIGN.md: "Nothing is pickled, nothing is loaded with pickle").

Every project .py file is parsed (AST, so comments and strings do not count) and these are reported:
- importing a pickle-based module (pickle, _pickle, cPickle, cloudpickle, dill, shelve, joblib);
- ``torch.save`` (writes a pickle) and pandas' ``read_pickle`` / ``to_pickle``;
- ``torch.load(...)`` without ``weights_only=True``;
- ``np.load(..., allow_pickle=<anything but False>)``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"build", "dist", "node_modules", "runs", "__pycache__", "site-packages"}
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "shelve", "joblib"}


def project_files(root: Path = ROOT) -> list[Path]:
    """Project .py files: everything under the root but hidden folders, builds and run outputs."""
    out = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts[:-1]
        if any(p.startswith(".") or p in SKIP_DIRS or p.endswith(".egg-info") or "venv" in p for p in parts):
            continue
        out.append(path)
    return out


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self.modules: dict[str, str] = {}  # local name → module ("torch", "numpy")
        self.functions: dict[str, str] = {}  # local name → "torch.load", "numpy.load", "torch.save"

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top in PICKLE_MODULES:
                self.found.append((node.lineno, f"imports {alias.name}"))
            if alias.name in ("torch", "numpy"):
                self.modules[alias.asname or alias.name] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        top = (node.module or "").split(".")[0]
        if top in PICKLE_MODULES:
            self.found.append((node.lineno, f"imports from {node.module}"))
        for alias in node.names:
            if node.module in ("torch", "numpy") and alias.name in ("load", "save"):
                self.functions[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def _target(self, func: ast.expr) -> str | None:
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        if isinstance(func, ast.Attribute):
            if func.attr in ("read_pickle", "to_pickle"):
                return "pandas.pickle"
            if isinstance(func.value, ast.Name) and func.value.id in self.modules:
                return f"{self.modules[func.value.id]}.{func.attr}"
        return None

    def visit_Call(self, node: ast.Call) -> None:
        target = self._target(node.func)
        if target == "torch.load" and not _is_const(_kw(node, "weights_only"), True):
            self.found.append((node.lineno, "torch.load without weights_only=True"))
        elif target == "torch.save":
            self.found.append((node.lineno, "torch.save writes a pickle (use safetensors)"))
        elif target == "pandas.pickle":
            self.found.append((node.lineno, "pandas pickle I/O"))
        elif target == "numpy.load" and (arg := _kw(node, "allow_pickle")) is not None and not _is_const(arg, False):
            self.found.append((node.lineno, "np.load with allow_pickle"))
        self.generic_visit(node)


def pickle_uses(source: str) -> list[tuple[int, str]]:
    """(line, reason) of every pickle use in Python ``source``."""
    finder = _Finder()
    finder.visit(ast.parse(source))
    return sorted(finder.found)


def test_no_project_file_uses_pickle():
    files = project_files()
    assert any(p.parts[-2:] == ("saes", "trainer.py") for p in files)  # the scan sees the project
    offenders = [f"{path.relative_to(ROOT)}:{line}: {why}"
                 for path in files for line, why in pickle_uses(path.read_text(encoding="utf-8"))]
    assert not offenders, "pickle use (DESIGN.md forbids it):\n" + "\n".join(offenders)


@pytest.mark.parametrize("code, reasons", [
    ("import pickle\npickle.loads(b'')", ["imports pickle"]),
    ("from dill import loads", ["imports from dill"]),
    ("import torch\ntorch.load('w.pt')", ["torch.load without weights_only=True"]),
    ("import torch as T\nT.load('w.pt', weights_only=False)", ["torch.load without weights_only=True"]),
    ("from torch import load as L\nL('w.pt')", ["torch.load without weights_only=True"]),
    ("import torch\ntorch.save({}, 'w.pt')", ["torch.save writes a pickle (use safetensors)"]),
    ("import numpy as np\nnp.load('a.npy', allow_pickle=True)", ["np.load with allow_pickle"]),
    ("import pandas as pd\npd.read_pickle('x')", ["pandas pickle I/O"]),
    ("import torch\ntorch.load('w.pt', weights_only=True)", []),
    ("import numpy as np\nnp.load('a.npy')\nnp.load('b.npy', allow_pickle=False)", []),
    ("# import pickle\nx = 'torch.load(f)'\nfrom safetensors.torch import load_file\nload_file('w')", []),
])
def test_scanner_finds_each_kind_of_use(code, reasons):
    assert [why for _, why in pickle_uses(code)] == reasons
