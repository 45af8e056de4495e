"""saes/atomic_io.py is the package's one atomic writer: every writer fsyncs before the rename, and a write
that fails leaves neither a partial file nor a temp file (the previous file, if any, stays as it was)."""

import ast
import importlib.util
import os
from pathlib import Path

import pytest
import torch

import superscope
from superscope.saes import atomic_io
from superscope.saes.atomic_io import (
    read_json,
    read_safetensors,
    write_bytes,
    write_folder,
    write_json,
    write_safetensors,
    write_text,
)


class Boom(Exception):
    pass


def _fill_folder(tmp: Path) -> None:
    (tmp / "a.txt").write_text("new")
    (tmp / "sub").mkdir()
    (tmp / "sub" / "b.txt").write_text("new")


def _fill_then_fail(tmp: Path) -> None:
    (tmp / "a.txt").write_text("half")
    raise Boom


class _Unserialisable:
    """json.dump has written part of the file when it reaches this value and raises TypeError."""


# name → (a good write, a write that raises after part of the output is written, how to read the result)
WRITERS = {
    "json": (lambda p: write_json(p, {"a": 1, "b": [1, 2]}),
             lambda p: write_json(p, {"a": "x" * 10_000, "b": _Unserialisable()}),
             lambda p: read_json(p)),
    "json_sorted": (lambda p: write_json(p, {"b": 1, "a": 2}, sort_keys=True),
                    lambda p: write_json(p, {"a": "x" * 10_000, "b": _Unserialisable()}, sort_keys=True),
                    lambda p: p.read_text()),
    "bytes": (lambda p: write_bytes(p, b"\x00new"), None, lambda p: p.read_bytes()),
    "text": (lambda p: write_text(p, "neu ✓"), None, lambda p: p.read_text(encoding="utf-8")),
    "safetensors": (lambda p: write_safetensors(p, {"w": torch.arange(6.0).view(2, 3)}, {"k": "v"}), None,
                    lambda p: read_safetensors(p)["w"].tolist()),
    "folder": (lambda p: write_folder(p, _fill_folder),
               lambda p: write_folder(p, _fill_then_fail),
               lambda p: sorted(str(f.relative_to(p)) for f in p.rglob("*"))),
}


HAVE_PROC = os.path.isdir("/proc/self/fd")


@pytest.fixture
def fsync_log(monkeypatch):
    """Record every fsync (by path, where /proc tells it) and rename; a rename's source must be fsynced first."""
    log = {"fsynced": [], "replaced": []}
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log["fsynced"].append(os.readlink(f"/proc/self/fd/{fd}") if HAVE_PROC else fd)
        return real_fsync(fd)

    def replace(src, dst):
        if HAVE_PROC:
            assert str(Path(src).resolve()) in log["fsynced"], f"{src} renamed before it was fsynced"
        log["replaced"].append((str(src), str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic_io.os, "fsync", fsync)
    monkeypatch.setattr(atomic_io.os, "replace", replace)
    return log


def _leftovers(folder: Path, target: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p != target]


@pytest.mark.parametrize("name", list(WRITERS))
def test_writer_fsyncs_before_rename(name, tmp_path, fsync_log):
    good, _, read = WRITERS[name]
    target = tmp_path / "out" / "target"
    assert good(target) == target
    assert fsync_log["fsynced"], f"{name} did not fsync"
    assert [dst for _, dst in fsync_log["replaced"]] == [str(target)]
    assert read(target)
    assert _leftovers(target.parent, target) == []
    if name == "folder" and HAVE_PROC:  # every file in the folder is flushed, not only the folder
        tmp = str(Path(fsync_log["replaced"][0][0]).resolve())
        assert {f"{tmp}/a.txt", f"{tmp}/sub/b.txt", f"{tmp}/sub", tmp} <= set(fsync_log["fsynced"])


def _check_untouched(target: Path, read, before) -> None:
    if before is None:
        assert not target.exists()
    else:
        assert read(target) == before
    assert _leftovers(target.parent, target) == []


def _raise_oserror(fd):
    raise OSError(28, "No space left on device (simulated)")


@pytest.mark.parametrize("name", [n for n, (_, failing, _) in WRITERS.items() if failing is not None])
@pytest.mark.parametrize("existing", [False, True])
def test_write_that_raises_part_way_leaves_no_partial_file(name, existing, tmp_path):
    good, failing, read = WRITERS[name]
    target = tmp_path / "target"
    before = read(good(target)) if existing else None
    with pytest.raises((Boom, TypeError, AttributeError)):
        failing(target)
    _check_untouched(target, read, before)


@pytest.mark.parametrize("name", list(WRITERS))
@pytest.mark.parametrize("existing", [False, True])
def test_failed_fsync_leaves_no_partial_file(name, existing, tmp_path, monkeypatch):
    """The data is written but the flush fails (disk full, I/O error): nothing is renamed."""
    good, _, read = WRITERS[name]
    target = tmp_path / "target"
    before = read(good(target)) if existing else None
    monkeypatch.setattr(atomic_io.os, "fsync", _raise_oserror)
    with pytest.raises(OSError, match="simulated"):
        good(target)
    monkeypatch.undo()
    _check_untouched(target, read, before)


@pytest.mark.parametrize("existing", [False, True])
def test_the_shared_rename_step_drops_a_half_written_temp_file(existing, tmp_path):
    """What every writer above goes through (safetensors' writer included): ``write(tmp)`` writes part of
    the file and raises."""
    target = tmp_path / "target.bin"
    if existing:
        target.write_bytes(b"old")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise Boom

    with pytest.raises(Boom):
        atomic_io._replace_from_temp(target, write)
    _check_untouched(target, Path.read_bytes, b"old" if existing else None)


def test_folder_write_refuses_to_replace_a_filled_folder(tmp_path):
    target = tmp_path / "cache"
    write_folder(target, _fill_folder)
    with pytest.raises(OSError):
        write_folder(target, lambda tmp: (tmp / "other.txt").write_text("x"))
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "sub"]
    assert _leftovers(tmp_path, target) == []


def test_json_format(tmp_path):
    assert write_json(tmp_path / "a.json", {"b": 1, "a": 2}).read_text() == '{\n  "b": 1,\n  "a": 2\n}\n'
    assert write_json(tmp_path / "b.json", {"b": 1, "a": 2}, sort_keys=True).read_text() == \
        '{\n  "a": 2,\n  "b": 1\n}\n'


def test_no_other_module_renames_temp_files():
    """Atomic writes live in saes/atomic_io.py only: no other package module calls os.replace, rename or
    mkstemp/mkdtemp (call atomic_io's write_* instead)."""
    roots = [Path(p) for p in superscope.__path__]
    for sub in ("saes", "kernels", "activations", "probes", "analyses", "dashboards"):  # found, not imported
        roots += [Path(p) for p in importlib.util.find_spec(f"superscope.{sub}").submodule_search_locations]
    offenders = []
    for root in roots:
        for path in root.rglob("*.py"):
            if path.name == "atomic_io.py" and path.parent.name == "saes":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                        node.func.attr in ("replace", "rename", "mkstemp", "mkdtemp"):
                    base = node.func.value
                    if isinstance(base, ast.Name) and base.id in ("os", "tempfile") or node.func.attr == "rename":
                        offenders.append(f"{path}:{node.lineno}")
    assert offenders == []
