"""What a fresh machine sees: the clone root never shadows an installed distribution, the wheel is
complete and works outside the clone, and every benchmark runs as the README documents."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT_PACKAGES = ("saes", "kernels", "activations", "probes", "interventions", "analyses", "dashboards", "benchmarks")
# Folders whose files run as scripts (`python benchmarks/x.py`, `streamlit run dashboards/app.py`):
# Python puts the script's folder first on sys.path, so its module names are top-level names too.
SCRIPT_FOLDERS = ("benchmarks", "dashboards", "scripts")
# Root packages that may share a top-level name with a distribution because their __init__ defers
# to it (superscope/shadowing.py).
GUARDED = {"kernels"}


def _python(code: str, cwd: Path, python: str = sys.executable, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_clone_root_imports_the_installed_distributions_and_ours():
    """A notebook, REPL or subprocess started in the clone (its root first on sys.path)."""
    code = ("import transformers.activations, sae_lens, superscope.kernels, superscope.saes, kernels, os;"
            "print(os.path.dirname(kernels.__file__)); print(superscope.kernels.encode_topk.__module__)")
    out = _python(code, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    hf_dir, ours = out.stdout.split()
    assert Path(hf_dir) != REPO / "kernels" and "site-packages" in hf_dir
    assert ours == "superscope.kernels.dispatch"


def _fake_layout(tmp_path: Path, installed: bool) -> Path:
    """A clone root with a guarded `pkg/` and (optionally) a `site/pkg` distribution of the same name."""
    clone = tmp_path / "clone"
    (clone / "pkg").mkdir(parents=True)
    (clone / "pkg" / "__init__.py").write_text(textwrap.dedent("""
        if __name__ == "pkg":
            from superscope.shadowing import defer_to_installed
            defer_to_installed(__name__, __file__)
        else:
            OURS = True
    """))
    if installed:
        (tmp_path / "site" / "pkg").mkdir(parents=True)
        (tmp_path / "site" / "pkg" / "__init__.py").write_text("VALUE = 'installed'\n")
        (tmp_path / "site" / "pkg" / "sub.py").write_text("SUB = 'installed sub'\n")
    return clone


def test_guard_loads_the_installed_distribution_in_place_of_the_root_folder(tmp_path):
    clone = _fake_layout(tmp_path, installed=True)
    code = (f"import sys; sys.path.append({str(tmp_path / 'site')!r});"
            "import pkg, pkg.sub; from pkg import VALUE; print(VALUE, pkg.sub.SUB, sys.modules['pkg'] is pkg)")
    out = _python(code, cwd=clone)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "installed installed sub True"


def test_guard_without_the_distribution_raises_module_not_found(tmp_path):
    clone = _fake_layout(tmp_path, installed=False)
    code = ("import sys\ntry:\n    import pkg\nexcept ModuleNotFoundError as e:\n"
            "    print(e.name, 'pkg' in sys.modules, 'superscope.pkg' in str(e))")
    out = _python(code, cwd=clone)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "pkg False True"


def _top_level_names(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}


def test_no_root_or_script_folder_name_shadows_a_distribution_or_the_stdlib():
    installed = set(importlib.metadata.packages_distributions()) | set(sys.stdlib_module_names)
    root_names = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    clashes = {name: "repository root" for name in root_names & installed - GUARDED}
    for folder in SCRIPT_FOLDERS:
        if (REPO / folder).is_dir():
            clashes |= {name: folder for name in _top_level_names(REPO / folder) & installed}
    assert clashes == {}, ("rename these modules or guard them like kernels/__init__.py "
                           f"(superscope/shadowing.py): {clashes}")
    for name in GUARDED:
        assert "defer_to_installed(__name__, __file__)" in (REPO / name / "__init__.py").read_text()


def _source_files(*paths: str) -> list[str]:
    """Files git tracks or would track (not ignored) under ``paths``, as they are in the work tree."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *paths], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if (REPO / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (REPO / ".git").exists():
        pytest.skip("needs the git clone (the wheel test compares against tracked files)")
    # Built from a copy of the source files: setuptools builds in-tree (build/lib), and a stale module
    # left there by an earlier build would ship in the wheel.
    source, out_dir = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in _source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out_dir), str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (path,) = out_dir.glob("superscope-*.whl")
    return path


@pytest.mark.slow
def test_wheel_holds_every_package_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"superscope/" + f.split("/", 1)[1] if f.startswith("superscope_pkg/") else "superscope/" + f
                for f in _source_files(*ROOT_PACKAGES, "superscope_pkg")}
    missing = sorted(expected - names)
    assert missing == [], f"the wheel lacks {missing[:20]}"
    assert {"superscope/probes/bfs/checkpoints/coconut.safetensors", "superscope/dashboards/views/overview.py",
            "superscope/dashboards/app.py"} <= names


SMOKE = textwrap.dedent("""
    import sys, tempfile
    from pathlib import Path
    import superscope
    assert "site-packages" in superscope.__file__, superscope.__file__
    import transformers.activations, sae_lens, superscope.kernels, superscope.probes.bfs
    from streamlit.testing.v1 import AppTest
    from superscope.analyses.runs.toy import build_toy_run
    import superscope.dashboards as dashboards
    import os
    run = build_toy_run(Path(tempfile.mkdtemp()))
    os.environ["SUPERSCOPE_RUNS_ROOT"] = str(run.parent)
    app = str(Path(dashboards.__file__).parent / "app.py")
    for page in ("overview", "features", "compare", "live", "superposition", "function_tokens", "bfs"):
        at = AppTest.from_file(app, default_timeout=180)
        at.run()
        if page != "overview":
            at.switch_page(f"views/{page}.py")
            at.run()
        problems = [e.message for e in at.exception] + [e.value for e in at.error]
        assert not problems and len(at.title) == 1, (page, problems)
        print("rendered", page, at.title[0].value)
""")


@pytest.mark.slow
def test_wheel_installed_outside_the_clone_works(wheel, tmp_path):
    """A fresh venv outside the clone, the wheel installed without its dependencies (they come from
    this environment's site-packages through a .pth line, so it is fast and offline)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    # after the install, so pip never sees this environment's (editable) superscope
    site = _python("import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path, python=str(py))
    ours = _python("import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    Path(site.stdout.strip(), "deps.pth").write_text(ours.stdout.strip() + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "TQDM_DISABLE": "1"}
    superscope = str(venv / "bin" / "superscope")
    assert subprocess.run([superscope, "--help"], cwd=work, capture_output=True, env=env).returncode == 0
    bfs = subprocess.run([superscope, "bfs", "eval", "--checkpoint", "coconut", "--n", "50"], cwd=work,
                         capture_output=True, text=True, env=env, timeout=600)
    assert bfs.returncode == 0 and "accuracy" in bfs.stdout.lower(), bfs.stdout[-2000:] + bfs.stderr[-2000:]
    smoke = subprocess.run([str(py), "-c", SMOKE], cwd=work, capture_output=True, text=True, env=env, timeout=900)
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-3000:]
    assert smoke.stdout.count("rendered") == 7


BENCHMARKS = sorted(p.name for p in (REPO / "benchmarks").glob("[!_]*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS)
def test_benchmark_runs_quick_as_documented(script, tmp_path):
    """`make bench` runs `python benchmarks/<script> --quick` from the clone root; so does this."""
    if script == "dashboard_pages.py":
        from superscope.dashboards.browser import browser_missing

        if browser_missing():
            pytest.skip(browser_missing())
    env = {**os.environ, "TQDM_DISABLE": "1"}
    run = subprocess.run([sys.executable, f"benchmarks/{script}", "--quick", "--json", str(tmp_path / "out.json")],
                         cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert (tmp_path / "out.json").stat().st_size > 0
