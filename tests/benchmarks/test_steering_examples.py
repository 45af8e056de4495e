"""The selection logic of benchmarks/steering_examples.py on tiny synthetic feature data (no model)."""

from __future__ import annotations

from superscope.benchmarks.steering_examples import Trial, candidates, family_count, pick, same_family

# token ids → strings of a toy vocabulary
STRINGS = {0: " will", 1: "will", 2: " Will", 3: " the", 4: ".", 5: " information", 6: " inform", 7: " zebra",
           8: " of", 9: " notebook", 10: " note", 11: " informal"}


def test_word_family():
    assert same_family(" will", "Will") and same_family(" information", "inform")
    assert not same_family(" the", " they")          # prefix shorter than 4 letters: not a family
    assert not same_family("", " the")
    assert family_count([" I", " will", " be", "Will", " willing", " wil"], [" will"]) == 3


def test_candidates_filter_and_rank():
    center = [
        [0, 1, 2, 3],        # f0: ' will' family 3/4, decoder does not promote it
        [5, 6, 7, 3],        # f1: ' information' family 2/4, decoder promotes ' inform' → ranked first
        [3, 3, 3, 3],        # f2: ' the' — under 4 letters: dropped
        [7, 7, 7, 7],        # f3: ' zebra', dense: dropped
        [7, 4, 8, 3],        # f4: ' zebra' 1/4 < min share 0.3: dropped
        [0, 0, 0, 0],        # f5: ' will' again, denser than f0
        [0, 0, 7, 3],        # f6: ' will' a third time (share 2/4): over the per-word cap
        [-1, -1, -1, -1],    # f7: no examples
    ]
    promoted = [[7, 8], [6, 4], [3, 4], [7, 4], [7, 4], [4, 8], [4, 8], [4, 8]]
    density = [0.01, 0.01, 0.01, 0.5, 0.01, 0.02, 0.005, 0.0]
    max_act = [1.0] * 8
    cands = candidates(center, promoted, density, max_act, STRINGS, d_min=1e-3, d_max=0.05, min_share=0.3,
                       per_word=2)
    assert [c.latent for c in cands] == [1, 5, 0]
    info, will5, will0 = cands
    assert info.agrees and info.top_token == "inform" and info.share == 0.5   # the shorter word of a tie: the stem
    assert info.family == (" information", " inform")
    assert not will0.agrees and will0.share == 0.75 and will0.top_token_id == 0
    assert set(will0.family) == {" will", "will", " Will"}
    # the cap is per word: with room for three ' will' latents f6 comes back
    assert [c.latent for c in candidates(center, promoted, density, max_act, STRINGS, d_min=1e-3, min_share=0.3,
                                         per_word=3)] == [1, 5, 0, 6]


def trial(latent, alpha, gain, distinct=0.9):
    return Trial(latent, alpha / 10, alpha, "p", "clean", f"steered {latent} {alpha}", gain, distinct)


def test_pick_smallest_alpha_then_best_gain_distinct_words():
    top = {1: "will", 2: "willing", 3: "information", 4: "zebra", 5: "note"}
    trials = [
        trial(1, 40, 1), trial(1, 60, 3), trial(1, 80, 5, distinct=0.2),   # f1: α 40 (smallest that gains)
        trial(2, 30, 4),                                                   # f2: same family as f1, larger gain
        trial(3, 50, 0), trial(3, 90, 2),                                  # f3: α 90
        trial(4, 20, 9, distinct=0.3),                                     # f4: degenerate only → never picked
        trial(5, 10, -1), trial(5, 70, 1),                                 # f5: α 70, gain 1
    ]
    chosen = pick(trials, top, n=3)
    # f2 (gain 4) beats f1 (gain 1 at its smallest α) for the ' will' family; then f3 (2), then f5 (1)
    assert [(t.latent, t.alpha) for t in chosen] == [(2, 30), (3, 90), (5, 70)]
    assert pick(trials, top, n=1)[0].latent == 2
    assert pick([trial(4, 20, 9, distinct=0.3)], top) == []
