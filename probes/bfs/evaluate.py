"""Answer accuracy of a trained model on reachability problems (Coconut, CoT, No-CoT).

Coconut runs `hops` continuous thoughts, then [A], and reads the answer as the arg-max over the whole
vocabulary (Coconut's ProsQA protocol uses as many thoughts as the problem's reasoning steps).
CoT / No-CoT decode greedily from the prompt; the answer is the token right after the first [A].
A prediction counts only if it equals the target (chance is 50 % among the two candidates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from superscope.saes.result_repr import Headline, ResultRepr, format_value

from .batches import Method
from .coconut import coconut_forward, collate_prompts
from .generator import Problem
from .model import GPT
from .tokens import Vocab, encode_prompt


@dataclass(frozen=True, repr=False)
class BFSEvalResult(ResultRepr):
    method: str
    n: int
    accuracy: float
    """Share of problems answered with the target."""
    accuracy_by_hops: dict[int, float]
    path_valid: float | None
    """CoT only: share of generated paths that follow graph edges from the root to the answer."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["accuracy_by_hops"] = {str(k): v for k, v in self.accuracy_by_hops.items()}
        return d

    def headline(self) -> list[Headline]:
        by_hops = ", ".join(f"{h}: {format_value(a, 'pct')}" for h, a in sorted(self.accuracy_by_hops.items()))
        return [("method", self.method, "text"), ("problems", self.n, "count"), ("accuracy", self.accuracy, "pct"),
                ("by hops", by_hops or "—", "text"), ("valid paths", self.path_valid, "pct")]


@torch.no_grad()
def greedy_generate(model: GPT, problems: list[Problem], vocab: Vocab, max_new: int) -> list[list[int]]:
    """Greedy continuation of each prompt (cached, one column per step)."""
    dev = model.W_E.weight.device
    pb = collate_prompts([encode_prompt(p, vocab).ids for p in problems], vocab, dev)
    out = model(model.embed(pb.ids), pb.pos, pb.ok)
    cache, key_ok = out.cache, pb.ok
    nxt = model.logits(out.hidden[:, -1]).argmax(-1)
    gen = [nxt]
    for j in range(1, max_new):
        key_ok = torch.cat([key_ok, torch.ones_like(key_ok[:, :1])], 1)
        o = model(model.embed(nxt)[:, None], (pb.n_real + j - 1)[:, None], key_ok, cache)
        cache = o.cache
        nxt = model.logits(o.hidden[:, 0]).argmax(-1)
        gen.append(nxt)
    return torch.stack(gen, 1).tolist()


def _parse(seq: list[int], vocab: Vocab) -> tuple[list[int], int]:
    """(nodes before the first [A], the token after it or -1)."""
    if vocab.A not in seq:
        return seq, -1
    i = seq.index(vocab.A)
    return seq[:i], (seq[i + 1] if i + 1 < len(seq) else -1)


def _valid_path(p: Problem, path: list[int], answer: int) -> bool:
    edges = set(p.edges)
    chain = [p.root] + path
    return bool(path) and path[-1] == answer and all((a, b) in edges for a, b in zip(chain, chain[1:]))


@torch.no_grad()
def predict(model: GPT, problems: list[Problem], vocab: Vocab, method: Method) -> tuple[list[int], list[bool]]:
    """Predicted answers and (CoT) whether each generated path is a real path to the answer."""
    dev = model.W_E.weight.device
    if method == "coconut":
        pb = collate_prompts([encode_prompt(p, vocab).ids for p in problems], vocab, dev)
        n_t = torch.tensor([p.hops for p in problems], device=dev)
        tail = torch.full((len(problems), 1), vocab.A, device=dev)
        hidden = coconut_forward(model, pb, n_t, tail, vocab).hidden  # step hops+1 = the [A] column
        pred = hidden[torch.arange(len(problems), device=dev), n_t + 1]
        return model.logits(pred).argmax(-1).tolist(), [False] * len(problems)
    max_new = 2 * max(p.hops for p in problems) + 2
    answers, valid = [], []
    for p, seq in zip(problems, greedy_generate(model, problems, vocab, max_new)):
        path, ans = _parse(seq, vocab)
        answers.append(ans)
        valid.append(_valid_path(p, path, ans))
    return answers, valid


def accuracy(model: GPT, problems: list[Problem], vocab: Vocab, method: Method,
             batch_size: int = 256) -> BFSEvalResult:
    """Accuracy over `problems` (in batches), overall and per hop count."""
    was_training = model.training
    model.eval()
    answers, valid = [], []
    for i in range(0, len(problems), batch_size):
        a, v = predict(model, problems[i : i + batch_size], vocab, method)
        answers += a
        valid += v
    model.train(was_training)
    right = [a == p.target for a, p in zip(answers, problems)]
    by_hops = {}
    for h in sorted({p.hops for p in problems}):
        sel = [r for r, p in zip(right, problems) if p.hops == h]
        by_hops[h] = sum(sel) / len(sel)
    return BFSEvalResult(
        method=method, n=len(problems), accuracy=sum(right) / max(len(right), 1),
        accuracy_by_hops=by_hops, path_valid=(sum(valid) / len(valid)) if method == "cot" else None,
    )
