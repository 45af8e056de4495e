"""Document streams (plain text, deterministic given a seed) for the three kinds of corpus.

- embedded: prose that ships with CPython — the language reference (``pydoc_data/topics.py``, one
  document per topic) and standard-library docstrings (one document per module file: its module,
  class and function docstrings in source order, parsed with ``ast`` so nothing is imported);
- local: a ``.txt``/``.md``/``.rst`` file (documents = runs of paragraphs up to ~8,000 characters),
  a ``.jsonl`` file (one document per line, field ``text_field``), or a folder of such files;
- Hugging Face: a dataset streamed from the hub (``datasets.load_dataset(..., streaming=True)``).

Order: the list of documents (topics, files) is shuffled by ``random.Random(seed)``; within long
files a buffer shuffle of ``shuffle_buffer`` documents (the same scheme as ``IterableDataset.shuffle``)
mixes neighbouring documents. The same seed, the same files and the same Python give the same stream.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import random
import re
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["LOCAL_SUFFIXES", "CorpusNotAvailableError", "embedded_documents", "hf_documents", "local_documents"]

LOCAL_SUFFIXES = (".txt", ".md", ".rst", ".jsonl")
_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "turtledemo", "lib2to3",
              "__pycache__", "pydoc_data", "ensurepip", "lib-dynload"}
_RULE = re.compile(r"^[ \t]*([*=\-~^\"#+])\1{2,}[ \t]*$", re.MULTILINE)  # reST underlines: "*****", "====="
_BLANKS = re.compile(r"\n{3,}")
_BLOCK_CHARS = 8000
_MIN_DOCSTRING = 40


class CorpusNotAvailableError(OSError):
    """A corpus source cannot be read (missing files, or the hub is unreachable)."""


def clean(text: str) -> str:
    """Drop reST underline rules and runs of blank lines; strip."""
    return _BLANKS.sub("\n\n", _RULE.sub("", text)).strip()


@functools.lru_cache(maxsize=1)
def _stdlib_files() -> tuple[Path, ...]:
    """The standard library's .py files, sorted by relative path (tests, IDLE, demos and site-packages pruned)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith("config-")]
        files += [Path(folder, n) for n in names if n.endswith(".py")]
    return tuple(sorted(files, key=lambda p: p.relative_to(root).as_posix()))


@functools.cache  # ~1.5 MB of text for the whole stdlib; parsing is the costly part
def _module_docstrings(path: Path) -> str:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                            ast.AsyncFunctionDef))]
    nodes.sort(key=lambda n: getattr(n, "lineno", 0))
    docs = (ast.get_docstring(n, clean=True) for n in nodes)
    return clean("\n\n".join(d for d in docs if d and len(d) >= _MIN_DOCSTRING))


def embedded_documents(seed: int) -> Iterator[str]:
    """The embedded default corpus (~450k SmolLM2 tokens on CPython 3.11), shuffled by ``seed``."""
    from pydoc_data.topics import topics

    refs: list[tuple[str, object]] = [("topic", k) for k in sorted(topics)]
    refs += [("module", p) for p in _stdlib_files()]
    random.Random(seed).shuffle(refs)
    for kind, ref in refs:
        text = clean(topics[ref]) if kind == "topic" else _module_docstrings(ref)  # type: ignore[index,arg-type]
        if text:
            yield text


def _paragraph_blocks(text: str) -> Iterator[str]:
    """Split a long text into documents: consecutive paragraphs, at most ~_BLOCK_CHARS characters each."""
    block: list[str] = []
    size = 0
    for para in re.split(r"\n\s*\n", text):
        if block and size + len(para) > _BLOCK_CHARS:
            yield clean("\n\n".join(block))
            block, size = [], 0
        block.append(para)
        size += len(para) + 2
    if block and clean("\n\n".join(block)):
        yield clean("\n\n".join(block))


def _file_documents(path: Path, text_field: str) -> Iterator[str]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line)[text_field]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{lineno}: expected a JSON object with a string field "
                                     f"{text_field!r} ({exc.__class__.__name__}); set text_field") from None
                if not isinstance(text, str):
                    raise TypeError(f"{path}:{lineno}: field {text_field!r} is not a string; set text_field")
                if text.strip():
                    yield text
    else:
        yield from _paragraph_blocks(path.read_text(encoding="utf-8", errors="replace"))


def _buffer_shuffle(items: Iterable[str], size: int, rng: random.Random) -> Iterator[str]:
    buffer: list[str] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        i = rng.randrange(size)
        yield buffer[i]
        buffer[i] = item
    rng.shuffle(buffer)
    yield from buffer


def local_files(path: Path) -> list[Path]:
    """The text files a local corpus path stands for (sorted); errors name the accepted suffixes."""
    if not path.exists():
        raise CorpusNotAvailableError(f"corpus path {str(path)!r} does not exist; give a {'/'.join(LOCAL_SUFFIXES)} "
                                      "file or a folder of them, a Hugging Face dataset name, or 'default'")
    if path.is_file():
        if path.suffix not in LOCAL_SUFFIXES:
            raise ValueError(f"corpus file {str(path)!r} has an unsupported suffix; use one of {LOCAL_SUFFIXES}")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in LOCAL_SUFFIXES)
    if not files:
        raise ValueError(f"corpus folder {str(path)!r} contains no {'/'.join(LOCAL_SUFFIXES)} files")
    return files


def local_documents(path: Path, seed: int, text_field: str = "text", shuffle_buffer: int = 1000) -> Iterator[str]:
    """Documents of local files: file order shuffled by ``seed``, then a buffer shuffle of documents."""
    files = local_files(path)
    rng = random.Random(seed)
    rng.shuffle(files)
    docs = (doc for f in files for doc in _file_documents(f, text_field))
    yield from _buffer_shuffle(docs, max(1, shuffle_buffer), rng)


def hf_documents(name: str, seed: int, config: str | None = None, split: str = "train",
                 text_field: str = "text", shuffle_buffer: int = 10_000) -> Iterator[str]:
    """Documents of a Hugging Face dataset, streamed and buffer-shuffled by ``seed`` (needs the hub or
    the local datasets cache)."""
    import datasets

    hint = ("use corpus='default' (the embedded CPython prose) or a local folder of "
            f"{'/'.join(LOCAL_SUFFIXES)} files")
    try:
        ds = datasets.load_dataset(name, config, split=split, streaming=True)
        rows = iter(ds.shuffle(seed=seed, buffer_size=shuffle_buffer))
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            if text_field not in row:
                raise ValueError(f"dataset {name!r} has no field {text_field!r} (fields: {sorted(row)}); "
                                 "set text_field")
            if isinstance(row[text_field], str) and row[text_field].strip():
                yield row[text_field]
    except (ConnectionError, FileNotFoundError, OSError) as exc:
        raise CorpusNotAvailableError(f"cannot stream Hugging Face dataset {name!r} "
                                      f"({exc.__class__.__name__}: {str(exc)[:200]}); {hint}") from None
    except Exception as exc:  # datasets raises its own DatasetNotFoundError etc.
        if exc.__class__.__name__.endswith(("NotFoundError", "OfflineModeIsEnabled")):
            raise CorpusNotAvailableError(f"cannot find Hugging Face dataset {name!r} ({exc}); {hint}") from None
        raise
