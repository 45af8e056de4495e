"""Find latents whose steering moves the continuation toward their top tokens (issue 16's examples).

A systematic search on a run's SAE (the feature browser's data), in four steps:

1. **Candidates** (``candidates``, no model): latents neither dead nor dense (density in [d_min, d_max])
   whose top activating examples concentrate on one word family (share of the K top examples centred on
   it ≥ ``min_share``); those whose decoder also promotes that family directly (VocabProj: the feature
   data's top logit tokens, (W_dec[f]/s) @ W_U) rank first, then by share. Word family: the same word up
   to case and leading space, or one a prefix of the other with the shorter ≥ 4 letters.
2. **Pre-screen** (one dose-response per candidate, no generation): ``add`` α·d_f with α = m × the
   latent's largest activation in residual units (max_act·‖W_dec[f]‖/s) for m in ``--multiples``; the mean
   change of the top token's logit on held-out contexts (``interventions.dose_response``).
3. **Generation screen**: greedy continuations of neutral prompts with the edit at each multiple; the
   score is the number of family tokens in the steered continuation minus in the clean one.
4. **Pick** (``pick``): per latent the smallest α whose continuation gains family tokens without
   degenerating (distinct-token ratio ≥ ``min_distinct``); the best ``n`` latents with distinct top tokens
   by gain. Each pick is then run through ``superscope steer`` (a subprocess: the very command recorded),
   and its result JSON (continuations, KL, ΔCE, dose-response) is copied into the JSON written here.

    python -m superscope.benchmarks.steering_examples --run runs/default --include 1902 \
        --json benchmarks/results/steering_examples.json       # ~10 min on 2 busy cores (load 3-7)
    python benchmarks/steering_examples.py --quick --json /tmp/out.json     # 6 candidates, no steer step
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HOOK = "blocks.15.hook_resid_post"
PROMPTS = ("Here is a short story about my day. First,", "The history of the language began")
"""Neutral prompts (the screen uses the first unless --prompts says otherwise)."""


def normalize(token: str) -> str:
    """A token as a word: no surrounding space, lower case."""
    return token.strip().lower()


def same_family(a: str, b: str) -> bool:
    """Same word up to case and space, or one a prefix of the other with the shorter ≥ 4 letters."""
    a, b = normalize(a), normalize(b)
    if not a or not b:
        return False
    short, long_ = sorted((a, b), key=len)
    return a == b or (len(short) >= 4 and long_.startswith(short))


def family_count(tokens: Sequence[str], family: Sequence[str]) -> int:
    """How many of ``tokens`` belong to the word family of any of ``family``."""
    return sum(any(same_family(t, w) for w in family) for t in tokens)


def distinct_ratio(tokens: Sequence[str]) -> float:
    """Distinct tokens / tokens (1 = no repeats; a looping continuation scores low)."""
    return len(set(tokens)) / len(tokens) if tokens else 0.0


@dataclass(frozen=True)
class Candidate:
    """A latent worth steering, from the feature data alone."""

    latent: int
    top_token: str
    """The most common word (normalised) the latent's top examples are centred on."""
    top_token_id: int
    """The most common token id of that word among the top examples (the sweep's target)."""
    share: float
    """Fraction of the top examples centred on that word's family."""
    family: tuple[str, ...]
    """The token strings of the top examples in that family, and the promoted tokens in it."""
    promoted: tuple[str, ...]
    """The decoder's top promoted tokens (VocabProj)."""
    agrees: bool
    """Whether a promoted token is in the top token's family."""
    density: float
    max_act: float


def candidates(center_FK: Sequence[Sequence[int]], logit_top_FL: Sequence[Sequence[int]],
               density_F: Sequence[float], max_act_F: Sequence[float], strings: Mapping[int, str], *,
               d_min: float = 5e-4, d_max: float = 0.05, min_share: float = 0.25, min_letters: int = 4,
               per_word: int = 2) -> list[Candidate]:
    """Latents (step 1 of the module docstring), best first: agreeing ones, then the others, each by share and
    then density (a more frequent word is easier to steer into text); at most ``per_word`` latents per top
    word. The top word must be ≥ ``min_letters`` letters: punctuation and short function words ('.', ' of')
    are in almost any continuation, so counting them says little."""
    out = []
    for f, (centers, promoted_ids) in enumerate(zip(center_FK, logit_top_FL)):
        if not d_min <= density_F[f] <= d_max:
            continue
        ids = [int(i) for i in centers if i >= 0]
        words = Counter(normalize(strings.get(i, "")) for i in ids)
        words.pop("", None)
        if not ids or not words:
            continue
        word = max(words, key=lambda w: (sum(n for v, n in words.items() if same_family(v, w)), words[w], -len(w)))
        if not (word.isalpha() and len(word) >= min_letters):
            continue
        in_family = [i for i in ids if same_family(strings.get(i, ""), word)]
        share = len(in_family) / len(ids)
        if share < min_share:
            continue
        promoted = tuple(strings.get(int(i), f"<{int(i)}>") for i in promoted_ids)
        agreeing = [p for p in promoted if same_family(p, word)]
        family = tuple(dict.fromkeys([strings[i] for i in in_family] + agreeing))
        top_id = Counter(in_family).most_common(1)[0][0]
        out.append(Candidate(f, word, top_id, share, family, promoted, bool(agreeing), float(density_F[f]),
                             float(max_act_F[f])))
    out.sort(key=lambda c: (not c.agrees, -c.share, -c.density, c.latent))
    seen: Counter[str] = Counter()
    kept = []
    for c in out:
        seen[c.top_token] += 1
        if seen[c.top_token] <= per_word:
            kept.append(c)
    return kept


@dataclass(frozen=True)
class Trial:
    """One steered greedy continuation of one prompt."""

    latent: int
    multiple: float
    alpha: float
    prompt: str
    clean: str
    steered: str
    gain: int
    """Family tokens in the steered continuation minus in the clean one."""
    distinct: float
    """Distinct-token ratio of the steered continuation."""


def pick(trials: Sequence[Trial], top_tokens: Mapping[int, str], n: int = 3, *, min_gain: int = 1,
         min_distinct: float = 0.5) -> list[Trial]:
    """Step 4: per latent the trial with the smallest α (then the larger gain) that gains ≥ ``min_gain`` family
    tokens with a distinct-token ratio ≥ ``min_distinct``; the ``n`` best latents by that gain (ties: smaller
    α), at most one per top token."""
    best: dict[int, Trial] = {}
    for t in trials:
        if t.gain < min_gain or t.distinct < min_distinct:
            continue
        b = best.get(t.latent)
        if b is None or (t.alpha, -t.gain) < (b.alpha, -b.gain):
            best[t.latent] = t
    chosen: list[Trial] = []
    for t in sorted(best.values(), key=lambda t: (-t.gain, t.multiple, t.latent)):
        if len(chosen) < n and all(not same_family(top_tokens[t.latent], top_tokens[c.latent]) for c in chosen):
            chosen.append(t)
    return chosen


# ---- the model steps -----------------------------------------------------------------------------

def residual_scale(sae: Any, f: int, max_act: float) -> float:
    """The latent's largest activation as a residual norm: max_act · ‖W_dec[f]‖ / s (``add`` adds α·d_f/‖d_f‖)."""
    return float(max_act * sae.W_dec[f].detach().norm() / sae.cfg.input_scale)


def prescreen(model: Any, sae: Any, hook: str, cands: Sequence[Candidate], contexts: Any,
              multiples: Sequence[float]) -> dict[int, dict[str, Any]]:
    """Step 2: the dose-response of the top token's logit at α = m × scale for every candidate."""
    from superscope.interventions import Edit, dose_response

    out = {}
    for c in cands:
        scale = residual_scale(sae, c.latent, c.max_act)
        alphas = [round(m * scale, 1) for m in multiples]
        dr = dose_response(model, sae, Edit(hook, c.latent, "add", 0.0), alphas, contexts, target=c.top_token_id)
        out[c.latent] = {"scale": scale, "alphas": alphas, "logit_delta": list(dr.logit_delta), "kl": list(dr.kl),
                         "prob": list(dr.prob), "prob_clean": dr.prob_clean}
    return out


def generation_screen(model: Any, sae: Any, hook: str, cands: Sequence[Candidate], pre: Mapping[int, dict],
                      multiples: Sequence[float], prompts: Sequence[str], new_tokens: int,
                      on_trial: Any = None) -> list[Trial]:
    """Step 3: greedy continuations of every prompt, clean once, steered at every multiple (``on_trial``
    is called with the trials so far after each)."""
    from superscope.interventions import Edit
    from superscope.interventions.generation import continue_tokens
    from superscope.interventions.steering import Steering

    def run(tokens: Any) -> list[str]:
        new = continue_tokens(model, tokens, new_tokens, True, 0, 1.0, None, False)
        return [model.tokenizer.decode([t]) for t in new.tolist()]

    trials = []
    for prompt in prompts:
        tokens = model.to_tokens(prompt)
        clean = run(tokens)
        for c in cands:
            for m, alpha in zip(multiples, pre[c.latent]["alphas"]):
                with Steering(model, sae, [Edit(hook, c.latent, "add", alpha)], check=False):
                    steered = run(tokens)
                gain = family_count(steered, c.family) - family_count(clean, c.family)
                trials.append(Trial(c.latent, m, alpha, prompt, "".join(clean), "".join(steered), gain,
                                    distinct_ratio(steered)))
                if on_trial is not None:
                    on_trial(trials)
                print(f"  f{c.latent} ({c.top_token!r}) ×{m:g} α={alpha:g}: gain {gain:+d}  {''.join(steered)!r}",
                      flush=True)
    return trials


def steer_command(run: str, t: Trial, target: str, sweep: Sequence[float], contexts: int) -> list[str]:
    return ["superscope", "steer", run, "--latent", str(t.latent), "--alpha", f"{t.alpha:g}", "--prompt", t.prompt,
            "--target", target, "--contexts", str(contexts), "--sweep", *[f"{v:g}" for v in sweep]]


def steer_picks(args: argparse.Namespace, picks: Sequence[Trial], cands: Mapping[int, Candidate],
                target: Mapping[int, str], explanations: Mapping[int, str]) -> list[dict[str, Any]]:
    """Run ``superscope steer`` for each pick (sweep 0…2α) and collect its result (<run>/steering/<name>.json)."""
    from superscope.saes.atomic_io import read_json

    exe = Path(sys.executable).parent / "superscope"
    out = []
    for t in picks:
        sweep = [round(t.alpha * m, 1) for m in (0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2)]
        cmd = steer_command(args.run, t, target[t.latent], sweep, args.steer_contexts)
        print("$", shlex.join(cmd), flush=True)
        subprocess.run([str(exe), *cmd[1:]], check=True, env={**os.environ, "TQDM_DISABLE": "1"})
        name = f"{args.arch}_f{t.latent}_add{t.alpha:g}"
        res = read_json(Path(args.run) / "steering" / f"{name}.json", "steering result")
        g, c, d = res["generation"], res["cost"], res["dose"]
        out.append({"latent": t.latent, "top_token": target[t.latent], "family": list(cands[t.latent].family),
                    "promoted": list(cands[t.latent].promoted), "explanation": explanations.get(t.latent),
                    "alpha": t.alpha, "multiple_of_max_act": t.multiple, "prompt": g["prompt"], "clean": g["clean"],
                    "steered": g["steered"], "family_tokens_clean": family_count(g["clean_tokens"], cands[t.latent].family),
                    "family_tokens_steered": family_count(g["steered_tokens"], cands[t.latent].family),
                    "generation_mean_kl": g["mean_kl"], "kl": c["kl"], "ce_clean": c["ce_clean"],
                    "ce_steered": c["ce_steered"], "ce_delta": c["ce_delta"], "n_heldout_tokens": c["n_tokens"],
                    "dose": {k: d[k] for k in ("target", "values", "logit_delta", "prob", "prob_clean", "kl",
                                               "n_contexts", "context_len")},
                    "result_json": str(Path(args.run) / "steering" / f"{name}.json"), "command": shlex.join(cmd),
                    "steer_seconds": res["seconds"]})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default="runs/default", help="run folder (its SAE, feature data and held-out contexts)")
    p.add_argument("--hook", default=HOOK)
    p.add_argument("--arch", default="topk")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="6 candidates, 1 prompt, 16 tokens, no steer step")
    p.add_argument("--candidates", type=int, default=20, help="candidates pre-screened")
    p.add_argument("--include", type=int, nargs="*", default=[],
                   help="latents screened whatever their rank (each must pass the candidate filter)")
    p.add_argument("--generate", type=int, default=6, help="pre-screened candidates given the generation screen")
    p.add_argument("--multiples", type=float, nargs="+", default=[3.0, 5.0],
                   help="α as multiples of the latent's largest activation (residual units)")
    p.add_argument("--prompts", nargs="+", default=list(PROMPTS[:1]))
    p.add_argument("--new-tokens", type=int, default=24, help="tokens of each screening continuation")
    p.add_argument("--steer-contexts", type=int, default=32, help="held-out contexts of each pick's cost and sweep")
    p.add_argument("--screen-contexts", type=int, default=4, help="held-out contexts of the pre-screen")
    p.add_argument("--n", type=int, default=3, help="latents to pick")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.quick:
        args.candidates, args.generate, args.prompts, args.new_tokens = 6, 2, args.prompts[:1], 16
    command = "python -m superscope.benchmarks.steering_examples " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    root = Path(args.run)
    if not (root / "run.json").is_file():
        if not args.quick:
            raise SystemExit(f"no run folder at {root} (no run.json): make it with `superscope run`")
        result = {"command": command, "skipped": f"no run folder at {root}: nothing to search"}
        print(result["skipped"])
        if args.json:
            _write(args.json, result)
        return result
    return search(args, command)


def _write(path: Path, data: dict[str, Any]) -> None:
    from superscope.benchmarks._timing import write_json

    write_json(path, data)


def search(args: argparse.Namespace, command: str) -> dict[str, Any]:
    import torch

    from superscope.activations import load_model
    from superscope.analyses.evals.autointerp import read_autointerp
    from superscope.analyses.features.storage import FeatureData
    from superscope.benchmarks._timing import environment
    from superscope.interventions.run_folder import heldout_contexts, load_run_sae

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    root = Path(args.run)
    fd = FeatureData(root / "features" / args.hook / args.arch)
    a = fd.arrays
    arrays = (a["top_center_FK"].tolist(), a["logit_top_ids_FL"].tolist(), a["density_F"].tolist(),
              a["max_act_F"].tolist(), fd.strings)
    cands = candidates(*arrays)
    print(f"{len(cands)} candidates ({sum(c.agrees for c in cands)} whose decoder promotes their top token's family)")
    ai = read_autointerp(root, args.hook, args.arch) or {}
    explain = {f: ai["explanation"][f] for f in range(len(ai.get("explanation", [])))}
    cands = cands[:args.candidates]
    if args.include:  # past the per-word cap too
        have = {c.latent for c in cands}
        cands += [c for c in candidates(*arrays, per_word=len(a["density_F"])) if c.latent in args.include
                  and c.latent not in have]
    by_id = {c.latent: c for c in cands}
    model = load_model(None)
    sae = load_run_sae(root, args.hook, args.arch)
    contexts = heldout_contexts(root, args.hook, args.screen_contexts)
    t0 = time.perf_counter()
    pre = prescreen(model, sae, args.hook, cands, contexts, args.multiples)
    pre_s = time.perf_counter() - t0
    partial: dict[str, Any] = {"command": command, "partial": True, "prescreen": {str(f): v for f, v in pre.items()}}
    if args.json:
        _write(args.json, partial)
    # generation screen: the candidates whose top-token logit rises most at the middle multiple
    mid = len(args.multiples) // 2
    ranked = sorted(cands, key=lambda c: -pre[c.latent]["logit_delta"][mid])
    screened = [c for c in ranked if pre[c.latent]["logit_delta"][mid] > 0][:args.generate]
    screened += [c for c in cands if c.latent in args.include and c not in screened]  # checked again, whatever rank
    print(f"pre-screen {pre_s:.0f} s; generating for {[c.latent for c in screened]}")
    t0 = time.perf_counter()
    def save_partial(trials: list[Trial]) -> None:
        if args.json:
            _write(args.json, {**partial, "trials": [asdict(t) for t in trials]})

    trials = generation_screen(model, sae, args.hook, screened, pre, args.multiples, args.prompts, args.new_tokens,
                               save_partial)
    gen_s = time.perf_counter() - t0
    chosen = pick(trials, {c.latent: c.top_token for c in cands}, args.n)
    result: dict[str, Any] = {
        "command": command, "run": str(root), "hook": args.hook, "arch": args.arch, "quick": args.quick,
        "settings": {k: v for k, v in vars(args).items() if k not in ("json",)},
        "candidates": [{**asdict(c), "explanation": explain.get(c.latent)} for c in cands],
        "prescreen": {str(f): v for f, v in pre.items()}, "prescreen_seconds": pre_s,
        "trials": [asdict(t) for t in trials], "generation_seconds": gen_s,
        "picked": [asdict(t) for t in chosen], "environment": environment()}
    if not args.quick:
        result["examples"] = steer_picks(args, chosen, by_id, {c.latent: fd.token(c.top_token_id) for c in cands},
                                         explain)
    result["wall_s"] = time.perf_counter() - started
    report(result)
    if args.json:
        _write(args.json, result)
    return result


def report(result: dict[str, Any]) -> None:
    print(f"\npicked ({result['wall_s']:.0f} s):")
    for t in result["picked"]:
        print(f"  f{t['latent']} α={t['alpha']:g} gain {t['gain']:+d}\n    clean:   {t['clean']!r}\n"
              f"    steered: {t['steered']!r}")


if __name__ == "__main__":
    main()
