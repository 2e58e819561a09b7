"""Tests for the interpolated Kneser-Ney baseline (musicgen.ngram)."""

import numpy as np
import pytest

from musicgen.ngram import KneserNey, best_order


def _arr(*xs):
    return np.array(xs, dtype=np.int64)


def _dist(model, context, order):
    """P(w | context) for every w in the vocab, read off the last position of context + [w]."""
    return np.array(
        [2.0 ** model.log2_probs(_arr(*context, w), order)[-1] for w in range(model.vocab_size)]
    )


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    # Tokens 6 and 7 never occur, so level 1 must fall back on the uniform term.
    pieces = [rng.integers(0, 6, size=n) for n in (30, 12, 25, 7)]
    pieces.append(_arr(0, 1, 2, 0, 1, 2, 0, 1, 2))
    return KneserNey(max_order=4, vocab_size=8).fit(pieces)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "context",
    [
        (),  # pure start padding
        (0,),  # start padding plus one seen token
        (0, 1, 2),  # seen
        (1, 2, 0, 1, 2, 0),  # seen, longer than any order needs
        (7, 6, 7),  # tokens never seen: unseen at every level above 1
        (5, 7, 0),  # unseen at the top, seen at lower levels
    ],
)
def test_distribution_sums_to_one(toy, order, context):
    p = _dist(toy, context, order)
    assert (p > 0).all()
    assert p.sum() == pytest.approx(1.0, abs=1e-9)


def test_unseen_tokens_have_finite_log_prob(toy):
    for order in range(1, 5):
        lp = toy.log2_probs(_arr(6, 7, 6, 7, 0), order)
        assert np.isfinite(lp).all() and (lp < 0).all()


def test_unseen_context_backs_off_fully(toy):
    # Tokens 6 and 7 never occur, so no context containing them was seen at levels 2-3:
    # all of these fall through to the level-1 continuation model unchanged.
    level1 = _dist(toy, (7,), 2)
    for context in [(7, 6), (6, 7), (0, 7)]:
        np.testing.assert_allclose(_dist(toy, context, 3), level1, rtol=1e-12)


def test_hand_computed_order_2():
    # Pieces [0 1 0 1 2] and [1 2], vocab 4 (token 3 never seen), start symbol S.
    model = KneserNey(max_order=2, vocab_size=4).fit([_arr(0, 1, 0, 1, 2), _arr(1, 2)])

    # Level 1 (continuation counts = distinct left neighbours, S included):
    #   N1+(. 0) = |{S, 1}| = 2,  N1+(. 1) = |{0, S}| = 2,  N1+(. 2) = |{1}| = 1; total 5.
    #   n1 = 1, n2 = 2  ->  D1 = 1 / (1 + 2*2) = 1/5;  3 distinct types get the uniform mass.
    d1 = 1 / 5
    uniform = d1 * 3 / 5 * (1 / 4)
    p1 = {0: (2 - d1) / 5 + uniform, 1: (2 - d1) / 5 + uniform, 2: (1 - d1) / 5 + uniform}
    p1[3] = uniform  # never seen: only the uniform share
    assert sum(p1.values()) == pytest.approx(1.0)

    # Level 2 (raw bigram counts): (S 0)=1, (0 1)=2, (1 0)=1, (1 2)=2, (S 1)=1.
    #   n1 = 3, n2 = 2  ->  D2 = 3 / (3 + 2*2) = 3/7.
    d2 = 3 / 7
    # Context S: c(S .) = 2 over 2 distinct followers.
    p_1_given_s = (1 - d2) / 2 + d2 * 2 / 2 * p1[1]
    # Context 1: c(1 .) = 3 over 2 distinct followers.
    p_2_given_1 = (2 - d2) / 3 + d2 * 2 / 3 * p1[2]
    # Context 2 never has a follower in training: back off fully to level 1.
    p_3_given_2 = p1[3]

    got = model.log2_probs(_arr(1, 2, 3), order=2)
    want = np.log2([p_1_given_s, p_2_given_1, p_3_given_2])
    np.testing.assert_allclose(got, want, rtol=1e-12)

    # The order-2 model does not depend on how many higher levels were also fitted.
    bigger = KneserNey(max_order=4, vocab_size=4).fit([_arr(0, 1, 0, 1, 2), _arr(1, 2)])
    np.testing.assert_allclose(bigger.log2_probs(_arr(1, 2, 3), order=2), want, rtol=1e-12)


def test_contexts_do_not_cross_pieces():
    # Concatenated, the corpus would contain the bigram (1 2) and 2 would never follow start.
    # A fixed discount keeps the counts visible (the estimate is D = 1 when all counts are 1).
    model = KneserNey(max_order=2, vocab_size=4, discount=0.5).fit([_arr(0, 1), _arr(2, 3)])
    # 1 and 3 each end a piece, so neither is ever a context: both back off identically.
    p_after_1 = model.log2_probs(_arr(1, 2), order=2)[1]
    p_after_3 = model.log2_probs(_arr(3, 2), order=2)[1]
    assert p_after_1 == p_after_3
    # Both pieces start from the start symbol, so 2 after start is as likely as 0 after start.
    assert model.log2_probs(_arr(2), 2)[0] == pytest.approx(model.log2_probs(_arr(0), 2)[0])


def test_repeating_pattern_bits_decrease_then_flatten():
    # Period 8: order 2 cannot tell what follows 0, orders 3-4 cannot tell 2 from 3
    # after (0 1 0); order 5 sees the whole cycle and is deterministic.
    pattern = [0, 1, 0, 2, 0, 1, 0, 3]
    train = [_arr(*pattern * 40) for _ in range(5)]
    held_out = [_arr(*pattern * 20)]
    model = KneserNey(max_order=8, vocab_size=10).fit(train)
    n = sum(len(s) for s in held_out)
    per_token = {k: b / n for k, b in model.evaluate(held_out).items()}

    assert per_token[1] > per_token[2] > per_token[3] > per_token[5]
    for k in range(1, 8):
        assert per_token[k + 1] <= per_token[k] + 1e-3
    for k in range(5, 9):
        assert per_token[k] < 0.02
    assert best_order(model.evaluate(held_out)) >= 5


def test_evaluate_equals_sum_of_log2_probs(toy):
    rng = np.random.default_rng(1)
    held_out = [rng.integers(0, 8, size=n) for n in (15, 1, 0, 22)]
    bits = toy.evaluate(held_out)
    assert sorted(bits) == [1, 2, 3, 4]
    for k, b in bits.items():
        want = -sum(toy.log2_probs(s, k).sum() for s in held_out)
        assert b == pytest.approx(want, rel=1e-12)
    assert toy.evaluate(held_out, orders=[2, 4]) == {2: bits[2], 4: bits[4]}


def test_best_order_picks_lowest_bits_smaller_on_ties():
    assert best_order({1: 10.0, 2: 7.5, 3: 8.0}) == 2
    assert best_order({1: 9.0, 4: 5.0, 3: 5.0}) == 3


def test_rejects_bad_input():
    model = KneserNey(max_order=3, vocab_size=4)
    with pytest.raises(ValueError):
        model.fit([_arr(0, 4)])
    with pytest.raises(ValueError):
        model.fit([np.array([0.5, 1.0])])
    model.fit([_arr(0, 1, 2)])
    with pytest.raises(ValueError):
        model.log2_probs(_arr(0, 1), order=4)
