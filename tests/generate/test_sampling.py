"""Sampling filters on hand-made logits, and the decode loop on tiny fake cores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from musicgen.generate.decoder import Decoder, Sampling, decode
from musicgen.generate.sampling import (
    apply_temperature,
    sample,
    top_k_filter,
    top_p_filter,
)

NEG_INF = float("-inf")
FREQ_TOL = 0.045  # 4 standard errors of a frequency near 0.5 over 2000 draws


def logits_of(probs: list[float]) -> torch.Tensor:
    return torch.tensor(probs, dtype=torch.float64).log()


def kept(filtered: torch.Tensor) -> set[int]:
    return set(torch.isfinite(filtered).nonzero().flatten().tolist())


def frequencies(logits: torch.Tensor, n: int = 2000, seed: int = 0, **kwargs) -> torch.Tensor:
    """Empirical distribution of n draws from one row of logits (V,)."""
    g = torch.Generator().manual_seed(seed)
    draws = sample(logits.expand(n, -1), generator=g, **kwargs)  # (n,)
    return torch.bincount(draws, minlength=logits.size(-1)).double() / n


# --- temperature -------------------------------------------------------------------------


def test_temperature_zero_is_argmax_without_touching_the_generator():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9], [3.0, 0.0, 3.0, 1.0]])
    g = torch.Generator().manual_seed(0)
    before = g.get_state()
    assert sample(logits, temperature=0, generator=g).tolist() == [1, 0]  # tie -> lowest id
    assert torch.equal(g.get_state(), before)


def test_temperature_scales_logits():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    for t in (0.5, 1.0, 2.0):
        got = apply_temperature(probs.log(), t).softmax(-1)
        expected = probs ** (1 / t) / (probs ** (1 / t)).sum()  # softmax(log p / T)
        torch.testing.assert_close(got, expected)
    # sharper at low temperature, flatter at high
    assert apply_temperature(probs.log(), 0.5).softmax(-1)[0] > 0.5
    assert apply_temperature(probs.log(), 2.0).softmax(-1)[0] < 0.5


def test_sampled_frequencies_follow_temperature():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    expected = probs**2 / (probs**2).sum()
    freq = frequencies(probs.log(), temperature=0.5)
    torch.testing.assert_close(freq, expected, atol=FREQ_TOL, rtol=0)


# --- top-k -------------------------------------------------------------------------------


def test_top_k_keeps_exactly_the_k_highest():
    logits = torch.tensor([1.0, 5.0, 3.0, -2.0, 4.0])
    assert kept(top_k_filter(logits, 1)) == {1}
    assert kept(top_k_filter(logits, 3)) == {1, 2, 4}
    out = top_k_filter(logits, 3)
    assert torch.equal(out[[1, 2, 4]], logits[[1, 2, 4]])  # survivors unchanged


def test_top_k_ties_keep_exactly_k_lowest_ids_first():
    logits = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    out = top_k_filter(logits, 2)
    assert torch.isfinite(out).sum(-1).tolist() == [2, 2]
    assert kept(out[0]) == {1, 2}
    assert kept(out[1]) == {0, 1}


def test_top_k_off_when_zero_or_at_least_vocab():
    logits = torch.randn(3, 6)
    for k in (0, 6, 100):
        assert torch.equal(top_k_filter(logits, k), logits)


# --- top-p -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.8, {0, 1}),
        (0.81, {0, 1, 2}),
        (0.5, {0}),
        (0.51, {0, 1}),
        (1.0, {0, 1, 2, 3}),
        (1e-9, {0}),
    ],
)
def test_top_p_keeps_smallest_set_reaching_p(p, expected):
    for dtype in (torch.float32, torch.float64):
        logits = logits_of([0.5, 0.3, 0.15, 0.05]).to(dtype)
        assert kept(top_p_filter(logits, p)) == expected
        # shuffled ids: the set follows the probabilities, not the positions
        perm = torch.tensor([2, 0, 3, 1])
        assert kept(top_p_filter(logits[perm], p)) == {perm.tolist().index(i) for i in expected}


def test_top_p_is_per_row_and_tiny_p_keeps_argmax():
    logits = torch.stack([logits_of([0.1, 0.2, 0.7]), logits_of([0.45, 0.45, 0.1])]).float()
    out = top_p_filter(logits, 0.6)
    assert kept(out[0]) == {2}
    assert kept(out[1]) == {0, 1}
    assert kept(top_p_filter(logits, 1e-6)[1]) == {0}  # tie at the top -> lowest id


# --- mask and combinations ---------------------------------------------------------------


def test_mask_renormalises_over_allowed_tokens():
    logits = logits_of([0.4, 0.3, 0.2, 0.1])
    mask = torch.tensor([False, True, True, True])
    freq = frequencies(logits, mask=mask)
    assert freq[0] == 0  # the masked-out favourite never appears
    expected = torch.tensor([0.0, 0.5, 1 / 3, 1 / 6], dtype=torch.float64)
    torch.testing.assert_close(freq, expected, atol=FREQ_TOL, rtol=0)


def test_mask_then_top_k_then_top_p():
    logits = logits_of([0.4, 0.3, 0.2, 0.06, 0.04])
    mask = torch.tensor([False, True, True, True, True])
    # allowed: [.5, .333, .1, .0667]; top-3 -> [.536, .357, .107]; top-p .8 -> [.6, .4]
    freq = frequencies(logits, mask=mask, top_k=3)
    torch.testing.assert_close(
        freq,
        torch.tensor([0, 15 / 28, 10 / 28, 3 / 28, 0], dtype=torch.float64),
        atol=FREQ_TOL,
        rtol=0,
    )
    freq = frequencies(logits, mask=mask, top_k=3, top_p=0.8)
    torch.testing.assert_close(
        freq, torch.tensor([0, 0.6, 0.4, 0, 0], dtype=torch.float64), atol=FREQ_TOL, rtol=0
    )
    # with greedy, the mask still decides
    assert sample(logits, temperature=0, mask=mask).item() == 1


def test_mask_broadcasts_over_batch():
    logits = torch.zeros(5, 4)
    mask = torch.tensor([False, False, True, False])
    assert sample(logits, mask=mask, generator=torch.Generator().manual_seed(1)).tolist() == [2] * 5


# --- generators --------------------------------------------------------------------------


def test_same_seed_same_samples_different_seed_differs():
    logits = torch.zeros(300, 10)
    a = sample(logits, top_p=0.9, generator=torch.Generator().manual_seed(7))
    b = sample(logits, top_p=0.9, generator=torch.Generator().manual_seed(7))
    c = sample(logits, top_p=0.9, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_output_shape_follows_leading_dims():
    out = sample(torch.randn(2, 3, 7), generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3) and out.dtype == torch.long


# --- invalid arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": -0.1},
        {"temperature": math.nan},
        {"top_k": -1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_p": math.nan},
    ],
)
def test_invalid_sampling_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        sample(torch.zeros(2, 4), **kwargs)
    with pytest.raises(ValueError):
        Sampling(**kwargs)


def test_invalid_filter_arguments_raise():
    logits = torch.zeros(4)
    with pytest.raises(ValueError, match="greedy"):
        apply_temperature(logits, 0)
    with pytest.raises(ValueError):
        top_k_filter(logits, -2)
    with pytest.raises(ValueError):
        top_p_filter(logits, 0.0)


def test_bad_masks_raise():
    logits = torch.zeros(3, 4)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"row\(s\) \[1\]"):
        sample(logits, mask=mask)
    with pytest.raises(ValueError, match="bool"):
        sample(logits, mask=torch.ones(3, 4))
    with pytest.raises(ValueError, match="broadcast"):
        sample(logits, mask=torch.ones(3, 5, dtype=torch.bool))


# --- decode loop -------------------------------------------------------------------------


class BigramCore(nn.Module):
    """Next-token logits depend only on the current token; records its calls."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table.clone())  # (V, V)
        self.calls: list[tuple[int, bool]] = []  # (input length, training flag)

    def forward(self, tokens, state=None):
        self.calls.append((tokens.size(1), self.training))
        return self.table[tokens], state  # (B, T, V)


class GRUCore(nn.Module):
    """A real recurrent core: step-by-step with state equals re-running the sequence."""

    def __init__(self, vocab: int = 12, hidden: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens, state=None):
        out, state = self.gru(self.embed(tokens), state)  # (B, T, H)
        return self.head(out), state  # (B, T, V)


class Bigram:
    """Rules for tests: a grammar `allowed` (V, V) (row i: the tokens allowed after token
    i), and `stop(new (B,), step) -> (B,) bool` marking the rows finished."""

    def __init__(self, prompt: torch.Tensor, allowed=None, stop=None):
        self.last, self.allowed, self.stop, self.step = prompt[:, -1], allowed, stop, 0

    def mask(self):
        if self.allowed is None:
            return torch.ones(len(self.last), 1, dtype=torch.bool)  # broadcasts: no grammar
        return self.allowed[self.last]

    def bias(self):
        return None

    def update(self, new):
        self.last = new
        done = self.stop(new, self.step) if self.stop else torch.zeros_like(new, dtype=torch.bool)
        self.step += 1
        return done


def generate(
    core, prompt, n, *, allowed_next=None, stop=None, temperature=1.0, top_k=0, top_p=1.0, **kw
):
    """decode() with a bigram grammar and a stop function as rules."""
    rules = Bigram(prompt, allowed_next, stop) if allowed_next is not None or stop else None
    return decode(core, prompt, n, sampling=Sampling(temperature, top_k, top_p), rules=rules, **kw)


def chain_table(v: int) -> torch.Tensor:
    """Greedy walk 0 -> 1 -> ... -> v-1 -> 0."""
    table = torch.full((v, v), -10.0)
    table[torch.arange(v), (torch.arange(v) + 1) % v] = 10.0
    return table


def test_generate_never_breaks_the_grammar():
    v = 8
    g = torch.Generator().manual_seed(0)
    core = BigramCore(torch.randn(v, v, generator=g) * 3)
    allowed = torch.rand(v, v, generator=g) < 0.3
    allowed[torch.arange(v), torch.randint(v, (v,), generator=g)] = True  # never a dead end
    prompt = torch.randint(v, (64, 3), generator=g)
    for kwargs in ({}, {"top_k": 2}, {"top_p": 0.5}, {"temperature": 0}):
        out = generate(core, prompt, 40, allowed_next=allowed, generator=g, **kwargs)
        assert out.shape == (64, 43)
        assert torch.equal(out[:, :3], prompt)
        pairs = out[:, 2:]  # from the prompt's last token on
        assert allowed[pairs[:, :-1], pairs[:, 1:]].all()


def test_cached_and_uncached_generation_match():
    torch.manual_seed(0)
    core = GRUCore().double()
    prompt = torch.randint(12, (4, 5))

    def run(**kwargs):
        g = torch.Generator().manual_seed(3)
        return generate(core, prompt, 30, top_p=0.95, generator=g, **kwargs)

    cached = run(use_cache=True)
    assert torch.equal(cached, run(use_cache=False))
    assert torch.equal(cached[:, :5], prompt)
    assert not torch.equal(cached, run(use_cache=True, temperature=2.0))  # settings matter


def test_uncached_context_len_bounds_the_input():
    core = BigramCore(torch.randn(6, 6))
    prompt = torch.randint(6, (2, 4))
    g = torch.Generator().manual_seed(0)
    cached = generate(core, prompt, 10, generator=g)
    assert [n for n, _ in core.calls] == [4] + [1] * 9  # prompt once, then one token a step
    core.calls.clear()
    g = torch.Generator().manual_seed(0)
    windowed = generate(core, prompt, 10, generator=g, use_cache=False, context_len=3)
    assert [n for n, _ in core.calls] == [3] * 10
    assert torch.equal(cached, windowed)  # a bigram only needs the last token


def test_stop_finishes_rows_and_pads_them():
    v, end, pad = 6, 3, 5
    allowed = torch.ones(v, v, dtype=torch.bool)
    allowed[pad] = False  # pad is never a real context; finished rows must not trip on it
    allowed[:, pad] = False  # nor a real token: 4 -> 5 is replaced by the best allowed, 0
    core = BigramCore(chain_table(v))
    prompt = torch.tensor([[0, 0], [4, 2], [1, 4]])

    def stop(new, step):
        return new == end

    out = generate(core, prompt, 20, temperature=0, allowed_next=allowed, stop=stop, pad_id=pad)
    assert out.tolist() == [
        [0, 0, 1, 2, end, pad],
        [4, 2, end, pad, pad, pad],
        [1, 4, 0, 1, 2, end],  # the last row to finish ends the loop
    ]


def test_stop_uses_the_step_and_max_new_tokens_caps_the_length():
    core = BigramCore(chain_table(4))
    prompt = torch.zeros(2, 1, dtype=torch.long)
    out = generate(
        core,
        prompt,
        10,
        temperature=0,
        stop=lambda new, step: torch.full_like(new, step == 1, dtype=torch.bool),
    )
    assert out.shape == (2, 3)
    out = generate(core, prompt, 6, temperature=0, stop=lambda new, step: new == 99)
    assert out.tolist() == [[0, 1, 2, 3, 0, 1, 2]] * 2
    assert generate(core, prompt, 0).shape == (2, 1)


def test_generate_runs_in_eval_mode_and_restores_it():
    core = BigramCore(torch.randn(4, 4))
    core.train()
    generate(core, torch.zeros(1, 2, dtype=torch.long), 3)
    assert core.training
    assert all(not training for _, training in core.calls)
    core.eval()
    generate(core, torch.zeros(1, 2, dtype=torch.long), 3, use_cache=False)
    assert not core.training


def test_generate_restores_mode_after_an_error():
    core = BigramCore(torch.randn(4, 4)).train()
    allowed = torch.zeros(4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="allows no token"):
        generate(core, torch.zeros(1, 1, dtype=torch.long), 3, allowed_next=allowed)
    assert core.training


def test_generate_rejects_bad_shapes():
    core = BigramCore(torch.randn(4, 4))
    with pytest.raises(ValueError, match="prompt"):
        generate(core, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="prompt"):
        generate(core, torch.zeros(1, 0, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="context_len"):
        generate(core, torch.zeros(1, 1, dtype=torch.long), 2, use_cache=False, context_len=0)


def test_decoder_steps_snapshots_and_restores():
    """Live play steps the decoder, plays ahead, and drops what it played ahead."""
    torch.manual_seed(0)
    core = GRUCore().double().eval()
    prompt = torch.randint(12, (2, 5))
    whole = core(torch.cat([prompt, torch.tensor([[3, 4], [5, 6]])], dim=1))[0][:, -1]
    d = Decoder(core, prompt)
    d.logits()
    snap = d.snapshot()
    d.push(torch.tensor([[3, 4], [5, 6]]))  # several tokens at once: the player's notes
    assert torch.allclose(d.logits(), whole)
    d.push(torch.tensor([7, 8]))
    d.restore(snap)
    assert torch.equal(d.seq, prompt)
    assert torch.allclose(d.logits(), core(prompt)[0][:, -1])
    d.push(torch.tensor([[3, 4], [5, 6]]))
    assert torch.allclose(d.logits(), whole)  # the state after restore reads on as before


# --- repetition-aware sampling --------------------------------------------------------------


def test_repeat_memory_suggests_what_followed_the_same_context_at_the_same_bar_place():
    from musicgen.generate.repetition import RepeatMemory

    m = RepeatMemory(context=2, bias=3.0)
    phrase = [5, 6, 7, 8]
    for i, t in enumerate(phrase + [5, 6]):
        m.push(t, bar_position=i % 4)
        got = m.suggestion()
        if i < 5:
            assert got is None  # nothing yet has this context before it
    assert got == 7  # "5 6" at bar place 1 was followed by 7
    m.push(7, 2)
    assert m.suggestion() == 8
    other = RepeatMemory(context=2, bias=3.0)
    for i, t in enumerate(phrase + [5, 6]):
        other.push(t, bar_position=i % 3)  # the second "5 6" falls elsewhere in the bar
        last = other.suggestion()
    assert last is None
    primer = RepeatMemory(context=2, bias=3.0)
    for i, t in enumerate(phrase + [5, 6]):  # a primer: pushed without asking in between
        primer.push(t, bar_position=i % 4)
    assert primer.suggestion() == 7


def indifferent_gru(dataset):
    """An untrained gru with every weight zero: every token equally likely, so only the
    rules and the pulls choose."""
    from tests.helpers import untrained_model

    model = untrained_model("gru", dataset)
    with torch.no_grad():
        for p in model.core.parameters():
            p.zero_()
    return model


def test_repeat_bias_pulls_generation_into_repeating_itself(dataset):
    """Through generate_songs, with a model that has no preference (zero logits): a strong
    pull makes the pieces repeat themselves, counted as the share of 8-token runs of the
    generated ids seen earlier in the same piece (not with the memory that pulls)."""
    from musicgen.config import GenerateConfig
    from musicgen.generate import generate_songs

    model = indifferent_gru(dataset)

    def repeated_share(bias: float) -> float:
        cfg = GenerateConfig(
            unit="tokens",
            length=300,
            num_samples=4,
            seed=1,
            repeat_bias=bias,
            repeat_context=2,
            form_bias=0,
        )
        shares = []
        for song in generate_songs(model, cfg)[0]:
            ids = song.ids[song.primer_tokens :].tolist()
            runs = [tuple(ids[i : i + 8]) for i in range(len(ids) - 7)]
            seen, again = set(), 0
            for run in runs:
                again += run in seen
                seen.add(run)
            shares.append(again / len(runs))
        return float(np.mean(shares))

    pulled, free = repeated_share(8.0), repeated_share(0.0)
    assert pulled > 0.25 and pulled > 5 * free, (pulled, free)
    assert GenerateConfig(repeat_bias=2.0).repeat_bias == 2.0


def test_the_loop_guard_refuses_exactly_the_pitches_that_would_loop_too_long():
    """Against the measure itself: on random tunes of few pitches, a pitch is refused
    exactly when playing it makes the piece's longest repeating stretch exceed the limit."""
    from musicgen.analysis.features import REPEAT_MAX_PERIOD, longest_repeat_run
    from musicgen.generate.repetition import LoopGuard

    rng = np.random.default_rng(0)
    refusals = 0
    for limit in (2, 5, 9):
        for _ in range(20):
            guard, tune = LoopGuard(limit, REPEAT_MAX_PERIOD), []
            for _ in range(60):
                refused = guard.refused()
                for c in range(60, 64):
                    too_long = longest_repeat_run(np.array(tune + [c])) > limit
                    assert (c in refused) == too_long, (tune, c, limit)
                refusals += len(refused)
                free = [c for c in range(60, 64) if c not in refused]
                # mostly the pitch two back, so that figures loop
                loop = len(tune) > 1 and tune[-2] in free and rng.random() < 0.8
                c = tune[-2] if loop else int(rng.choice(free))
                guard.push(c)
                tune.append(c)
            assert longest_repeat_run(np.array(tune)) <= limit
    assert refusals > 100  # the tunes did run into the limit


def test_the_loop_guard_keeps_a_pulled_loop_within_the_corpus_s_limit(dataset):
    """A model with no preference pulled hard into repeating itself (--repeat-bias) loops;
    with --loop-limit its pitches never hold one short pattern for more notes than that."""
    from musicgen.analysis.features import longest_repeat_run
    from musicgen.config import GenerateConfig
    from musicgen.generate import generate_songs

    model = indifferent_gru(dataset)
    v = model.vocab

    def longest(limit: int) -> int:
        cfg = GenerateConfig(
            unit="tokens",
            length=300,
            num_samples=4,
            seed=1,
            repeat_bias=8.0,
            repeat_context=2,
            form_bias=0,
            loop_limit=limit,
        )
        runs = []
        for song in generate_songs(model, cfg)[0]:
            ids = song.ids
            pitches = ids[v.is_pitch(ids)]
            runs.append(longest_repeat_run(pitches))
        return max(runs)

    assert longest(0) > 12  # the pull alone plays loops
    assert longest(6) <= 6


def test_train_measures_the_corpus_s_loops_and_generation_takes_them_as_the_limit(dataset):
    from musicgen.config import GenerateConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.measures import corpus_profile, longest_loop
    from musicgen.generate.songs import settle
    from musicgen.tokens.space import BOS, EOS
    from tests.helpers import untrained_model

    ds = TokenDataset.open(dataset)
    v = ds.vocab
    docs = [
        np.array([BOS, *(v.pitch_start + np.array(p)), EOS])
        for p in (
            [0, 2] * 10,  # one figure, 20 notes long
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],  # no loop
        )
    ]
    assert longest_loop(docs, v) == 18  # 90% of the way from 0 to 20
    assert corpus_profile(docs, v)["longest_loop"] == 18
    model = untrained_model("gru", dataset)
    model.meta["corpus"] = {"longest_loop": 7}
    assert settle(GenerateConfig(), model).loop_limit == 7
    assert settle(GenerateConfig(loop_limit=0), model).loop_limit == 0
    assert settle(GenerateConfig(), model, passage=True).loop_limit == 0
    model.meta["corpus"] = {}  # a model trained before the guard: off
    assert settle(GenerateConfig(), model).loop_limit == 0


def test_the_loop_guard_reads_the_primer(dataset, tmp_path):
    """A primer that already plays one figure over and over: pulled to go on copying it,
    the model's first new pitch continues the figure unless the guard, having read the
    primer's pitches, refuses it."""
    from musicgen.config import GenerateConfig
    from musicgen.generate import generate_songs
    from tests.helpers import write_notes_midi

    model = indifferent_gru(dataset)
    v = model.vocab
    primer = write_notes_midi(tmp_path / "loop.mid", [(i, 1, (60, 62)[i % 2]) for i in range(8)])

    def first_pitches(limit: int) -> list[int]:
        cfg = GenerateConfig(
            unit="notes",
            length=1,
            num_samples=8,
            seed=3,
            repeat_bias=12.0,
            repeat_context=2,
            form_bias=0,
            loop_limit=limit,
            primer=str(primer),
        )
        out = []
        for song in generate_songs(model, cfg)[0]:
            new = song.ids[song.primer_tokens :]
            pitches = new[v.is_pitch(new)]
            out.append(int(pitches[0]))
        return out

    figure = v.index["Pitch_60"]  # the primer ends on 62: the figure goes on with 60
    free, guarded = first_pitches(0), first_pitches(4)
    assert free.count(figure) >= 6  # the pull alone goes on with the figure
    assert figure not in guarded  # the primer's loop already passes 4 notes
