"""Live accompaniment follows the controls asked: written where each bar begins, forced
where its own part enters a bar, guided only when asked."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from musicgen.config import GenerateConfig, LiveConfig
from musicgen.config.controls import parse_key
from musicgen.errors import MusicgenError
from musicgen.generate.decoder import GuidedDecoder
from musicgen.live.accompanist import Accompanist, BeatRules
from musicgen.live.clock import ManualClock
from musicgen.live.listen import Listener
from musicgen.live.ports import MemoryOutput
from musicgen.live.scheduler import Scheduler
from tests.helpers import score_of, untrained_model

PLAYED = score_of([(float(q), 1.0, 72 + q % 5) for q in range(10)])  # 2.5 bars, a note a beat


@pytest.fixture(scope="module")
def model(dataset):
    from musicgen.checkpoint import LoadedModel, dataset_meta
    from musicgen.config import ModelConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.models.registry import build_core

    vocab = TokenDataset.open(dataset).vocab.with_controls()
    cfg = ModelConfig(name="gru", vocab_size=len(vocab), max_len=64, d_model=32, n_layers=1)
    torch.manual_seed(0)
    return LoadedModel(build_core(cfg).eval(), cfg, vocab, dataset_meta(vocab, dataset), dataset)


def accompanist(model, cfg: GenerateConfig) -> Accompanist:
    clock = ManualClock(0.0)
    return Accompanist(
        model,
        cfg,
        LiveConfig(mode="accompany", tempo=120.0),
        Scheduler(MemoryOutput("o", clock), clock),
        clock,
        Listener(wait=1.0, qpm=120.0),
        threading.Lock(),
    )


def controls_by_bar(vocab, tokens: list[int]) -> dict[int, list[int]]:
    """The control tokens of `tokens` (compact ids), by the bar the stream is in."""
    stream, out = vocab.stream(), {}
    for t in tokens:
        if vocab.control_mask[t]:
            out.setdefault(stream.bar, []).append(t)
        stream.feed(vocab.uids[t])
    return out


ASKED = GenerateConfig(seed=1, key="D minor", density=(1, 3, 5))


def test_the_session_carries_the_controls_asked_where_each_bar_begins(model):
    vocab = model.vocab
    acc = accompanist(model, ASKED)
    tokens, program, ceiling = acc._tokens(PLAYED, beat=10)
    key = vocab.key_id(parse_key("D minor"))
    density = [vocab.ctrl_id("density", lvl) for lvl in (0, 2, 4)]
    assert tokens[1:3] == [key, density[0]]  # bar 1's right after BOS, before the line-up
    assert controls_by_bar(vocab, tokens) == {
        0: [key, density[0]],
        1: [key, density[1]],
        2: [key, density[2]],
    }
    stream = vocab.stream()
    stream.feed_all(vocab.uids[tokens])
    assert not any(stream.stats.values())  # every control where the grammar has it
    plain, _, _ = accompanist(model, GenerateConfig(seed=1))._tokens(PLAYED, beat=10)
    assert [t for t in tokens if not vocab.control_mask[t]] == plain  # nothing else moves
    # beat by beat the session only grows: the decoder goes on from its last beat
    for beat in range(1, 10):
        earlier, _, _ = acc._tokens(PLAYED, beat)
        later, _, _ = acc._tokens(PLAYED, beat + 1)
        assert later[: len(earlier)] == earlier


def test_its_part_takes_the_next_bars_controls_where_it_enters_that_bar(model):
    vocab = model.vocab
    acc = accompanist(model, ASKED)
    tokens, program, ceiling = acc._tokens(PLAYED, beat=8)  # two whole bars played
    stream = vocab.stream()
    stream.feed_all(vocab.uids[tokens])
    stream.end_header()
    per_quarter = vocab.cfg.steps_per_quarter
    rules = BeatRules(vocab, stream, 8 * per_quarter, 9 * per_quarter, program, ceiling, acc.plan)
    # time moves on to the beat line, which begins bar 3: its controls come next, forced
    to_line = 8 * per_quarter - stream.step
    shift = int(np.flatnonzero(rules.mask()[0].numpy() & (vocab.shift_steps == to_line))[0])
    taken = [shift]
    rules.update(torch.tensor([shift]))
    for _ in range(2):
        mask = rules.mask()[0].numpy()
        assert mask.sum() == 1
        taken.append(int(np.flatnonzero(mask)[0]))
        rules.update(torch.tensor([taken[-1]]))
    bar3 = [vocab.key_id(parse_key("D minor")), vocab.ctrl_id("density", 4)]
    assert controls_by_bar(vocab, tokens + taken)[2] == bar3  # the plan's last level holds
    assert rules.bias() is not None  # and the key pulls its pitches


def test_guidance_only_when_asked(model):
    tokens, _, _ = accompanist(model, ASKED)._tokens(PLAYED, beat=4)
    assert type(accompanist(model, ASKED)._decoder(tokens)).__name__ == "Decoder"
    guided = accompanist(model, GenerateConfig(seed=1, key="D minor", guidance=2.0))._decoder(
        tokens
    )
    assert isinstance(guided, GuidedDecoder) and guided.guidance == 2.0
    every_key = torch.zeros(len(model.vocab), dtype=torch.bool)
    every_key[[model.vocab.key_id(k) for k in range(24)]] = True
    assert torch.equal(guided.unguided, every_key)  # on the key asked, nothing else


def test_a_model_without_controls_refuses_them_in_one_line(dataset):
    with pytest.raises(MusicgenError, match="--key: this model was trained without control"):
        accompanist(untrained_model("gru", dataset), GenerateConfig(key="D minor"))


@pytest.mark.parametrize("name", ["gru", "gru-attn", "transformer"])
def test_each_beat_goes_back_only_as_far_as_the_session_changed(name):
    """A held note rewrites its onset's tokens: the reading goes back to the latest beat
    line before them, not to the top, and reads on exactly as a fresh decoder would."""
    from musicgen.config import ModelConfig
    from musicgen.generate.decoder import Decoder
    from musicgen.live.accompanist import Reading
    from musicgen.models.registry import build_core

    torch.manual_seed(0)
    cfg = ModelConfig(name=name, vocab_size=20, d_model=16, n_layers=1, n_heads=2, max_len=32)
    core = build_core(cfg).eval()
    fed = []  # tokens the core is given, call by call

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = core

        def forward(self, tokens, state=None):
            fed.append(tokens.size(1))
            return self.inner(tokens, state)

    fresh = lambda t: Decoder(core, torch.tensor([t]))  # noqa: E731
    reading = Reading(lambda t: Decoder(Counting(), torch.tensor([t])))
    rng = np.random.default_rng(1)
    session = rng.integers(1, 20, 10).tolist()
    with torch.no_grad():
        for beat in range(12):
            session = session + rng.integers(1, 20, 4).tolist()
            if beat % 3 == 2:  # a held note: a token 6 back is written again
                session[-6] = (session[-6] % 19) + 1
            fed.clear()
            decoder = reading.read(list(session))
            decoder.logits()
            if beat:  # from a kept state: this beat's tokens and a held note's, no more
                assert sum(fed) <= 4 + 6, fed
            torch.testing.assert_close(decoder.logits(), fresh(session).logits(), atol=1e-5, rtol=0)
            for _ in range(3):  # its own guess at the beat, dropped at the next
                decoder.push(torch.tensor([int(decoder.logits().argmax())]))
        assert reading.from_top == 1  # the first beat only
        reading.read([(session[0] % 19) + 1, *session[1:]])  # the very first token changed
        assert reading.from_top == 2


def test_a_long_session_is_read_from_a_bar_line_that_moves_on(model):
    """However long the session, a beat reads at most READ_AGAIN windows of it, from a bar
    line that moves on between beats: each bar keeps its own controls of the plan, its
    part lands on its beat, and a beat reads only what is new since the last."""
    from dataclasses import replace

    from musicgen.live.accompanist import READ_AGAIN

    class Tempo:  # 120 qpm from 0 s
        def seconds_at(self, quarter):
            return 0.5 * quarter

    vocab = model.vocab
    levels = tuple(1 + bar % 5 for bar in range(40))  # each bar its own density level
    density = [vocab.ctrl_id("density", lvl - 1) for lvl in levels]
    acc = accompanist(model, GenerateConfig(seed=1, density=levels))
    fed = []  # tokens the core is given, call by call

    class Counting(torch.nn.Module):
        def forward(self, tokens, state=None):
            fed.append(tokens.size(1))
            return model.core(tokens, state)

    acc.model = replace(model, core=Counting())
    # 40 bars of two-beat notes, held across every other beat line: as the listener hands
    # them over, a held note sounds as long as it has sounded, so each beat rewrites it
    full = score_of([(float(q), 2.0, 72 + q % 5) for q in range(0, 160, 2)])
    window = model.model_cfg.max_len
    read, cuts, entered_after_a_cut = [], [0.0], 0
    with torch.no_grad():
        for beat in range(1, 160):
            played = full.until(beat)
            fed.clear()
            tops = acc.reading.from_top
            mine = len(acc.mine)
            acc._decide(played, beat, Tempo())
            read.append(len(acc.reading.committed))
            drawn = acc.reading.decoder.seq[0, len(acc.reading.committed) :].tolist()
            # the beat reads on from a kept state, never from the top (but at beat 2, whose
            # held note rewrites the first beat, before any state at a beat line is kept)
            if beat > 2:
                assert acc.reading.from_top == tops and fed[0] < len(acc.reading.committed)
            # every bar's level where it begins, the session's and any its part entered
            first = round(acc.cut / 4)
            for bar, got in controls_by_bar(vocab, acc.reading.committed + drawn).items():
                assert got == [density[first + bar]]
            entered_after_a_cut += acc.cut > 0 and bool(set(density) & set(drawn))
            starts = acc.mine["start"][mine:]  # its part of this beat, at this beat
            assert ((beat <= starts) & (starts < beat + 1)).all()
            acc._move_cut(played, beat)
            if acc.cut != cuts[-1]:
                cuts.append(acc.cut)
    assert max(read) <= READ_AGAIN * window + 40  # a beat's notes and a bar's controls more
    assert len(cuts) > 3 and all(c % 4 == 0 for c in cuts)  # on bar lines, moving on
    assert entered_after_a_cut > 3
    assert len(acc.mine)


def test_the_warm_up_beat_leaves_no_trace(model):
    """A beat decided on a made-up bar before the player's first note: afterwards the
    accompanist has read nothing, played nothing and drawn nothing, and plays along
    exactly as one that did not warm up."""
    acc = accompanist(model, ASKED)
    draws = acc._generator.get_state()
    calls = []
    beat = acc._beat
    acc._beat = lambda *a: calls.append(a) or beat(*a)
    with torch.no_grad():
        acc._warm_up()
    assert len(calls) == 1  # one beat was decided
    assert acc.reading.decoder is None and acc.reading.from_top == 0
    assert not len(acc.mine) and acc.cut == 0.0 and acc.takes == 0
    assert torch.equal(acc._generator.get_state(), draws)
    cold = accompanist(model, ASKED)
    with torch.no_grad():
        for b in range(1, 9):
            assert beat(PLAYED, b) == cold._beat(PLAYED, b)


def test_the_latest_bars_that_fit_are_found_in_a_long_phrase(model):
    """`fit` on a phrase longer than its pre-cut (the last `tokens // 2` bars): the bar
    line it gives is the phrase's, and cutting there gives what it read."""
    from musicgen.generate.primer import model_tokens
    from musicgen.live.performer import fit, from_bar

    phrase = score_of([(q / 2, 0.5, 60 + q % 12) for q in range(2 * 4 * 300)])  # 300 bars
    where, cut, uids = fit(phrase, model.vocab, 64)
    assert where % 4 == 0 and where > 4 * (300 - 32)  # within the last 32 bars
    assert len(model_tokens(from_bar(phrase, where - 4), model.vocab)[1]) - 1 > 64  # the most
    again = from_bar(phrase, where)
    assert again.notes.tolist() == cut.notes.tolist()
    assert len(uids) - 1 <= 64 and (model_tokens(cut, model.vocab)[1] == uids).all()


def test_a_slow_beat_moves_the_next_decisions_earlier_up_to_half_a_beat():
    from musicgen.live.accompanist import LEAD, LEAD_MARGIN, lead_for

    assert lead_for([], 0.6) == LEAD  # nothing decided yet
    assert lead_for([0.01, 0.02], 0.6) == LEAD  # fast beats: the least lead
    assert lead_for([0.01, 0.1, 0.02], 0.6) == pytest.approx(LEAD_MARGIN * 0.1)
    assert lead_for([0.5], 0.6) == pytest.approx(0.3)  # never more than half a beat
