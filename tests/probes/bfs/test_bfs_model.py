"""The batched, cached Coconut forward equals the step-by-step spec; losses and configs behave."""

import dataclasses

import numpy as np
import pytest
import torch

from superscope.probes.bfs.batches import make_tail, sequence_loss
from superscope.probes.bfs.coconut import (
    coconut_forward,
    coconut_reference,
    collate_prompts,
)
from superscope.probes.bfs.generator import GraphConfig, generate_problems
from superscope.probes.bfs.model import GPT, ModelConfig
from superscope.probes.bfs.tokens import Vocab, encode_prompt

GRAPH = GraphConfig()
VOCAB = Vocab(GRAPH.n_node_tokens)


def _model(positions: str, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    m = GPT(ModelConfig(vocab_size=VOCAB.size, d_model=32, n_heads=4, d_mlp=64, max_len=160, positions=positions))
    with torch.no_grad():  # bigger weights than the init so that every path matters numerically
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return m.eval()


@pytest.mark.parametrize("positions", ["learned", "rotary"])
@pytest.mark.parametrize("method", ["coconut", "cot"])
def test_batched_forward_equals_step_by_step_reference(positions, method):
    m = _model(positions)
    problems = generate_problems(GRAPH, 5, seed=11)  # different prompt lengths -> real left padding
    rng = np.random.default_rng(0)
    ks = [0, 1, 2, problems[3].hops, problems[4].hops] if method == "coconut" else [0] * 5
    tails = [make_tail(p, k, method, "shortest_path", VOCAB, rng)[0] for p, k in zip(problems, ks)]
    prompts = [list(encode_prompt(p, VOCAB).ids) for p in problems]
    assert len({len(p) for p in prompts}) > 1
    tail = torch.full((5, max(map(len, tails))), VOCAB.PAD)
    for b, t in enumerate(tails):
        tail[b, : len(t)] = torch.tensor(t)
    out = coconut_forward(m, collate_prompts(prompts, VOCAB), torch.tensor(ks), tail, VOCAB, need_weights=True)
    for b in range(5):
        ref = coconut_reference(m, prompts[b], ks[b], tails[b])
        torch.testing.assert_close(out.hidden[b, : ref.shape[0]], ref, atol=2e-5, rtol=1e-4)
    if method == "coconut":
        att = out.thought_attn[1]
        assert att.shape[:3] == (5, 4, max(ks))
        mass = att[1, :, 0].sum(-1)  # over the prompt; the rest falls on the thought column itself
        assert ((mass > 0) & (mass <= 1 + 1e-6)).all()


def test_thought_is_fed_back_not_a_token():
    """Changing the final norm changes what the thought slot receives, hence later outputs."""
    m = _model("learned")
    p = generate_problems(GRAPH, 1, seed=2)[0]
    prompt = list(encode_prompt(p, VOCAB).ids)
    a = coconut_reference(m, prompt, 2, [VOCAB.A])
    shift = torch.randn(32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.ln_f.bias.add_(shift)
    b = coconut_reference(m, prompt, 2, [VOCAB.A])
    # column 0 sees no thought: it moves by the bias shift only; later columns see the shifted thoughts
    torch.testing.assert_close(b[0] - a[0], shift)
    assert not torch.allclose(b[2] - a[2], shift, atol=1e-3)


def test_loss_is_finite_and_trains():
    m = _model("rotary").train()
    problems = generate_problems(GRAPH, 16, seed=5)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(15):  # fit one fixed batch: the loss must fall
        loss = sequence_loss(m, problems, [min(1, p.hops) for p in problems], "coconut", "shortest_path", VOCAB, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < losses[0] - 0.5
    bfs = sequence_loss(m, problems, [1] * 16, "coconut", "bfs", VOCAB, rng)
    assert torch.isfinite(bfs)


def test_model_config_errors():
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(d_model=30, n_heads=4)
    m = GPT(ModelConfig(vocab_size=VOCAB.size, d_model=16, n_heads=2, d_mlp=32, max_len=8))
    pb = collate_prompts([list(range(12))], VOCAB)
    with pytest.raises(ValueError, match="max_len"):
        m(m.embed(pb.ids), pb.pos, pb.ok)
    with pytest.raises(ValueError, match="n_thoughts"):
        make_tail(generate_problems(GRAPH, 1, 0)[0], 9, "coconut", "shortest_path", VOCAB, None)


def test_rotary_config_has_no_position_table():
    cfg = dataclasses.replace(ModelConfig(vocab_size=VOCAB.size, d_model=32, n_heads=4), positions="rotary")
    assert GPT(cfg).W_pos is None
