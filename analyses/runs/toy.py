"""A small but complete run folder built from toy data, in seconds: for tests, the benchmarks'
``--quick`` mode (which must run without a real run folder) and the wheel's smoke test.

Toy activations (sparse combinations of 24 ground-truth directions in d = 16, plus noise) stand in
for a model: two hooks × three architectures (TopK / FC / MC, F = 64, k = 4) trained briefly with the
real trainer, evaluated with the real evaluator, probed with the real probes, feature data written by
the real ``write_feature_data`` (with a fake 40-token vocabulary and unembedding), a BFS probe
result from an untrained tiny Coconut model, and an evals/ folder at the main hook from the evaluation
suite's metric code (core, autointerp, sparse probing and absorption on planted toy labels). Held-out
activations are real ShardWriter shards with contexts, so windows, token strings and token feature sets
all work. Nothing in it is a stand-in number: every metric is measured on the toy data (there is no model to splice into, so no CE/KL).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

HOOKS = ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
ARCHS = ("topk", "feature_choice", "mutual_choice")
D, F, K, VOCAB, CTX_LEN, N_CTX = 16, 64, 4, 40, 16, 40


class FakeTokenizer:
    """Token i decodes to a short word (so strings, highlighting and search have something to show)."""

    words = ("the", " of", " and", ".", ",", "\n", " to", " a", " in", " is")

    def decode(self, ids) -> str:
        return "".join(self.words[i] if i < len(self.words) else f" w{i}" for i in ids)

    def batch_decode(self, seqs) -> list[str]:
        return [self.decode(s) for s in seqs]


def fake_model(seed: int = 0) -> SimpleNamespace:
    """What feature data needs of a model: an unembedding W_U [D, VOCAB] and a tokenizer."""
    gen = torch.Generator().manual_seed(seed)
    return SimpleNamespace(W_U=torch.randn(D, VOCAB, generator=gen), tokenizer=FakeTokenizer())


def toy_rows(n_ctx: int, layer: int, seed: int) -> dict[str, torch.Tensor]:
    """Contexts [n_ctx, CTX_LEN] (BOS = 1 first) and one activation row per non-BOS position."""
    gen = torch.Generator().manual_seed(seed)
    contexts = torch.randint(2, VOCAB, (n_ctx, CTX_LEN), generator=gen)
    contexts[:, 0] = 1
    dirs = torch.nn.functional.normalize(torch.randn(24, D, generator=torch.Generator().manual_seed(100 + layer)), dim=1)
    tok_dirs = torch.randint(0, 24, (VOCAB, 2), generator=torch.Generator().manual_seed(200 + layer))
    ctx_ids = torch.arange(n_ctx).repeat_interleave(CTX_LEN - 1)
    pos = torch.arange(1, CTX_LEN).repeat(n_ctx)
    tok = contexts[ctx_ids, pos]
    coef = torch.rand(tok.numel(), 2, generator=gen) * 3
    acts = (coef.unsqueeze(-1) * dirs[tok_dirs[tok]]).sum(1) + 0.05 * torch.randn(tok.numel(), D, generator=gen)
    return {"acts": acts, "token_ids": tok, "positions": pos, "context_ids": ctx_ids, "contexts": contexts}


def write_heldout(folder: Path, hook: str, rows: dict[str, torch.Tensor]) -> None:
    from superscope.activations.shards import ShardWriter

    n_ctx = rows["contexts"].shape[0]
    writer = ShardWriter(folder, {"hook": hook, "d": D, "dtype": "float32", "context_len": CTX_LEN,
                                  "contexts_per_shard": n_ctx // 2, "model": "toy", "bos_token_id": 1})
    half = n_ctx // 2
    for i in range(2):
        sel = (rows["context_ids"] >= i * half) & (rows["context_ids"] < (i + 1) * half)
        writer.write(i, i * half, {**{k: v[sel] for k, v in rows.items() if k != "contexts"},
                                   "contexts": rows["contexts"][i * half:(i + 1) * half]})
    writer.finish()


def _train_saes(run, hook: str, layer: int) -> None:
    from superscope.saes import SAEConfig, TrainConfig, evaluate, load_sae, train
    from superscope.saes.atomic_io import write_json

    train_rows = toy_rows(120, layer, seed=10 + layer)["acts"]
    held = toy_rows(N_CTX, layer, seed=20 + layer)["acts"]
    for arch in ARCHS:
        folder = run.sae(hook, arch)
        cfg = SAEConfig(architecture=arch, d_in=D, d_sae=F, k=K, hook_name=hook, model_name="toy")
        batches = [train_rows[i:i + 128] for i in range(0, train_rows.shape[0] - 127, 128)]
        train(cfg, batches, TrainConfig(total_tokens=128 * len(batches), batch_size=128, progress=False, lr=3e-3),
              out_dir=folder)
        sae = load_sae(folder)
        metrics = {"hook": hook, "architecture": arch, "eval": evaluate(sae, held.split(256)).to_dict(),
                   "train_seconds": 0.1}
        if sae.batch_dependent:
            sae.cfg.inference_mode = "threshold"
            metrics["eval_threshold_mode"] = evaluate(sae, held.split(256)).to_dict()
        write_json(folder / "metrics.json", metrics)


def _probes(run) -> None:
    """The two probe results, in the layout `superscope probe entropy | function-tokens --run` writes."""
    from superscope.activations import load_activations
    from superscope.probes.function_tokens import coverage_table, function_token_graph
    from superscope.probes.result_files import json_safe
    from superscope.probes.superposition_entropy import effective_features
    from superscope.saes import load_sae
    from superscope.saes.atomic_io import write_json

    results, graphs = [], {}
    tok = FakeTokenizer()
    for hook in HOOKS:
        held = load_activations(run.heldout(hook))
        for arch in ARCHS:
            ef = effective_features(load_sae(run.sae(hook, arch)).eval(), held.batches(128, shuffle=False),
                                    n_bootstrap=50, label=f"{hook}/{arch}")
            results.append({"hook": hook, "architecture": arch, **ef.to_dict()})
        graphs[hook] = function_token_graph(load_sae(run.sae(hook, "topk")).eval(), held.pairs(256),
                                            label=f"{hook}/topk", decode=lambda t: tok.decode([int(t)]))
    write_json(run.probe("superposition_entropy"), json_safe({"probe": "entropy", "results": results}))
    write_json(run.probe("function_tokens"), json_safe({
        "probe": "function-tokens", "architecture": "topk",
        "graphs": {h: g.to_dict(max_tokens=500) for h, g in graphs.items()},
        "coverage_table": coverage_table(graphs).to_dict()}))


def _bfs(run) -> None:
    from superscope.analyses.bfs.train import BFSTrainConfig, model_config
    from superscope.probes.bfs.checkpoint import save_bfs_checkpoint
    from superscope.probes.bfs.generator import GraphConfig, generate_problems
    from superscope.probes.bfs.model import GPT
    from superscope.probes.bfs.probe import ProbeConfig, bfs_probe
    from superscope.probes.bfs.tokens import Vocab
    from superscope.saes.atomic_io import write_json

    torch.manual_seed(0)
    graph = GraphConfig()
    model = GPT(model_config(BFSTrainConfig(d_model=32, n_heads=2, d_mlp=64), graph)).eval()
    cfg = ProbeConfig(n_problems=6, n_bootstrap=20, batch_size=6, n_bins=10)
    res = bfs_probe(model, Vocab(graph.n_node_tokens), generate_problems(graph, 6, 1), cfg)
    write_json(run.probe("bfs"), res.to_dict())
    save_bfs_checkpoint(run.root / "bfs" / "coconut", model, graph, "coconut",  # where `bfs train --run` puts it
                    {"metrics": {"test": {"accuracy": 0.5, "n": 6, "accuracy_by_hops": {}}},
                     "log": [{"epoch": 0, "loss": 2.0, "valid_acc": 0.3}, {"epoch": 1, "loss": 1.5, "valid_acc": 0.4}]})


def _evals(run) -> None:
    """A small evals/ folder at the main hook, made by the suite's real metric code on the toy data: core and
    autointerp through ``run_suite`` (the fake model's unembedding), sparse probing on two planted binary
    token labels and first-letter-style absorption on four token classes (the toy has no text), written
    with the suite's own writer."""
    import warnings

    from superscope.activations import load_activations
    from superscope.analyses.evals.absorption import AbsorptionConfig, absorption_from_activations
    from superscope.analyses.evals.sparse_probing import SparseProbingConfig, SparseProbingResult, encode, probe_dataset
    from superscope.analyses.evals.suite import SuiteConfig, run_suite, write_result
    from superscope.saes import load_sae

    hook = HOOKS[-1]
    run_suite(run.root, SuiteConfig(metrics=("core", "autointerp"), quick=True), load_model=fake_model,
              log=lambda _: None)
    held = load_activations(run.heldout(hook))
    x, tok = torch.cat(list(held.batches(4096, shuffle=False))), held.token_ids()
    train = torch.arange(x.shape[0]) % 3 != 0
    probing = SparseProbingConfig(ks=(1, 2, 5), probe_all_latents=False)
    absorption = AbsorptionConfig(min_feats_for_eval=5, min_GT_probe_f1=0.3, max_k_value=2)
    labels = {"toy_even_token": tok % 2, "toy_low_token": (tok < VOCAB // 2).long()}
    for arch in ARCHS:
        sae, folder = load_sae(run.sae(hook, arch)).eval(), run.root / "evals" / hook / arch
        head = {"hook": hook, "architecture": arch, "sae": str(run.sae(hook, arch)), "quick": True}
        z = encode(sae, x)
        details = tuple(probe_dataset(name, x[train], y[train], z[train], x[~train], y[~train], z[~train], probing)
                        for name, y in labels.items())
        write_result(folder / "sparse_probing.json", {"metric": "sparse_probing", **head},
                     SparseProbingResult(hook, details, probing.ks, "token", {"toy": True}), probing)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = absorption_from_activations(sae, x, (tok % 4).numpy(), class_names="abcd", config=absorption)
        write_result(folder / "absorption.json", {"metric": "absorption", **head}, result, absorption)


def build_toy_run(root: Path, with_features: bool = True) -> Path:
    """Write the run at ``root/tiny`` (see the module docstring); returns the run folder."""
    from superscope.analyses.features import FeatureDataConfig, write_feature_data
    from superscope.analyses.runs.folder import RunFolder

    run = RunFolder(root / "tiny")
    run.root.mkdir(parents=True)
    run.write({"name": "tiny", "created": "2026-01-01T00:00:00", "model": "toy", "corpus": "toy",
               "main_hook": HOOKS[-1], "hooks": list(HOOKS), "archs": list(ARCHS), "seed": 0,
               "config": {"batch_size": 128, "k": K}, "versions": {"superscope": "test"},
               "steps": {"harvest": {"done": True, "seconds": 1.0}}})
    for layer, hook in enumerate(HOOKS):
        write_heldout(run.heldout(hook), hook, toy_rows(N_CTX, layer, seed=20 + layer))
        _train_saes(run, hook, layer)
    _probes(run)
    _bfs(run)
    if with_features:
        info = write_feature_data(run, fake_model(), cfg=FeatureDataConfig(batch_size=200, progress=False, top_k=5,
                                                                            sample_size=10, n_logits=5, n_neighbours=5))
        run.mark_step("features", info["elapsed_s"], features=info["features"])
        _evals(run)
    return run.root
