"""The performer answers in the key of the phrase just played."""

from __future__ import annotations

from musicgen.analysis.key import estimate_key
from musicgen.config import GenerateConfig, LiveConfig
from musicgen.config.controls import parse_key
from musicgen.generate.decoder import GuidedDecoder
from musicgen.live.clock import ManualClock
from musicgen.live.performer import Performer, last_phrase
from musicgen.live.ports import MemoryOutput
from musicgen.live.scheduler import Scheduler
from tests.helpers import score_of


def scale(start: float, tonic: int, minor: bool = False) -> list:
    """Two bars of the scale and the tonic triad from `tonic`, a quarter each."""
    steps = [0, 2, 3, 5, 7, 8, 11, 12] if minor else [0, 2, 4, 5, 7, 9, 11, 12]
    triad = [0, 3 if minor else 4, 7, 12, 7, 3 if minor else 4, 0, 0]
    return [(start + i, 1.0, 60 + tonic + s) for i, s in enumerate(steps + triad)]


def test_the_last_phrase_is_what_follows_the_last_rest():
    # C major for 4 bars, a rest of 4 quarters, then F# minor
    score = score_of(scale(0, 0) + scale(20, 6, minor=True))
    assert estimate_key(last_phrase(score, 3.5)) == parse_key("F# minor")
    assert len(last_phrase(score, 3.5).notes) == 16
    assert len(last_phrase(score, 8).notes) == 32  # no rest that long: all of it
    assert estimate_key(score_of(scale(0, 0))) == parse_key("C major")


def test_an_answer_asks_for_the_key_of_the_phrase_just_played(dataset):
    import torch

    from musicgen.checkpoint import LoadedModel, dataset_meta
    from musicgen.config import ModelConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.models.registry import build_core

    vocab = TokenDataset.open(dataset).vocab.with_controls()
    cfg = ModelConfig(name="gru", vocab_size=len(vocab), max_len=64, d_model=32, n_layers=1)
    torch.manual_seed(0)
    model = LoadedModel(build_core(cfg).eval(), cfg, vocab, dataset_meta(vocab, dataset), dataset)
    clock = ManualClock(0.0)
    live = LiveConfig(tempo=120.0, wait=2.0, bars=1.0)  # a rest of 4 quarters
    performer = Performer(
        model, GenerateConfig(seed=1), live, Scheduler(MemoryOutput("o", clock), clock), clock
    )
    take = performer._new_take(score_of(scale(0, 0) + scale(20, 6, minor=True)), 120.0)
    plan = take.rules.plan[0].plan
    assert plan.key == parse_key("F# minor") and plan.key_pull > 0
    assert take.rules.key_pull is not None and float(take.rules.key_pull.max()) == 0.0
    assert type(take.decoder).__name__ == "Decoder"  # live: no guidance unless asked
    guided = Performer(
        model,
        GenerateConfig(seed=1, guidance=2.0),
        live,
        Scheduler(MemoryOutput("o", clock), clock),
        clock,
    )._new_take(score_of(scale(0, 0) + scale(20, 6, minor=True)), 120.0)
    assert isinstance(guided.decoder, GuidedDecoder) and guided.decoder.guidance == 2.0


def test_an_answer_reads_the_last_bars_that_fit_the_model_s_window(dataset):
    """However long the session, the prompt is the latest whole bars that fit the window:
    its notes are the session's last ones, moved by whole bars."""
    import numpy as np

    from musicgen.data.dataset import TokenDataset
    from musicgen.generate.primer import model_tokens
    from musicgen.live.performer import recent

    vocab = TokenDataset.open(dataset).vocab
    rows = [(q * 0.5, 0.5, 60 + (q * 5) % 24) for q in range(400)]  # 50 bars of eighths
    session = score_of(rows)
    short = score_of(rows[:8])
    assert recent(short, vocab, 256)[0] is short  # it fits: all of it
    cut, uids = recent(session, vocab, 64)
    assert len(model_tokens(cut, vocab)[1]) <= 64
    np.testing.assert_array_equal(uids, model_tokens(cut, vocab)[1])  # its own tokens
    moved = session.notes["start"][-len(cut.notes) :] - cut.notes["start"]
    assert np.allclose(moved, moved[0]) and moved[0] % 4 == 0  # whole bars earlier
    np.testing.assert_array_equal(cut.notes["pitch"], session.notes["pitch"][-len(cut.notes) :])
    assert len(recent(session, vocab, 128)[0].notes) > len(cut.notes)  # as many bars as fit


def test_long_rests_and_the_take_keep_within_the_window(dataset):
    """Rests long enough for the tokens to shorten them do not throw the cut off, and the
    answer's prompt is what fits."""
    import numpy as np

    from musicgen.config import GenerateConfig, LiveConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.generate.primer import model_tokens
    from musicgen.live.clock import ManualClock
    from musicgen.live.performer import Performer, recent
    from musicgen.live.ports import MemoryOutput
    from musicgen.live.scheduler import Scheduler
    from tests.helpers import untrained_model

    vocab = TokenDataset.open(dataset).vocab
    rows = []
    for phrase in range(8):  # 4 bars of eighths, then 8 bars of rest
        rows += [(phrase * 48 + q * 0.5, 0.5, 60 + q % 12) for q in range(32)]
    session = score_of(rows)
    for window in (40, 64, 100):
        cut, _ = recent(session, vocab, window)
        assert len(model_tokens(cut, vocab)[1]) - 1 <= window
        tail = session.notes["pitch"][-len(cut.notes) :]
        np.testing.assert_array_equal(cut.notes["pitch"], tail)  # the last notes played
    model = untrained_model("gru", dataset)  # a window of SEQ_LEN tokens
    clock = ManualClock(0.0)
    performer = Performer(
        model,
        GenerateConfig(seed=1),
        LiveConfig(tempo=120.0, bars=1.0),
        Scheduler(MemoryOutput("o", clock), clock),
        clock,
    )
    take = performer._new_take(session, 120.0)
    assert take.decoder.seq.size(1) <= model.model_cfg.max_len
