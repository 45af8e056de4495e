"""`superscope bfs train | eval | probe`: the Coconut graph-reachability models and their BFS probe.

Options are generated from the config dataclasses (BFSTrainConfig, GraphConfig, ProbeConfig); each
field's docstring becomes its --help text.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from pathlib import Path

from superscope.probes.bfs.checkpoint import atomic_write_json, load_bfs_checkpoint
from superscope.probes.bfs.generator import GraphConfig, generate_problems
from superscope.probes.bfs.probe import ProbeConfig, bfs_probe


def field_docs(cls) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal right after each field)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body, docs = tree.body[0].body, {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def add_dataclass_args(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One --option per field; default None means "keep the config's default" (shown in help)."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp, kw = hints[f.name], {}
        if typing.get_origin(tp) is typing.Literal:
            kw["choices"] = typing.get_args(tp)
        elif tp is bool:
            kw["type"] = lambda s: s.lower() in ("1", "true", "yes")
        else:
            kw["type"] = tp
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                           help=f"{docs.get(f.name, '')} (default: {f.default})", **kw)


def from_args(cls, args: argparse.Namespace, base=None):
    """Build `cls` from the namespace, starting from `base` (or the defaults) for unset options."""
    base = base if base is not None else cls()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
    return dataclasses.replace(base, **given)


def _cmd_train(args: argparse.Namespace) -> None:
    from superscope.analyses.bfs_train import BFSTrainConfig, train_and_save

    cfg = from_args(BFSTrainConfig, args, BFSTrainConfig.gpu() if args.preset == "gpu" else BFSTrainConfig())
    graph = from_args(GraphConfig, args, GraphConfig.gpu() if args.preset == "gpu" else GraphConfig())
    out = Path(args.out) if args.out else (Path(args.run) / "bfs" / cfg.method if args.run else None)
    if out is None:
        raise SystemExit("bfs train: give --out PATH_STEM or --run runs/<name> (writes <run>/bfs/<method>)")
    outcome = train_and_save(cfg, graph, out, progress=not args.quiet)
    m = outcome.metrics
    print(f"{cfg.method}: test accuracy {m['test']['accuracy']:.4f} (n={m['test']['n']}), "
          f"train wall {m['train_wall_s']:.0f}s cpu {m['train_cpu_s']:.0f}s -> {out}.safetensors/.json")


def _problems(args, graph: GraphConfig):
    return generate_problems(graph, args.n, args.seed)


def _cmd_eval(args: argparse.Namespace) -> None:
    from superscope.probes.bfs.evaluate import accuracy

    ck = load_bfs_checkpoint(args.checkpoint, device=args.device)
    res = accuracy(ck.model, _problems(args, ck.graph), ck.vocab, ck.method)
    print(f"{args.checkpoint} ({ck.method}): accuracy {res.accuracy:.4f} on {res.n} fresh problems "
          f"(seed {args.seed}); by hops {res.accuracy_by_hops}")
    if args.run:
        atomic_write_json(Path(args.run) / "probes" / f"bfs_eval_{ck.method}.json",
                          {"checkpoint": str(args.checkpoint), "seed": args.seed, **res.to_dict()})


def _cmd_probe(args: argparse.Namespace) -> None:
    pcfg = from_args(ProbeConfig, args)
    ck = load_bfs_checkpoint(args.checkpoint, device=args.device)
    if ck.method != "coconut":
        raise SystemExit(f"bfs probe needs a Coconut checkpoint; {args.checkpoint} is {ck.method}")
    problems = generate_problems(ck.graph, pcfg.n_problems, pcfg.seed)
    res = bfs_probe(ck.model, ck.vocab, problems, pcfg, meta={"checkpoint": str(args.checkpoint),
                                                              "model": ck.model.cfg.to_dict()})
    print(res.table())
    if args.run:
        out = Path(args.run) / "probes" / "bfs.json"
        atomic_write_json(out, res.to_dict())
        print(f"wrote {out}")


def register(subparsers) -> None:
    """Add `bfs` with sub-commands train / eval / probe to a `superscope` argparse subparsers object."""
    bfs = subparsers.add_parser("bfs", help="Coconut on graph reachability and its BFS-superposition probe")
    sub = bfs.add_subparsers(dest="bfs_command", required=True)

    from superscope.analyses.bfs_train import BFSTrainConfig

    tr = sub.add_parser("train", help="train Coconut / CoT / No-CoT (atomic safetensors + JSON checkpoint)")
    tr.add_argument("--preset", choices=("cpu", "gpu"), default="cpu",
                    help="cpu: small model and 12-14-node graphs for 2 cores; gpu: 2 layers, 8 heads, d_model 768, "
                         "15-20-node graphs on CUDA")
    tr.add_argument("--out", help="checkpoint path stem (writes STEM.safetensors and STEM.json)")
    tr.add_argument("--run", help="run folder; the checkpoint goes to <run>/bfs/<method>")
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    add_dataclass_args(tr, BFSTrainConfig)
    add_dataclass_args(tr, GraphConfig)
    tr.set_defaults(func=_cmd_train)

    for name, func, help_ in (("eval", _cmd_eval, "accuracy on freshly generated problems"),
                              ("probe", _cmd_probe, "⟨thought, node embedding⟩ and edge attention by BFS group")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--checkpoint", default="coconut",
                       help="shipped name (coconut, cot, nocot) or a path stem of a checkpoint")
        p.add_argument("--run", help="run folder; results go to <run>/probes/")
        p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run the model")
        if name == "eval":
            p.add_argument("--n", type=int, default=1000, help="problems to generate")
            p.add_argument("--seed", type=int, default=777, help="seed of the generated problems")
        else:
            add_dataclass_args(p, ProbeConfig)
        p.set_defaults(func=func)
