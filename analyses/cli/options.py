"""argparse options generated from config dataclasses (STYLE.md §3): one ``--option`` per field, the
field's docstring as its help, ``Literal`` fields as choices, cross-field checks left to the
dataclass's ``__post_init__``. Shared by every ``superscope`` subcommand."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from typing import Any


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal right after each field)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parse_optional(inner: typing.Callable[[str], Any]) -> typing.Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null", "auto") else inner(text)
    return parse


def _argument_kwargs(tp: Any) -> dict[str, Any] | None:
    """argparse kwargs for a field type, or None for types the CLI does not expose (dicts)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            kw = _argument_kwargs(rest[0])
            if kw is None or "choices" in kw:
                return kw
            return {**kw, "type": _parse_optional(kw.get("type", str)), "metavar": getattr(rest[0], "__name__", "X").upper() + "|none"}
        return {"type": str}
    if origin is typing.Literal:
        return {"choices": list(args)}
    if origin in (tuple, list):
        item = args[0] if args else str
        return {"type": item, "nargs": len(args) if origin is tuple and Ellipsis not in args else "*"}
    if tp is bool:
        return {"type": _parse_bool, "metavar": "true|false", "nargs": "?", "const": True}  # bare --flag = true
    if tp in (int, float, str):
        return {"type": tp}
    return None


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                       skip: tuple[str, ...] = (), title: str | None = None) -> None:
    """Add ``--<prefix><field>`` for every field of ``cls`` (default: keep the dataclass default)."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    group = parser.add_argument_group(title or cls.__name__, (cls.__doc__ or "").strip().split("\n")[0])
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kw = _argument_kwargs(hints[f.name])
        if kw is None:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        doc = docs.get(f.name, "")
        stated = "(default:" in doc  # the field's docstring says what its default means (e.g. "the run's main hook")
        group.add_argument(f"--{prefix}{f.name.replace('_', '-')}", dest=f"{prefix.replace('-', '_')}{f.name}",
                           default=None, help=(doc if stated else f"{doc} (default: {default})").replace("%", "%%"),
                           **kw)


def from_args(cls: type, args: argparse.Namespace, prefix: str = "", base: Any = None, **overrides: Any) -> Any:
    """Build ``cls`` from parsed args: options given on the command line replace ``base``'s values
    (or the defaults); ``overrides`` win over both."""
    values = dataclasses.asdict(base) if base is not None else {}
    for f in dataclasses.fields(cls):
        given = getattr(args, f"{prefix.replace('-', '_')}{f.name}", None)
        if given is not None:
            values[f.name] = tuple(given) if isinstance(given, list) and "tuple" in str(f.type) else given
    values.update(overrides)
    return cls(**values)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, except for options whose help already states the dataclass default
    (``add_dataclass_args`` writes it; argparse's own would add a second, wrong "(default: None)")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_command(subparsers: Any, name: str, help: str, func: Any, *configs: type | tuple[type, tuple[str, ...]]) -> argparse.ArgumentParser:
    """One subcommand: ``--option``s from each config dataclass (a ``(cls, skip)`` pair leaves fields out)
    and ``func(args)`` as what it runs. Returns the subparser."""
    parser = subparsers.add_parser(name, help=help, formatter_class=HelpFormatter)
    for config in configs:
        cls, skip = config if isinstance(config, tuple) else (config, ())
        add_dataclass_args(parser, cls, skip=skip)
    parser.set_defaults(func=func)
    return parser
