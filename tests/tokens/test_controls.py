"""Control tokens in the stream: where the grammar takes them, and that they are no music."""

from __future__ import annotations

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.tokens.decoding import decode
from musicgen.tokens.vocab import Vocabulary

VOCAB = Vocabulary.full(EncodingConfig(time="beats"))
# two bars of 4/4 (a bar is 192 steps): a note, a Shift into bar 2, a note, a short Shift
PIECE = [
    "BOS",
    "Inst_0",
    "Prog_0",
    "Vel_78",
    "Pitch_60",
    "Dur_48",
    "Shift_192",
    "Pitch_62",
    "Dur_48",
    "Shift_48",
    "Pitch_64",
    "Dur_48",
    "EOS",
]


def uids(tokens: list[str]) -> np.ndarray:
    return VOCAB.uids[[VOCAB.index[t] for t in tokens]]


def read(tokens: list[str]):
    stream = VOCAB.stream()
    allowed = []
    for t in tokens:
        allowed.append(bool(stream.allowed()[uids([t])[0]]))
        stream.feed(uids([t])[0])
    return stream, allowed


def with_controls(tokens, at, controls):
    return tokens[:at] + controls + tokens[at:]


def test_controls_are_taken_right_after_bos_and_after_the_shift_into_a_bar():
    piece = with_controls(PIECE, 7, ["Key_D_minor", "Density_2", "Dynamics_5"])
    piece = with_controls(piece, 1, ["Key_D_minor", "Register_4"])
    stream, allowed = read(piece)
    assert all(allowed), [t for t, ok in zip(piece, allowed, strict=True) if not ok]
    assert not stream.stats
    assert stream.asked == {
        0: {"key": 14, "register": 3},
        1: {"key": 14, "density": 1, "dynamics": 4},
    }


def test_controls_are_refused_anywhere_else():
    misplaced = {
        "after the line-up": with_controls(PIECE, 2, ["Density_1"]),
        "inside a note": with_controls(PIECE, 5, ["Density_1"]),
        "after a Shift inside a bar": with_controls(PIECE, 10, ["Density_1"]),
        "after a note in the bar": with_controls(PIECE, 9, ["Density_1"]),
        "out of order": with_controls(PIECE, 7, ["Dynamics_1", "Density_1"]),
        "twice": with_controls(PIECE, 7, ["Density_1", "Density_2"]),
        "the key after a level": with_controls(PIECE, 7, ["Density_1", "Key_C_major"]),
    }
    for where, piece in misplaced.items():
        stream, allowed = read(piece)
        assert not all(allowed), where
        assert stream.stats["control_out_of_place"] == 1, where


def test_controls_are_no_music():
    plain, _ = decode(uids(PIECE), VOCAB.cfg)
    steered = with_controls(
        with_controls(PIECE, 7, ["Key_C_major", "Density_5"]), 1, ["Polyphony_1"]
    )
    back, stats = decode(uids(steered), VOCAB.cfg)
    assert not stats
    assert np.array_equal(back.notes, plain.notes)  # none reaches the written MIDI
    assert back.tempos == plain.tempos and back.time_signatures == plain.time_signatures


def test_the_grammar_never_offers_a_control_inside_a_bar():
    stream = VOCAB.stream()
    ctrl = VOCAB.control_mask
    offered = []
    for t in PIECE:
        offered.append(bool((stream.allowed()[VOCAB.uids] & ctrl).any()))
        stream.feed(uids([t])[0])
    # offered right after BOS and right after the Shift that enters bar 2: nowhere else
    assert offered == [False, True, False, False, False, False, False, True] + [False] * 5
