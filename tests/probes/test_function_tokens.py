"""Function tokens: frequency set, bipartite graph on hand-built examples, coverage, fits, loss split, bad input."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from superscope.probes._token_graph import TokenFeatureGraphBuilder, true_positions
from superscope.probes.estimators import fit_power_law
from superscope.probes.function_tokens import (
    PAPER_TRANSITION_LOSS,
    coverage_table,
    frequency_function_tokens,
    function_token_graph,
    function_token_graph_from_codes,
    linguistic_function_tokens,
    loss_by_transition,
    next_token_losses,
)

# Hand-built stream: 6 features; token 7 × 3 occurrences, token 3 × 2, token 9 × 1.
TOKENS = torch.tensor([7, 3, 7, 9, 7, 3])
CODES = torch.tensor([
    [1.0, 0, 0, 0, 0, 0],   # 7 → f0
    [0, 2.0, 0, 0, 0, 0],   # 3 → f1
    [0, 0, 0.5, 0, 0, 0],   # 7 → f2
    [0, 0, 0, 0, 3.0, 0],   # 9 → f4
    [1.0, 0, 0, 0, 0, 0],   # 7 → f0 again
    [0, 0.1, 0, 0, 0, 0],   # 3 → f1 again
])  # feature 3 and 5 never fire


def test_frequency_function_tokens_on_a_toy_count_table():
    ids, counts = [10, 11, 12, 13], [50, 30, 10, 10]
    assert frequency_function_tokens(ids, counts, 0.4)[0].tolist() == [10]
    assert frequency_function_tokens(ids, counts, 0.5)[0].tolist() == [10]
    assert frequency_function_tokens(ids, counts, 0.6)[0].tolist() == [10, 11]
    chosen, share = frequency_function_tokens(ids, counts, 0.8)
    assert chosen.tolist() == [10, 11] and share == pytest.approx(0.8)
    assert frequency_function_tokens([5, 4], [2, 2], 0.5)[0].tolist() == [4]  # ties: by id
    with pytest.raises(ValueError, match="coverage"):
        frequency_function_tokens(ids, counts, 0.0)


def test_graph_of_a_hand_built_stream():
    g = function_token_graph_from_codes([(TOKENS, CODES)], 6, function_coverage=0.5)
    assert g.token_ids.tolist() == [7, 3, 9] and g.counts.tolist() == [3, 2, 1]
    assert g.degrees.tolist() == [2, 1, 1]
    assert g.n_edges == 4 and g.n_active_features == 4 and g.n_occurrences == 6
    assert g.graph.toarray().tolist() == [[1, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]]
    assert g.coverage == pytest.approx((0.5, 0.75, 1.0))
    assert g.function_ids == (7,)
    assert g.shares["frequency"]["function"] == pytest.approx(0.5)
    assert g.shares["frequency"]["content"] == pytest.approx(0.5)
    assert g.shares["frequency"]["both"] == pytest.approx(0.0)
    by_degree = function_token_graph_from_codes([(TOKENS, CODES)], 6, rank_by="degree")
    assert by_degree.coverage[0] == pytest.approx(0.5)


def test_coverage_is_monotone_and_streaming_equals_one_shot():
    gen = torch.Generator().manual_seed(0)
    zipf = 1.0 / torch.arange(1, 301, dtype=torch.float64)
    tok = torch.multinomial(zipf, 4000, replacement=True, generator=gen)
    z = torch.zeros(4000, 64).scatter_(1, torch.randint(0, 64, (4000, 3), generator=gen), 1.0)
    one = function_token_graph_from_codes([(tok, z)], 64)
    parts = function_token_graph_from_codes(zip(tok.split(333), z.split(333)), 64)
    assert (one.graph != parts.graph).nnz == 0
    assert one.token_ids.tolist() == parts.token_ids.tolist() and one.coverage == parts.coverage
    assert all(b >= a for a, b in zip(one.coverage, one.coverage[1:])) and one.coverage[-1] <= 1.0
    rows, cols = z.nonzero(as_tuple=True)
    sparse = function_token_graph_from_codes([(tok, (rows, cols, z[rows, cols], 4000))], 64)
    assert (sparse.graph != one.graph).nnz == 0


def test_negative_codes_are_not_edges():
    z = torch.tensor([[-1.0, 2.0], [0.0, -3.0]])
    for mode in ("first", "every"):
        g = function_token_graph_from_codes([(torch.tensor([1, 2]), z)], 2, sign_check=mode)
        assert g.n_edges == 1


def test_power_law_slope_fit_on_synthetic_data():
    rank = np.arange(1, 200)
    fit = fit_power_law(rank, 50.0 * rank ** -0.7)
    assert fit.slope == pytest.approx(-0.7, abs=1e-9) and fit.r_value == pytest.approx(-1.0)
    noisy = 50.0 * rank ** -0.7 * np.exp(np.random.default_rng(0).normal(0, 0.1, rank.size))
    fit = fit_power_law(rank, noisy)
    assert fit.ci_low < -0.7 < fit.ci_high
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law([1, 2], [1, 2])


def test_linguistic_list_through_a_tokenizer():
    vocab = {" the": 5, "the": 6, ".": 7, " of": 8, "and": 9}

    class Tok:
        def encode(self, text, add_special_tokens=False):
            return [vocab[text]] if text in vocab else [1, 2]

    ids = linguistic_function_tokens(Tok(), categories=["articles", "punctuation"])
    assert ids["articles"] == (5, 6) and ids["punctuation"] == (7,)
    assert linguistic_function_tokens(lambda t: [vocab.get(t, 0), 0][: 1 if t in vocab else 2])["prepositions"] == (8,)
    with pytest.raises(ValueError, match="unknown"):
        linguistic_function_tokens(Tok(), categories=["adverbs"])
    g = function_token_graph_from_codes([(TOKENS, CODES)], 6, linguistic_ids={"x": [3]})
    assert g.shares["linguistic"]["function"] == pytest.approx(0.25)


def test_loss_split_by_transition_on_a_hand_example():
    ids = torch.tensor([[1, 5, 1, 1, 6]])  # function id 1: f→c, c→f, f→f, f→c
    losses = torch.tensor([[4.0, 2.0, 1.0, 6.0]])
    res = loss_by_transition(ids, losses, [1])
    assert res.mean_loss["function→content"] == pytest.approx(5.0)
    assert res.mean_loss["content→function"] == pytest.approx(2.0)
    assert res.mean_loss["function→function"] == pytest.approx(1.0)
    assert res.mean_loss["content→content"] is None
    assert res.counts["function→content"] == 2 and res.paper == PAPER_TRANSITION_LOSS
    masked = loss_by_transition(ids, losses, [1], mask=torch.tensor([[1, 1, 1, 1, 0]]))
    assert masked.counts["function→content"] == 1
    assert isinstance(res.figure(), go.Figure)
    with pytest.raises(ValueError, match="T-1"):
        loss_by_transition(ids, losses[:, :3], [1])


def test_next_token_losses_from_a_model_callable():
    ids = torch.tensor([[0, 1, 2]])
    logits = torch.full((1, 3, 4), -1e4)
    logits[0, 0, 1] = 0.0  # predicts 1 after 0 with certainty: right
    logits[0, 1, 3] = 0.0  # predicts 3 after 1 with certainty: wrong (the truth is 2)
    losses = next_token_losses(lambda x: logits, ids)
    assert losses.shape == (1, 2)
    assert float(losses[0, 0]) == pytest.approx(0.0, abs=1e-6) and float(losses[0, 1]) > 100


def test_coverage_table_has_the_papers_shape_and_numbers():
    g = function_token_graph_from_codes([(torch.arange(40) % 12, torch.eye(40)[:, :40])], 40,
                                        decode=lambda t: "." if t == 0 else f"t{t}")
    table = coverage_table({"L9": g, "L20": g})
    assert [r["layer"] for r in table.rows] == ["L9", "L20"]
    assert table.columns()[1:6] == ["top-1", "top-2", "top-3", "top-4", "top-10"]
    paper = {r["layer"]: r for r in table.paper}
    assert paper["paper L9"]["top-10"] == 48.5 and paper["paper L20"]["'.' alone"] == 51.0
    assert "48.5" in table.markdown() and table.rows[0]["'.' alone"] == pytest.approx(100 * 4 / 40)
    json.dumps(table.to_dict())
    assert isinstance(table.figure(), go.Figure)


def test_with_an_sae_result_is_json_safe_with_figure():
    sae = SimpleNamespace(cfg=SimpleNamespace(d_in=2, d_sae=4), encode=lambda x: torch.relu(torch.cat([x, -x], 1)))
    acts = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    g = function_token_graph(sae, [(torch.arange(50) % 5, acts)], max_tokens=30)
    assert g.n_occurrences == 30 and g.d_sae == 4
    data = json.loads(json.dumps(g.to_dict()))
    assert data["n_distinct_tokens"] == 5
    assert isinstance(g.figure(), go.Figure)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="width 5 but d_sae=6"):
        function_token_graph_from_codes([(TOKENS, torch.zeros(6, 5))], 6)
    with pytest.raises(ValueError, match="one id per code row"):
        function_token_graph_from_codes([(TOKENS[:5], CODES)], 6)
    with pytest.raises(ValueError, match="empty stream"):
        function_token_graph_from_codes([], 6)
    with pytest.raises(ValueError, match="non-negative"):
        function_token_graph_from_codes([(torch.tensor([-1]), torch.ones(1, 6))], 6)


def test_true_positions_equals_flatnonzero():
    rng = np.random.default_rng(0)
    for shape in [(0,), (1,), (7,), (8,), (9,), (3, 37), (50, 64), (13, 4608)]:
        for density in (0.0, 0.01, 0.3, 1.0):
            mask = rng.random(shape) < density
            assert np.array_equal(true_positions(mask), np.flatnonzero(mask)), (shape, density)
    with pytest.raises(TypeError, match="bool"):
        true_positions(np.zeros(8, dtype=np.uint8))


def _reference_graph(batches, F):
    """Plain reference: rows in first-seen order, edge set {(token, f) : z > 0 somewhere}, counts."""
    order, counts, edges = [], {}, set()
    for tok, z in batches:
        for t, row in zip(tok.tolist(), z.tolist()):
            if t not in counts:
                order.append(t)
                counts[t] = 0
            counts[t] += 1
            edges.update((t, f) for f, v in enumerate(row) if v > 0)
    return order, counts, edges


@pytest.mark.parametrize("F", [37, 64])
def test_graph_builder_equals_a_simple_reference_on_random_streams(F):
    gen = torch.Generator().manual_seed(F)
    batches = []
    for b in range(5):
        B = int(torch.randint(1, 40, (1,), generator=gen))
        tok = torch.randint(0, 30 if b < 3 else 3000, (B,), generator=gen)  # repeats, then new large ids
        z = torch.randn(B, F, generator=gen) * (torch.rand(B, F, generator=gen) < 0.1)  # ~5 % positive, negatives
        z[0, :3] = torch.tensor([-0.0, float("nan"), float("-inf")])  # never edges (z > 0 is False)
        batches.append((tok, z))
    order, counts, edges = _reference_graph(batches, F)
    for sparse in (False, True):
        builder = TokenFeatureGraphBuilder(F, initial_rows=2, chunk_rows=4)  # growth and several blocks per batch
        for tok, z in batches:
            if sparse:
                r, c = z.nonzero(as_tuple=True)
                builder.add(tok, (r, c, z[r, c], z.shape[0]))
            else:
                builder.add(tok, z)
        g = builder.build()
        assert g.token_ids.tolist() == order
        assert g.counts.tolist() == [counts[t] for t in order]
        coo = g.edges.tocoo()
        assert set(zip(g.token_ids[coo.row].tolist(), coo.col.tolist())) == edges and g.edges.nnz == len(edges)
        assert g.edges.has_sorted_indices and set(g.edges.data.tolist()) <= {1}
