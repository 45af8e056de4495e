"""Feature data: the streaming pieces against brute force, and the written folder against a dense
recomputation of the codes over the whole held-out set."""

from __future__ import annotations

import json

import pytest
import torch

from superscope.analyses.features import (
    FeatureDataConfig,
    feature_data_for_hook,
    write_feature_data,
)
from superscope.analyses.features.static import decoder_neighbours, logit_effects
from superscope.analyses.features.storage import FeatureData
from superscope.analyses.features.stream import (
    context_aligned_batches,
    quantile_bands,
    window_index,
)
from superscope.analyses.features.topk import TopSlots, segment_topk
from superscope.analyses.runs.folder import RunFolder
from tests.fixtures.tiny_run import ARCHS, HOOKS, K, copy_run, fake_model, tiny_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def test_segment_topk_matches_sorting_each_segment():
    gen = torch.Generator().manual_seed(1)
    seg = torch.randint(0, 9, (300,), generator=gen)
    key = torch.rand(300, generator=gen) * 5
    idx, s, r = segment_topk(seg, key, 9, 4)
    for f in range(9):
        expected = torch.sort(key[seg == f], descending=True).values[:4]
        got = key[idx[s == f]][torch.argsort(r[s == f])]
        assert torch.equal(got, expected)


def test_top_slots_streamed_equal_global_top_k():
    gen = torch.Generator().manual_seed(2)
    S, Kk = 11, 5
    slots = TopSlots(S, Kk, {"row": ((), torch.int64, -1), "win": ((3,), torch.float32, 0.0)})
    segs, keys, rows, start = [], [], [], 0
    for _ in range(8):
        n = int(torch.randint(0, 40, (), generator=gen))
        seg, key = torch.randint(0, S, (n,), generator=gen), torch.rand(n, generator=gen)
        row = torch.arange(start, start + n)
        start += n
        segs.append(seg), keys.append(key), rows.append(row)
        cand = (key > slots.threshold(seg)).nonzero().squeeze(1)
        i, s, r = segment_topk(seg[cand], key[cand], S, Kk)
        i = cand[i]
        slots.offer(s, r, key[i], {"row": row[i], "win": row[i].float().unsqueeze(1).repeat(1, 3)})
    slots.sort()
    seg, key, row = torch.cat(segs), torch.cat(keys), torch.cat(rows)
    for f in range(S):
        top = torch.sort(key[seg == f], descending=True)
        n = min(Kk, top.values.numel())
        assert torch.equal(slots.keys_SK[f, :n], top.values[:n])
        assert torch.equal(slots.data["row"][f, :n], row[seg == f][top.indices[:n]])
        assert torch.equal(slots.data["win"][f, :n, 2], slots.data["row"][f, :n].float())
        assert not slots.filled()[f, n:].any()


def test_context_aligned_batches_cover_rows_once_and_cut_at_context_ends(run_root):
    from superscope.activations import load_activations
    src = load_activations(RunFolder(run_root).heldout(HOOKS[0]))
    ctx_all, _ = src.locations()
    seen = 0
    for b in context_aligned_batches(src, 100):
        n = b["acts"].shape[0]
        assert b["start"] == seen
        assert torch.equal(b["context_ids"], ctx_all[seen:seen + n])
        if seen + n < ctx_all.numel():
            assert ctx_all[seen + n] != ctx_all[seen + n - 1]  # the next batch starts a new context
        seen += n
    assert seen == src.n_tokens


def test_window_index_stays_inside_each_context():
    ctx = torch.tensor([0, 0, 0, 1, 1])
    pos = torch.tensor([1, 2, 3, 1, 2])
    idx, ok = window_index(ctx, pos, 1)
    assert ok.tolist() == [[False, True, True], [True, True, True], [True, True, False],
                           [False, True, True], [True, True, False]]
    assert idx[1].tolist() == [0, 1, 2]


def test_quantile_bands_are_ordered_and_drawn_from_the_sample():
    slots = TopSlots(2, 10, {"row": ((), torch.int64, -1), "win": ((1,), torch.float32, 0.0),
                             "act": ((), torch.float32, 0.0)})
    acts = torch.arange(10, dtype=torch.float32) + 1
    slots.offer(torch.zeros(10, dtype=torch.long), torch.arange(10), torch.rand(10),
                {"row": torch.arange(10), "win": acts.unsqueeze(1), "act": acts})
    out = quantile_bands(slots, n_bands=5, per_band=2)
    a = out["band_acts_FBE"][0]
    assert a.tolist() == [[10, 9], [8, 7], [6, 5], [4, 3], [2, 1]]
    assert (out["band_rows_FBE"][1] == -1).all() and (out["band_acts_FBE"][1] == 0).all()  # segment 1: empty
    assert out["band_edges_FB2"][0, 0].tolist() == [10, 9]


@pytest.mark.parametrize("arch", ARCHS)
def test_written_feature_data_matches_dense_codes(run_root, arch):
    from superscope.activations import load_activations
    from superscope.saes import load_sae

    run = RunFolder(run_root)
    hook = HOOKS[1]
    fd = FeatureData(run.features(hook, arch))
    src = load_activations(run.heldout(hook))
    sae = load_sae(run.sae(hook, arch)).eval()
    sae.cfg.inference_mode = "threshold"  # per-token codes: independent of batching
    z = torch.cat([sae.encode(x) for x in src.batches(97, shuffle=False)])
    a = fd.arrays
    assert torch.equal(a["count_F"], (z > 0).sum(0))
    assert torch.allclose(a["density_F"], (z > 0).float().mean(0))
    k = fd.index["config"]["top_k"]
    top_rows = fd.row("top_rows_FK", 0)
    for f in range(0, z.shape[1], 7):
        expected = torch.sort(z[:, f], descending=True).values[:k]
        expected = expected[expected > 0]
        got = fd.row("top_acts_FK", f)[: expected.numel()]
        assert torch.allclose(got, expected, atol=1e-5)
    ctx, pos = src.locations()
    contexts = src.contexts()
    f = int(a["count_F"].argmax())
    card = fd.card(f)
    rows = fd.row("top_rows_FK", f)
    win = fd.row("top_win_FKW", f).float()
    toks = fd.row("top_tokens_FKW", f)
    W = fd.index["window"]
    for j, r in enumerate(rows.tolist()):
        if r < 0:
            continue
        assert abs(float(z[r, f]) - float(fd.row("top_acts_FK", f)[j])) < 1e-4
        for o in range(-W, W + 1):
            p = int(pos[r]) + o
            if 0 <= p < contexts.shape[1]:
                assert int(toks[j, o + W]) == int(contexts[ctx[r], p])
            rr = r + o
            if 0 <= rr < z.shape[0] and ctx[rr] == ctx[r] and pos[rr] == pos[r] + o:
                assert abs(float(win[j, o + W]) - float(z[rr, f])) < 2e-3 * max(1.0, float(z[rr, f]))
    assert card.top[0].act == pytest.approx(float(z[:, f].max()), rel=1e-5)
    assert sum(fd.row("hist_FH", f).tolist()) == int(a["count_F"][f])
    assert top_rows.dtype == torch.int64


def test_logit_effects_and_neighbours_match_brute_force(run_root):
    from superscope.saes import load_sae
    run = RunFolder(run_root)
    sae = load_sae(run.sae(HOOKS[0], "topk"))
    model = fake_model()
    fd = FeatureData(run.features(HOOKS[0], "topk"))
    eff = (sae.W_dec.detach() / sae.cfg.input_scale) @ model.W_U
    n = fd.arrays["logit_top_ids_FL"].shape[1]
    assert torch.equal(fd.arrays["logit_top_ids_FL"], eff.topk(n, dim=1).indices)
    assert torch.allclose(fd.arrays["logit_bot_vals_FL"], eff.topk(n, dim=1, largest=False).values, atol=1e-5)
    cos = torch.nn.functional.normalize(sae.W_dec.detach(), dim=1) @ torch.nn.functional.normalize(sae.W_dec.detach(), dim=1).T
    cos.fill_diagonal_(-2)
    assert torch.equal(fd.arrays["neighbour_ids_FN"][:, 0], cos.argmax(1))
    # chunking does not change the results
    small = logit_effects(sae.W_dec, sae.cfg.input_scale, model.W_U, None, 3, chunk=5)
    assert torch.equal(small["logit_top_ids_FL"], eff.topk(3, dim=1).indices)
    assert torch.equal(decoder_neighbours(sae.W_dec, 4, chunk=7)["neighbour_ids_FN"], cos.topk(4, dim=1).indices)


def test_card_strings_html_and_figure(run_root):
    fd = FeatureData(RunFolder(run_root).features(HOOKS[1], "mutual_choice"))
    f = int(fd.arrays["count_F"].argmax())
    card = fd.card(f)
    assert card.top and all(isinstance(t, str) for t in card.top[0].tokens)
    assert card.top[0].tokens[card.top[0].center] == fd.token(int(fd.arrays["top_center_FK"][f, 0]))
    assert len(card.bands) == fd.index["config"]["n_bands"]
    html = card.html()
    assert "⏎" in html or "<span class='tok'" in html
    assert len(card.figure().data) == 2
    json.dumps(card.to_dict())
    assert set(fd.summary) >= {"feature", "density", "top_logit", "top_token"}


def test_bad_folders_and_configs_give_clear_errors(run_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="index.json missing"):
        FeatureData(tmp_path)
    broken = copy_run(run_root, tmp_path, "broken")
    folder = RunFolder(broken).features(HOOKS[0], "topk")
    (folder / "features.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="missing or corrupt"):
        FeatureData(folder)
    index = json.loads((folder / "index.json").read_text())
    (folder / "index.json").write_text(json.dumps({**index, "format": "other"}))
    with pytest.raises(ValueError, match="not a superscope feature-data index"):
        FeatureData(folder)
    fd = FeatureData(RunFolder(run_root).features(HOOKS[0], "topk"))
    with pytest.raises(ValueError, match="out of range"):
        fd.card(fd.n_features)
    with pytest.raises(ValueError, match="top_k"):
        FeatureDataConfig(top_k=0)
    with pytest.raises(ValueError, match="sample_size"):
        FeatureDataConfig(sample_size=3, n_bands=5)
    with pytest.raises(FileNotFoundError, match="no SAEs"):
        write_feature_data(RunFolder(tmp_path / "empty"), None)


def test_d_in_mismatch_and_no_model(run_root):
    from superscope.activations import load_activations
    from superscope.saes import SAEConfig, create_sae
    src = load_activations(RunFolder(run_root).heldout(HOOKS[0]))
    wrong = create_sae(SAEConfig(architecture="topk", d_in=8, d_sae=16, k=2))
    with pytest.raises(ValueError, match="do not belong together"):
        feature_data_for_hook(src, {"topk": wrong}, None)
    ok = create_sae(SAEConfig(architecture="topk", d_in=src.d, d_sae=16, k=K))
    out = feature_data_for_hook(src, {"topk": ok}, None, FeatureDataConfig(progress=False, max_tokens=50))
    arrays, index, strings = out["topk"]
    assert "logit_top_ids_FL" not in arrays and index["logit_effect"] is None
    assert 50 <= index["n_tokens"] < 50 + 2 * 15
    assert all(s.startswith("<") for s in strings.values())
